"""Dispatch's rules: who is responsible for a whistled case (派单), and the assignment's
state machine (报到 → 办结). Standard library only; no I/O, no clock (``now`` is passed in).
"""

from __future__ import annotations

import re
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


class DepartmentKind(StrEnum):
    FUNCTIONAL = "functional"        # 职能部门
    STREET_OFFICE = "street_office"  # 街道办事处
    CO_BUILDING = "co_building"      # 驻区单位 (共建单位)
    PROPERTY = "property"            # 物业企业
    VOLUNTEER = "volunteer"          # 志愿服务队


KIND_ZH = {
    DepartmentKind.FUNCTIONAL: "职能部门",
    DepartmentKind.STREET_OFFICE: "街道办事处",
    DepartmentKind.CO_BUILDING: "驻区单位",
    DepartmentKind.PROPERTY: "物业企业",
    DepartmentKind.VOLUNTEER: "志愿服务队",
}


@dataclass(frozen=True)
class Contact:
    """A duty contact (值班联系人) of a department."""

    name: str
    phone: str
    role: str | None = None  # e.g. 值班领导, 值班员


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    kind: str  # a DepartmentKind value
    areas: tuple[str, ...] = ()        # area path prefixes it serves, e.g. "YA/YA02/YA0201"
    contacts: tuple[Contact, ...] = ()  # duty contacts


DEPARTMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
AREA_PATH = re.compile(r"[A-Za-z0-9-]+(?:/[A-Za-z0-9-]+)*")
PHONE = re.compile(r"[0-9+-]{5,20}")
MAX_NAME, MAX_AREAS, MAX_AREA_PATH, MAX_CONTACTS, MAX_CONTACT_ROLE = 100, 50, 200, 20, 32


def _invalid(field: str, zh: str, en: str) -> Invalid:
    return Invalid(f"{field}：{zh}", f"{field}: {en}", code="invalid_department")


def new_department(
    department_id: str, name: str, kind: str, areas: Sequence[str],
    contacts: Sequence[tuple[str, str, str | None]],
) -> Department:
    """A department as an administrator describes it, checked field by field; the first
    problem is raised as ``Invalid`` naming the field (Chinese first). Names and contacts are
    trimmed; repeated areas are kept once, in order."""
    if not DEPARTMENT_ID.fullmatch(department_id):
        raise _invalid("id", "部门编号须为1–64位字母、数字、下划线或连字符",
                       "must be 1-64 letters, digits, '_' or '-'")
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise _invalid("name", f"部门名称不能为空，且不超过{MAX_NAME}字",
                       f"must be non-blank and at most {MAX_NAME} characters")
    if kind not in {k.value for k in DepartmentKind}:
        allowed = "、".join(f"{k.value}（{zh}）" for k, zh in KIND_ZH.items())
        raise _invalid("kind", f"部门类型“{kind}”无效，应为{allowed}之一",
                       f"unknown kind '{kind}'; one of {', '.join(DepartmentKind)}")
    if not areas:
        raise _invalid("areas", "至少填写一个服务区域", "at least one area path is required")
    if len(areas) > MAX_AREAS:
        raise _invalid("areas", f"服务区域不超过{MAX_AREAS}个", f"at most {MAX_AREAS} areas")
    kept: list[str] = []
    for i, area in enumerate(areas):
        if len(area) > MAX_AREA_PATH or not AREA_PATH.fullmatch(area):
            raise _invalid(f"areas[{i}]",
                           f"区域路径“{area}”格式无效，应为以“/”连接的区域编码，如YA/YA01/YA0101",
                           f"'{area}' is not an area path (codes of [A-Za-z0-9-] joined by '/')")
        if area not in kept:
            kept.append(area)
    if len(contacts) > MAX_CONTACTS:
        raise _invalid("contacts", f"值班联系人不超过{MAX_CONTACTS}个",
                       f"at most {MAX_CONTACTS} contacts")
    people: list[Contact] = []
    for i, (raw_name, raw_phone, raw_role) in enumerate(contacts):
        c_name, phone = raw_name.strip(), raw_phone.strip()
        role = (raw_role or "").strip() or None
        if not c_name or len(c_name) > MAX_NAME:
            raise _invalid(f"contacts[{i}].name", "联系人姓名不能为空",
                           f"must be non-blank and at most {MAX_NAME} characters")
        if not PHONE.fullmatch(phone) or not any(ch.isdigit() for ch in phone):
            raise _invalid(f"contacts[{i}].phone",
                           f"电话“{phone}”格式无效，应为5–20位数字、“+”或“-”，如0351-1234567",
                           f"'{phone}' is not a phone number (5-20 of digits, '+', '-')")
        if role is not None and len(role) > MAX_CONTACT_ROLE:
            raise _invalid(f"contacts[{i}].role", f"职务不超过{MAX_CONTACT_ROLE}字",
                           f"at most {MAX_CONTACT_ROLE} characters")
        people.append(Contact(c_name, phone, role))
    return Department(department_id, name, kind, tuple(kept), tuple(people))


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
