"""Routing (派单): who handles a whistled case, and why.

The candidates, best first:
1. departments the community named in its whistle (点名召集): the first leads (主办), the
   others co-handle (协办);
2. routing rules — (category or its 大类, area subtree) → a lead and co-handlers — together
   with the department of the category's default kind that serves the case's area (e.g. the
   property company (物业) of the compound the case is in, the street office (街道办事处) of
   its street), the most specific area first; at the same area a rule beats the default
   kind and a rule for the 小类 beats one for its 大类;
3. the liaison units (包联单位, "四包一") of the case's community, in their order;
4. nobody: the case waits for the community/street command to dispatch it by hand.

Rules that could both match one case while neither is more specific than the other (a rule
for a deeper area but a wider category against one for a narrower category but a wider area)
are refused when saved, so the rules matching any case are always totally ordered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from services.dispatch.domain.assignment import ROLE_ZH
from services.dispatch.domain.departments import KIND_ZH, Department
from shared.contract import AssignmentRole, DispatchBasis, areas
from shared.errors import Conflict, Invalid


@dataclass(frozen=True)
class RoutingRule:
    """Category (a 小类 or a whole 大类) × area subtree → a lead department and co-handlers."""

    id: int
    category_code: str
    area_prefix: str
    department_id: str
    co_department_ids: tuple[str, ...] = ()


BASIS_ZH = {
    DispatchBasis.NAMED: "吹哨点名",
    DispatchBasis.RULE: "派单规则",
    DispatchBasis.AREA_DEFAULT: "分类默认责任主体",
    DispatchBasis.LIAISON: "包联单位兜底",
    DispatchBasis.MANUAL: "人工派单",
    DispatchBasis.TRANSFER: "转办",
    DispatchBasis.REWORK: "返工",
}


@dataclass(frozen=True)
class Route:
    department_id: str
    department_name: str
    role: AssignmentRole
    rule_id: int | None
    reason: str
    basis: DispatchBasis = DispatchBasis.RULE


@dataclass(frozen=True)
class Decision:
    """Where a whistled case goes; ``routes`` empty means it waits for manual dispatch."""

    routes: tuple[Route, ...]
    reason: str  # why, in words a community worker can check (disputes are settled on it)

    @property
    def routable(self) -> bool:
        return bool(self.routes)


@dataclass(frozen=True)
class LiaisonUnits:
    """The liaison units (包联单位) of an area (usually a community), in their order."""

    area_prefix: str
    department_ids: tuple[str, ...]


def _nested(a: str, b: str) -> bool:
    return areas.within(b, a) or areas.within(a, b)


def most_specific_rule(rules: Iterable[RoutingRule], area_path: str) -> RoutingRule | None:
    """The rule whose area prefix covers the case and is the deepest; None if none does
    (rules of one category)."""
    matching = [r for r in rules if areas.within(area_path, r.area_prefix)]
    if not matching:
        return None
    return max(matching, key=lambda r: (areas.depth(r.area_prefix), len(r.area_prefix)))


# --- saving a rule -------------------------------------------------------------------------


def check_rule(
    rule: RoutingRule,
    existing: Iterable[RoutingRule],
    lineage_of: Callable[[str], tuple[str, ...]],
    names: Mapping[str, Department] | None = None,
) -> None:
    """Refuse a rule that repeats one already there, names its lead as a co-handler too, or
    would tie with another rule for some case (same category and area), or be neither more
    nor less specific than one (its area is deeper but its category wider, or the reverse).
    The Conflict names the other rule; ``lineage_of(code)`` gives 大类 … 小类 codes."""
    co = rule.co_department_ids
    if rule.department_id in co:
        raise Invalid(
            "co_department_ids：主办部门不能同时是协办部门",
            "co_department_ids: the lead department cannot also co-handle",
            code="invalid_rule",
        )
    if len(set(co)) != len(co):
        raise Invalid(
            "co_department_ids：协办部门重复",
            "co_department_ids: repeated department",
            code="invalid_rule",
        )
    mine = lineage_of(rule.category_code)
    names = names or {}
    for other in existing:
        if other.id == rule.id:
            continue
        theirs = lineage_of(other.category_code)
        if not (
            _nested(rule.area_prefix, other.area_prefix)
            and (rule.category_code in theirs or other.category_code in mine)
        ):
            continue  # they never match the same case
        d_area = areas.depth(rule.area_prefix) - areas.depth(other.area_prefix)
        d_cat = len(mine) - len(theirs)
        if d_area == 0 and d_cat == 0:
            raise Conflict(
                f"分类{other.category_code}在{other.area_prefix}范围内已有规则#{other.id}"
                f"（由{_name(names, other.department_id)}主办），不能重复添加",
                f"rule #{other.id} already routes category {other.category_code} in"
                f" {other.area_prefix} (to department '{other.department_id}')",
                code="rule_exists",
            )
        if d_area * d_cat < 0:
            raise Conflict(
                f"与规则#{other.id}（分类{other.category_code}，范围{other.area_prefix}，"
                f"由{_name(names, other.department_id)}主办）有歧义：两条规则可能同时适用于同一案件，"
                f"一条区域更具体、另一条分类更具体。请改为同时更具体的规则"
                f"（分类{_deeper(rule.category_code, other.category_code, mine, theirs)}，"
                f"范围{_deeper_area(rule.area_prefix, other.area_prefix)}）",
                f"ambiguous with rule #{other.id} (category {other.category_code}, area"
                f" {other.area_prefix}, lead '{other.department_id}'): both can match one case,"
                " one with the more specific area, the other with the more specific category",
                code="ambiguous_rule",
            )


def _deeper(a: str, b: str, la: tuple[str, ...], lb: tuple[str, ...]) -> str:
    return a if len(la) >= len(lb) else b


def _deeper_area(a: str, b: str) -> str:
    return a if areas.depth(a) >= areas.depth(b) else b


# --- routing a case ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Option:
    """One way to route the case: a lead (and co-handlers), with a sort key."""

    key: tuple[int, int, int]
    lead: str
    co: tuple[str, ...]
    rule_id: int | None
    basis: DispatchBasis
    why: str


@dataclass
class _Notes:
    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        if text not in self.items:
            self.items.append(text)

    def __str__(self) -> str:
        return "".join(f"；{n}" for n in self.items)


def _name(departments: Mapping[str, Department], dept_id: str) -> str:
    d = departments.get(dept_id)
    return d.name if d else dept_id


def _options(
    category: str,
    area_path: str,
    rules: Sequence[RoutingRule],
    lineage: tuple[str, ...],
    default_kind: str | None,
    departments: Mapping[str, Department],
    notes: _Notes,
) -> list[_Option]:
    """Rule and default-kind options covering the case, the most specific first."""
    out: list[_Option] = []
    for r in rules:
        if r.category_code in lineage and areas.within(area_path, r.area_prefix):
            scope = "" if r.category_code == category else f"（大类{r.category_code}）"
            why = (
                f"规则#{r.id}：分类{r.category_code}{scope}在{r.area_prefix}范围内"
                f"由{_name(departments, r.department_id)}{ROLE_ZH[AssignmentRole.LEAD]}"
            )
            out.append(
                _Option(
                    (areas.depth(r.area_prefix), 1, lineage.index(r.category_code)),
                    r.department_id,
                    r.co_department_ids,
                    r.id,
                    DispatchBasis.RULE,
                    why,
                )
            )
    if default_kind:
        serving = [
            (max(areas.depth(a) for a in d.areas if areas.within(area_path, a)), d)
            for d in departments.values()
            if d.kind == default_kind and any(areas.within(area_path, a) for a in d.areas)
        ]
        if serving:
            deepest = max(level for level, _ in serving)
            at = sorted(d.id for level, d in serving if level == deepest)
            kind_zh = KIND_ZH.get(default_kind, default_kind)
            if len(at) == 1:
                d = departments[at[0]]
                area = max((a for a in d.areas if areas.within(area_path, a)), key=areas.depth)
                why = (
                    f"分类{category}默认由{kind_zh}负责：案件位于{d.name}服务的区域"
                    f"（{area}），由其{ROLE_ZH[AssignmentRole.LEAD]}"
                )
                out.append(
                    _Option((deepest, 0, 0), d.id, (), None, DispatchBasis.AREA_DEFAULT, why)
                )
            elif deepest > 0:  # several district-wide departments of a kind are the norm
                notes.add(f"该区域有多个{kind_zh}（{'、'.join(at)}），不按默认责任主体自动选择")
    out.sort(key=lambda o: o.key, reverse=True)
    return out


def _liaison_options(
    area_path: str, liaison: Sequence[LiaisonUnits], departments: Mapping[str, Department]
) -> list[_Option]:
    covering = [u for u in liaison if areas.within(area_path, u.area_prefix) and u.department_ids]
    if not covering:
        return []
    units = max(covering, key=lambda u: areas.depth(u.area_prefix))
    return [
        _Option(
            (-1, 0, 0),
            d,
            (),
            None,
            DispatchBasis.LIAISON,
            f"没有适用的派单规则，由{units.area_prefix}的包联单位"
            f"（第{i}位）{_name(departments, d)}{ROLE_ZH[AssignmentRole.LEAD]}",
        )
        for i, d in enumerate(units.department_ids, start=1)
    ]


def route(
    *,
    category: str,
    area_path: str,
    rules: Sequence[RoutingRule],
    named: Sequence[str],
    departments: Mapping[str, Department],
    exclude: Iterable[str] = (),
    busy: Iterable[str] = (),
    lineage: tuple[str, ...] | None = None,
    default_kind: str | None = None,
    liaison: Sequence[LiaisonUnits] = (),
) -> Decision:
    """Decide who handles a whistled case (see the module's docstring for the order).

    ``exclude``: departments that must not be chosen (they already rejected the case, 退单);
    ``busy``: departments already handling the case (they cannot lead it a second time).
    Either kind of department is passed over and the next candidate decides. ``lineage``:
    the category's codes from its 大类 down (default: the category alone).
    """
    excluded, taken = frozenset(exclude), frozenset(busy)
    notes = _Notes()
    chain = lineage or (category,)

    known: list[Department] = []
    for dept_id in dict.fromkeys(named):  # de-duplicated, order kept
        if dept_id in excluded:
            notes.add(f"点名部门“{dept_id}”已退单，不再派给它")
        elif dept_id not in departments:
            notes.add(f"点名部门“{dept_id}”不存在，已忽略")
        elif dept_id not in taken:
            known.append(departments[dept_id])
    if known:
        lead, co = known[0], known[1:]
        routes = [
            Route(
                lead.id,
                lead.name,
                AssignmentRole.LEAD,
                None,
                f"社区吹哨点名：由{lead.name}{ROLE_ZH[AssignmentRole.LEAD]}{notes}",
                DispatchBasis.NAMED,
            )
        ]
        routes += [
            Route(
                d.id,
                d.name,
                AssignmentRole.CO,
                None,
                f"社区吹哨点名：{d.name}{ROLE_ZH[AssignmentRole.CO]}（{lead.name}"
                f"{ROLE_ZH[AssignmentRole.LEAD]}）{notes}",
                DispatchBasis.NAMED,
            )
            for d in co
        ]
        names = "、".join(d.name for d in known)
        return Decision(tuple(routes), f"社区吹哨点名：{names}{notes}")

    options = [
        *_options(category, area_path, rules, chain, default_kind, departments, notes),
        *_liaison_options(area_path, liaison, departments),
    ]
    for o in options:
        if o.lead in excluded or o.lead in taken:
            notes.add(
                f"{_name(departments, o.lead)}"
                + ("已退单" if o.lead in excluded else "已在办理该案件")
            )
            continue
        if o.lead not in departments:
            notes.add(f"部门“{o.lead}”不存在，已跳过")
            continue
        reason = f"{o.why}{notes}"
        routes = [
            Route(
                o.lead, _name(departments, o.lead), AssignmentRole.LEAD, o.rule_id, reason, o.basis
            )
        ]
        lead_name = _name(departments, o.lead)
        for c in o.co:
            if c in excluded or c in taken or c not in departments:
                continue
            routes.append(
                Route(
                    c,
                    _name(departments, c),
                    AssignmentRole.CO,
                    o.rule_id,
                    f"{o.why}；{_name(departments, c)}{ROLE_ZH[AssignmentRole.CO]}"
                    f"（{lead_name}{ROLE_ZH[AssignmentRole.LEAD]}）{notes}",
                    o.basis,
                )
            )
        return Decision(tuple(routes), reason)

    if excluded:
        reason = (
            f"分类{category}在{area_path}范围内除已退单部门"
            f"（{'、'.join(sorted(excluded))}）外没有可派部门，待人工派单{notes}"
        )
    else:
        reason = f"分类{category}在{area_path}范围内没有匹配的派单规则，待人工派单{notes}"
    return Decision((), reason)
