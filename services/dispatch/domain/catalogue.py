"""The category catalogue (shared with intake): two levels in the manner of the national
digital-city-management classification (GB/T 30428) — 部件 (components, codes C…) and 事件
(events, codes E…), each with 大类 (two digits) and 小类 (two more). Each category may name
the kind of department that is responsible by default; a 小类 without one inherits its
大类's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class CategoryClass(StrEnum):
    COMPONENT = "component"  # 部件: a thing in public space (井盖, 路灯, 电梯…)
    EVENT = "event"  # 事件: something that happens or is done (占道经营, 纠纷…)


CLASS_ZH = {CategoryClass.COMPONENT: "部件", CategoryClass.EVENT: "事件"}


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    parent_code: str | None
    department_kind: str | None = None  # this category's own setting; None: inherit

    @property
    def category_class(self) -> CategoryClass:
        return CategoryClass.COMPONENT if self.code.startswith("C") else CategoryClass.EVENT


def lineage(code: str, catalogue: Mapping[str, Category]) -> tuple[str, ...]:
    """The category's codes from its 大类 down to itself (just ``(code,)`` when unknown).
    Cycles cannot be stored (a parent must exist before its child) but are cut anyway."""
    chain: list[str] = []
    current: str | None = code
    while current is not None and current not in chain:
        chain.append(current)
        found = catalogue.get(current)
        current = found.parent_code if found else None
    return tuple(reversed(chain))


def default_kind(code: str, catalogue: Mapping[str, Category]) -> str | None:
    """The kind of department responsible by default: the nearest one set, from the category
    itself up to its 大类."""
    for c in reversed(lineage(code, catalogue)):
        found = catalogue.get(c)
        if found is not None and found.department_kind:
            return found.department_kind
    return None
