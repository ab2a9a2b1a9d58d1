"""Names for the codes a person reads in a message: the place and the category.

Events carry codes (``YA/YA01/YA0101/YA0101-03``, ``E0101``); a clerk reading a robot
message must read ``迎泽街道 › 桃园社区 › 桃园社区第3网格`` and ``乱堆物料``. Intake owns the
jurisdiction tree and dispatch the category catalogue; notify keeps a copy of their names
(``services.notify.reference``) and passes it to the templates. A code whose name is not
known reads as the code: a message never waits for a name and never fails for lack of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PLACE_SEPARATOR = " › "


@dataclass(frozen=True)
class Names:
    """What the codes are called (Simplified Chinese: the only names the owners keep)."""

    areas: Mapping[str, str] = field(default_factory=dict)  # area code → 区域名称
    categories: Mapping[str, str] = field(default_factory=dict)  # category code → 分类名称
    parents: Mapping[str, str] = field(default_factory=dict)  # 小类 code → its 大类 code

    def place(self, area_path: str) -> str | None:
        """``YA/YA01/YA0101/YA0101-03`` → ``迎泽街道 › 桃园社区 › 桃园社区第3网格``: the names
        below the district (everyone reading a message is in it; a path that is the district
        alone is its name), or None unless every one of them is known — a line mixing names
        and codes would leave the reader guessing which is which."""
        codes = area_path.split("/")
        named = [self.areas.get(code, "") for code in (codes[1:] or codes)]
        return PLACE_SEPARATOR.join(named) if all(named) else None

    def place_or_path(self, area_path: str) -> str:
        return self.place(area_path) or area_path

    def category(self, code: str) -> str:
        """The 小类's (or 大类's) name, else the code."""
        return self.categories.get(code) or code

    def category_in_full(self, code: str) -> str:
        """``事件·市容环境 › 乱堆物料``: the 大类 before the 小类 when both are known, else
        what ``category`` says."""
        parent = self.categories.get(self.parents.get(code, ""))
        name = self.categories.get(code)
        return f"{parent}{PLACE_SEPARATOR}{name}" if parent and name else self.category(code)


NO_NAMES = Names()
