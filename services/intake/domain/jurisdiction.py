"""The jurisdiction tree (辖区): district 区 → street 街道 → community 社区 → grid 网格 →
micro-grid 微网格. Pure rules — standard library and shared.errors only, no I/O.

A node's path is the codes from the district down to it joined by '/'
(``YA/YA01/YA0101/YA0101-03``); it is derived from the parent, never written by hand.
Every case belongs to one grid and, through the grid's path, to every level above it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import Conflict, Invalid


class Level(StrEnum):
    DISTRICT = "district"  # 区
    STREET = "street"  # 街道
    COMMUNITY = "community"  # 社区
    GRID = "grid"  # 网格
    MICRO_GRID = "micro_grid"  # 微网格 / 楼栋


LEVELS: tuple[Level, ...] = tuple(Level)  # top to bottom
LEVEL_ZH = {
    Level.DISTRICT: "区",
    Level.STREET: "街道",
    Level.COMMUNITY: "社区",
    Level.GRID: "网格",
    Level.MICRO_GRID: "微网格",
}
# Only grids and micro-grids are walked: they carry boundaries and grid workers.
BOUNDED_LEVELS = frozenset({Level.GRID, Level.MICRO_GRID})

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_CODE = re.compile(CODE_PATTERN)

# A phone's fix in a street canyon is often 10–30 m off: a point this close to the named
# grid's boundary is taken as inside it.
GPS_TOLERANCE_M = 30.0


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    level: Level
    parent_code: str | None
    path: str


@dataclass(frozen=True)
class AreaSpec:
    """What an administrator asks a node to be (PUT /areas/{code}, or one row of an import)."""

    code: str
    name: str
    level: Level
    parent_code: str | None


@dataclass(frozen=True)
class Attached:
    """What already hangs on an existing node (decides whether it may move or change level)."""

    children: int = 0
    cases: int = 0
    boundary: bool = False
    workers: int = 0


def check_code(code: str) -> None:
    if not _CODE.match(code):
        raise Invalid(
            f"区域编码“{code}”无效：只能由字母、数字、“-”和“_”组成，1–64 个字符",
            f"invalid area code '{code}': letters, digits, '-' and '_' only, 1-64 characters",
            code="invalid_code",
        )


def expected_level(parent: Area | None) -> Level:
    """The level a child of ``parent`` must have (a node without a parent is a district)."""
    if parent is None:
        return Level.DISTRICT
    index = LEVELS.index(parent.level)
    if index + 1 == len(LEVELS):
        raise Invalid(
            f"{LEVEL_ZH[parent.level]}“{parent.code}”之下不能再设下级区域",
            f"a {parent.level} ('{parent.code}') cannot have children",
            code="wrong_level",
        )
    return LEVELS[index + 1]


def check_level(spec: AreaSpec, parent: Area | None) -> None:
    want = expected_level(parent)
    if spec.level is want:
        return
    if parent is None:
        raise Invalid(
            f"区域“{spec.code}”没有上级，只能是区；{LEVEL_ZH[spec.level]}须指定上级区域",
            f"area '{spec.code}' has no parent, so it must be a district; "
            f"a {spec.level} needs a parent",
            code="wrong_level",
        )
    raise Invalid(
        f"区域“{spec.code}”的层级应为{LEVEL_ZH[want]}（上级“{parent.code}”是{LEVEL_ZH[parent.level]}），"
        f"不能是{LEVEL_ZH[spec.level]}",
        f"area '{spec.code}' under {parent.level} '{parent.code}' must be a {want}, "
        f"not a {spec.level}",
        code="wrong_level",
    )


def derive_path(code: str, parent: Area | None) -> str:
    return code if parent is None else f"{parent.path}/{code}"


def place(
    spec: AreaSpec, *, existing: Area | None, parent: Area | None, attached: Attached = Attached()
) -> Area:
    """Create or change one node. ``parent`` is the node named by ``spec.parent_code`` (None
    when that code names nothing). Renaming keeps the code; moving a node that has children
    or cases is refused (their paths would silently split from the tree)."""
    check_code(spec.code)
    if spec.parent_code is not None and spec.parent_code == spec.code:
        raise Invalid(
            f"区域“{spec.code}”不能以自己为上级",
            f"area '{spec.code}' cannot be its own parent",
            code="wrong_parent",
        )
    if spec.parent_code is not None and parent is None:
        raise Invalid(
            f"上级区域“{spec.parent_code}”不存在（区域“{spec.code}”）",
            f"unknown parent '{spec.parent_code}' (for area '{spec.code}')",
            code="unknown_parent",
        )
    check_level(spec, parent)
    path = derive_path(spec.code, parent)
    if existing is not None and existing.path != path:
        _check_move(existing, path, attached)
    if spec.level not in BOUNDED_LEVELS and (attached.boundary or attached.workers):
        raise Conflict(
            f"区域“{spec.code}”已有边界或网格员，不能改为{LEVEL_ZH[spec.level]}",
            f"area '{spec.code}' has a boundary or grid workers and cannot become a {spec.level}",
            code="area_in_use",
        )
    return Area(spec.code, spec.name, spec.level, spec.parent_code, path)


def _check_move(existing: Area, path: str, attached: Attached) -> None:
    if attached.children:
        raise Conflict(
            f"区域“{existing.code}”下有 {attached.children} 个下级区域，不能移动（{existing.path} → {path}）；"
            "请先移动或删除下级区域",
            f"area '{existing.code}' has {attached.children} child area(s) and cannot move "
            f"({existing.path} -> {path})",
            code="area_has_children",
        )
    if attached.cases:
        raise Conflict(
            f"区域“{existing.code}”已有 {attached.cases} 件案件，不能移动（{existing.path} → {path}）",
            f"area '{existing.code}' has {attached.cases} case(s) and cannot move "
            f"({existing.path} -> {path})",
            code="area_has_cases",
        )


def check_bounded(area: Area, what: str, what_en: str) -> None:
    """Boundaries and grid workers belong to grids and micro-grids only."""
    if area.level not in BOUNDED_LEVELS:
        raise Invalid(
            f"只有网格和微网格可以设置{what}；“{area.code}”是{LEVEL_ZH[area.level]}",
            f"only grids and micro-grids have {what_en}; '{area.code}' is a {area.level}",
            code="not_a_grid",
        )


def import_order(specs: Sequence[AreaSpec]) -> list[AreaSpec]:
    """The rows of an import, parents before children. A code given twice, or parents that
    name each other in a ring, is refused naming the codes."""
    by_code: dict[str, AreaSpec] = {}
    for spec in specs:
        check_code(spec.code)
        if spec.code in by_code:
            first = by_code[spec.code]
            raise Invalid(
                f"导入数据中区域编码“{spec.code}”重复（上级分别为“{first.parent_code or '无'}”和"
                f"“{spec.parent_code or '无'}”）",
                f"area code '{spec.code}' appears twice in the import (parents "
                f"'{first.parent_code}' and '{spec.parent_code}')",
                code="duplicate_code",
            )
        by_code[spec.code] = spec
    ordered: list[AreaSpec] = []
    state: dict[str, int] = {}  # 1 = being visited, 2 = done

    def visit(spec: AreaSpec, trail: list[str]) -> None:
        if state.get(spec.code) == 2:
            return
        if state.get(spec.code) == 1:
            ring = " → ".join([*trail[trail.index(spec.code) :], spec.code])
            raise Invalid(
                f"导入数据中的上级关系成环：{ring}",
                f"the parents form a cycle: {ring}",
                code="import_cycle",
            )
        state[spec.code] = 1
        parent = by_code.get(spec.parent_code) if spec.parent_code else None
        if parent is not None:
            visit(parent, [*trail, spec.code])
        state[spec.code] = 2
        ordered.append(spec)

    for spec in specs:
        visit(spec, [])
    return ordered


# --- placing a point --------------------------------------------------------------------


def pick_grid(hits: Iterable[Area]) -> tuple[str, str | None] | None:
    """From the bounded areas whose boundary holds a point: (grid code, micro-grid code or
    None). A grid's own boundary wins; a micro-grid alone places the point in its grid.
    On a shared edge the lowest code wins, so the answer never depends on row order."""
    ordered = sorted(hits, key=lambda a: a.code)
    grid = next((a for a in ordered if a.level is Level.GRID), None)
    micros = [
        a
        for a in ordered
        if a.level is Level.MICRO_GRID and (grid is None or a.parent_code == grid.code)
    ]
    micro = micros[0] if micros else None
    if grid is not None:
        return grid.code, micro.code if micro else None
    if micro is not None and micro.parent_code is not None:
        return micro.parent_code, micro.code
    return None


def choose_grid(
    named: str | None,
    found: str | None,
    *,
    named_bounded: bool,
    near_named: bool,
    lat: float,
    lon: float,
) -> str:
    """The grid a report goes to. ``found`` is the grid whose boundary holds the point;
    ``near_named``: the point is inside, or within GPS tolerance of, the named grid."""
    if named is None:
        if found is None:
            raise Invalid(
                f"该位置（纬度 {lat}，经度 {lon}）不在任何网格内，请填写网格编码",
                f"the point (lat {lat}, lon {lon}) is not inside any grid; give the grid code",
                code="point_outside_grids",
            )
        return found
    if named_bounded and found is not None and found != named and not near_named:
        raise Invalid(
            f"上报位置（纬度 {lat}，经度 {lon}）位于网格“{found}”，不在所填网格“{named}”内",
            f"the point (lat {lat}, lon {lon}) lies in grid '{found}', not in grid '{named}'",
            code="point_not_in_grid",
        )
    return named
