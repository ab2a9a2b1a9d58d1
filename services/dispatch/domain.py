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
    REJECTED = "rejected"      # 已退单 (terminal: the case went on to the next candidate)
    TRANSFERRED = "transferred"  # 已转办 (terminal: a new assignment at the target)


STATE_ZH = {
    AssignmentState.DISPATCHED: "已派单待报到",
    AssignmentState.SIGNED_FOR: "已报到办理中",
    AssignmentState.RESOLVED: "已办结",
    AssignmentState.REJECTED: "已退单",
    AssignmentState.TRANSFERRED: "已转办",
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
    exclude: Iterable[str] = (),
) -> Decision:
    """Decide who handles a whistled case.

    Departments the community named (点名召集) take precedence: the first known one leads
    (主办), the others co-handle (协办); unknown names are ignored with a note. Otherwise the
    most specific routing rule for the category decides; otherwise the case is unroutable.

    ``exclude``: departments that must not be chosen (those that already rejected the case,
    退单). They are dropped from the named ones, and a rule naming one of them is skipped,
    so the next most specific rule decides (the next candidate).
    """
    excluded = frozenset(exclude)
    known: list[Department] = []
    notes: list[str] = []
    for dept_id in dict.fromkeys(named):  # de-duplicated, order kept
        if dept_id in excluded:
            notes.append(f"点名部门“{dept_id}”已退单，不再派给它")
        elif dept_id in departments:
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

    rule = most_specific_rule(
        (r for r in rules if r.category_code == category and r.department_id not in excluded),
        area_path,
    )
    if rule is not None:
        dept = departments.get(rule.department_id)
        name = dept.name if dept else rule.department_id
        reason = rule_reason(rule, name) + note
        return Decision((Route(rule.department_id, name, Role.LEAD, rule.id, reason),), reason)

    if excluded:
        reason = (f"分类{category}在{area_path}范围内除已退单部门"
                  f"（{'、'.join(sorted(excluded))}）外没有匹配的派单规则，待人工派单{note}")
    else:
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
    # Why the assignment ended without a result (退单 or 转办), when, and (转办) to whom.
    exit_reason: str | None = None
    exited_at: datetime | None = None
    transferred_to: str | None = None

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

    def reject(self, reason: str, now: datetime) -> Assignment:
        """退单: the department pushes back a misrouted assignment, with its reason; only
        before it signed for it (after 报到 the way out is 转办)."""
        if self.state is AssignmentState.SIGNED_FOR:
            raise Conflict(
                "部门已报到，不能再退单；如不属于本部门职责，请转办",
                "an assignment already signed for cannot be rejected; transfer it instead",
                code="invalid_state",
            )
        self._check_state(AssignmentState.DISPATCHED, "退单", "rejected")
        reason = _required(reason, "退单理由", "reason")
        return replace(self, state=AssignmentState.REJECTED, exit_reason=reason, exited_at=now,
                       updated_at=now)

    def transfer(self, to_department_id: str, reason: str, now: datetime) -> Assignment:
        """转办: the department hands its assignment on to another department, with a reason;
        while it is dispatched or signed for."""
        if self.state not in (AssignmentState.DISPATCHED, AssignmentState.SIGNED_FOR):
            self._check_state(AssignmentState.DISPATCHED, "转办", "transferred")
        if to_department_id == self.department_id:
            raise Invalid("不能转办给本部门", "an assignment cannot be transferred to its own"
                          " department", code="transfer_to_self")
        reason = _required(reason, "转办理由", "reason")
        return replace(self, state=AssignmentState.TRANSFERRED, exit_reason=reason,
                       exited_at=now, transferred_to=to_department_id, updated_at=now)

    def progress(self, note: str, now: datetime) -> tuple[Assignment, str]:
        """A progress note (办理进展): only while the department handles the case."""
        if self.state is AssignmentState.DISPATCHED:
            raise Conflict(
                "部门尚未报到，须先报到再填写办理进展",
                "the department must sign for the assignment before reporting progress",
                code="invalid_state",
            )
        self._check_state(AssignmentState.SIGNED_FOR, "填写办理进展", "given a progress note")
        note = _required(note, "办理进展", "note")
        return replace(self, updated_at=now), note


def _required(text: str, what_zh: str, field: str) -> str:
    text = text.strip()
    if not text:
        raise Invalid(f"{what_zh}不能为空", f"the {field} must not be empty",
                      code=f"{field}_required")
    return text
