"""Dispatch's rules: who is responsible for a whistled case (派单), and the assignment's
state machine (报到 → 办结). Standard library only; no I/O, no clock (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from shared.errors import Conflict, Invalid


class Role(StrEnum):
    LEAD = "lead"  # 主办
    CO = "co"      # 协办


ROLE_ZH = {Role.LEAD: "主办", Role.CO: "协办"}


class AssignmentState(StrEnum):
    DISPATCHED = "dispatched"  # 已派单，待报到
    SIGNED_FOR = "signed_for"  # 已报到，办理中
    RESOLVED = "resolved"      # 已办结


STATE_ZH = {
    AssignmentState.DISPATCHED: "已派单待报到",
    AssignmentState.SIGNED_FOR: "已报到办理中",
    AssignmentState.RESOLVED: "已办结",
}


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    kind: str  # functional 职能部门 | co_building 驻区单位 | property 物业 | volunteer 志愿服务队


@dataclass(frozen=True)
class RoutingRule:
    """Category × area → the lead department. The most specific area prefix wins."""

    id: int
    category_code: str
    area_prefix: str
    department_id: str


# --- routing (派单) --------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    department_id: str
    department_name: str
    role: Role
    rule_id: int | None
    reason: str


@dataclass(frozen=True)
class Decision:
    """Where a whistled case goes; ``routes`` empty means it waits for manual dispatch."""

    routes: tuple[Route, ...]
    reason: str  # why, in words a community worker can check (disputes are settled on it)

    @property
    def routable(self) -> bool:
        return bool(self.routes)


def covers(area_prefix: str, area_path: str) -> bool:
    """True when the prefix is the area itself or one of its '/'-ancestors."""
    return area_path == area_prefix or area_path.startswith(area_prefix + "/")


def most_specific_rule(rules: Iterable[RoutingRule], area_path: str) -> RoutingRule | None:
    """The rule whose area prefix covers the case and is the deepest; None if none does."""
    matching = [r for r in rules if covers(r.area_prefix, area_path)]
    if not matching:
        return None
    return max(matching, key=lambda r: (r.area_prefix.count("/"), len(r.area_prefix)))


def rule_reason(rule: RoutingRule, department_name: str) -> str:
    return (f"规则#{rule.id}：分类{rule.category_code}在{rule.area_prefix}范围内"
            f"由{department_name}{ROLE_ZH[Role.LEAD]}")


def route(
    *,
    category: str,
    area_path: str,
    rules: Sequence[RoutingRule],
    named: Sequence[str],
    departments: Mapping[str, Department],
) -> Decision:
    """Decide who handles a whistled case.

    Departments the community named (点名召集) take precedence: the first known one leads
    (主办), the others co-handle (协办); unknown names are ignored with a note. Otherwise the
    most specific routing rule for the category decides; otherwise the case is unroutable.
    """
    known: list[Department] = []
    notes: list[str] = []
    for dept_id in dict.fromkeys(named):  # de-duplicated, order kept
        if dept_id in departments:
            known.append(departments[dept_id])
        else:
            notes.append(f"点名部门“{dept_id}”不存在，已忽略")
    note = "".join(f"；{n}" for n in notes)

    if known:
        lead = known[0]
        routes = [Route(lead.id, lead.name, Role.LEAD, None,
                        f"社区吹哨点名：由{lead.name}{ROLE_ZH[Role.LEAD]}{note}")]
        routes += [
            Route(d.id, d.name, Role.CO, None,
                  f"社区吹哨点名：{d.name}{ROLE_ZH[Role.CO]}（{lead.name}{ROLE_ZH[Role.LEAD]}）{note}")
            for d in known[1:]
        ]
        names = "、".join(d.name for d in known)
        return Decision(tuple(routes), f"社区吹哨点名：{names}{note}")

    rule = most_specific_rule((r for r in rules if r.category_code == category), area_path)
    if rule is not None:
        dept = departments.get(rule.department_id)
        name = dept.name if dept else rule.department_id
        reason = rule_reason(rule, name) + note
        return Decision((Route(rule.department_id, name, Role.LEAD, rule.id, reason),), reason)

    reason = f"分类{category}在{area_path}范围内没有匹配的派单规则，待人工派单{note}"
    return Decision((), reason)


# --- the assignment (派单 → 报到 → 办结) ------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    id: UUID
    case_id: UUID
    case_no: str
    department_id: str
    department_name: str
    role: Role
    state: AssignmentState
    rule_id: int | None
    reason: str
    area_path: str
    category: str
    priority: str
    description: str
    note: str | None
    result: str | None
    dispatched_at: datetime
    signed_for_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime

    def _check_state(self, allowed: AssignmentState, action_zh: str, action_en: str) -> None:
        if self.state is not allowed:
            raise Conflict(
                f"派单当前状态为“{STATE_ZH[self.state]}”，不能{action_zh}",
                f"an assignment in state '{self.state}' cannot be {action_en}",
                code="invalid_state",
            )

    # Who may act (only the assigned department) is decided by the authorisation layer
    # before these are called; the state machine decides only what may happen next.

    def sign_for(self, now: datetime) -> Assignment:
        """报到: the department takes the case on; only from ``dispatched``."""
        self._check_state(AssignmentState.DISPATCHED, "报到", "signed for")
        return replace(self, state=AssignmentState.SIGNED_FOR, signed_for_at=now, updated_at=now)

    def resolve(self, result: str, now: datetime) -> Assignment:
        """办结: the department reports the result; only after it signed for the case."""
        if self.state is AssignmentState.DISPATCHED:
            raise Conflict(
                "部门尚未报到，须先报到再办结",
                "the department must sign for the assignment before resolving it",
                code="invalid_state",
            )
        self._check_state(AssignmentState.SIGNED_FOR, "办结", "resolved")
        result = result.strip()
        if not result:
            raise Invalid("办理结果不能为空", "the result must not be empty", code="result_required")
        return replace(self, state=AssignmentState.RESOLVED, result=result, resolved_at=now,
                       updated_at=now)
