"""Dispatch's use cases: each one transaction — read, let the domain decide, write, outbox."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from services.dispatch import domain, repository
from services.dispatch.domain import Assignment, AssignmentState, Department, RoutingRule
from services.dispatch.repository import Note, WaitingCase
from shared import outbox
from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound
from shared.events import (
    Actor,
    CaseDispatched,
    CaseProgressed,
    CaseRejected,
    CaseResolved,
    CaseReworkRequested,
    CaseSignedFor,
    CaseTransferred,
    CaseUnroutable,
    CaseWhistled,
    Envelope,
    Priority,
    new_event,
)

PRODUCER = "dispatch"
log = structlog.get_logger()


def _facts(a: Assignment | CaseWhistled) -> dict[str, Any]:
    return {"case_no": a.case_no, "area_path": a.area_path, "category": a.category,
            "priority": Priority(a.priority)}


# Automatic routing when the whistle carries no actor (an event from before attribution).
SYSTEM_ACTOR = Actor(subject="system:dispatch", role="system", name="自动派单")


# --- consumed: 社区吹哨 → 派单 -----------------------------------------------------------


async def route_whistle(conn: asyncpg.Connection, event: Envelope[CaseWhistled]) -> None:
    """Route a whistled case to its departments, or queue it for manual dispatch.

    Runs in the consumer's transaction, after the inbox claimed the event. A repeated
    whistle never opens a second assignment of the case at the same department.
    """
    whistle = event.payload
    now = datetime.now(UTC)
    # Routing a whistle is the community's act: its actor travels on to what follows.
    actor = event.actor or SYSTEM_ACTOR
    departments = {d.id: d for d in await repository.list_departments(conn)}
    decision = domain.route(
        category=whistle.category, area_path=whistle.area_path,
        rules=await repository.list_rules(conn, whistle.category),
        named=whistle.departments, departments=departments,
    )
    if not decision.routable:
        await repository.queue_for_manual_dispatch(conn, WaitingCase(
            case_id=event.case_id, case_no=whistle.case_no, area_path=whistle.area_path,
            category=whistle.category, priority=whistle.priority.value,
            description=whistle.description, departments=list(whistle.departments),
            note=whistle.note, reason=decision.reason, whistled_at=event.occurred_at,
            queued_at=now,
        ))
        await outbox.add(conn, new_event(
            CaseUnroutable(**_facts(whistle), reason=decision.reason),
            case_id=event.case_id, producer=PRODUCER, occurred_at=now, actor=actor,
        ))
        log.info("case_unroutable", reason=decision.reason)
        return

    await repository.clear_manual_dispatch(conn, event.case_id, now)
    dispatched = []
    for route in decision.routes:
        assignment = Assignment(
            id=uuid4(), case_id=event.case_id, case_no=whistle.case_no,
            department_id=route.department_id, department_name=route.department_name,
            role=route.role, state=AssignmentState.DISPATCHED, rule_id=route.rule_id,
            reason=route.reason, area_path=whistle.area_path, category=whistle.category,
            priority=whistle.priority.value, description=whistle.description,
            note=whistle.note, result=None, dispatched_at=now, signed_for_at=None,
            resolved_at=None, updated_at=now,
        )
        if not await repository.insert_assignment(conn, assignment):
            log.info("assignment_already_open", department_id=route.department_id)
            continue
        dispatched.append(new_event(
            CaseDispatched(
                **_facts(assignment), assignment_id=assignment.id,
                department_id=assignment.department_id,
                department_name=assignment.department_name, role=assignment.role.value,
                rule_id=assignment.rule_id, reason=assignment.reason,
                description=assignment.description,
            ),
            case_id=event.case_id, producer=PRODUCER, occurred_at=now, actor=actor,
        ))
        log.info("case_dispatched", department_id=route.department_id, role=route.role.value,
                 rule_id=route.rule_id)
    if dispatched:
        await outbox.add(conn, *dispatched)


async def send_back_for_rework(conn: asyncpg.Connection,
                               event: Envelope[CaseReworkRequested]) -> None:
    """返工: the community's on-site check failed — the case returns to the same department(s)
    as new assignments that point at the ones they redo, with the community's reason."""
    p = event.payload
    now = datetime.now(UTC)
    departments = p.departments or await repository.resolved_departments(conn, event.case_id)
    actor = event.actor or SYSTEM_ACTOR
    dispatched = []
    for department_id in departments:
        previous = await repository.latest_resolved(conn, event.case_id, department_id)
        if previous is None:
            log.info("rework_without_resolved_assignment", department_id=department_id)
            continue
        again = replace(
            previous, id=uuid4(), state=AssignmentState.DISPATCHED, result=None,
            reason=f"返工：{p.reason}（原派单 {previous.id}）", priority=p.priority.value,
            dispatched_at=now, signed_for_at=None, resolved_at=None, updated_at=now,
        )
        if not await repository.insert_assignment(conn, again):
            continue  # already open again at that department
        await repository.mark_rework(conn, again.id, previous.id)
        dispatched.append(new_event(
            CaseDispatched(**_facts(again), assignment_id=again.id,
                           department_id=again.department_id,
                           department_name=again.department_name, role=again.role.value,
                           rule_id=again.rule_id, reason=again.reason,
                           description=again.description, rework=True),
            case_id=event.case_id, producer=PRODUCER, occurred_at=now, actor=actor,
        ))
        log.info("case_sent_back_for_rework", department_id=department_id,
                 rework_of=str(previous.id))
    if dispatched:
        await outbox.add(conn, *dispatched)


# --- HTTP: the department's side (报到, 办结) ---------------------------------------------


async def _locked_assignment(conn: asyncpg.Connection, assignment_id: UUID) -> Assignment:
    a = await repository.get_assignment(conn, assignment_id, lock=True)
    if a is None:
        raise _assignment_not_found(assignment_id)
    return a


def _assignment_not_found(assignment_id: UUID) -> NotFound:
    return NotFound(f"派单 {assignment_id} 不存在", f"assignment {assignment_id} not found",
                    code="assignment_not_found")


async def sign_for(pool: asyncpg.Pool, who: Principal, assignment_id: UUID) -> Assignment:
    """报到: the assigned department signs for its assignment."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        a = await _locked_assignment(conn, assignment_id)
        who.require_department(a.department_id)  # before the state: a stranger learns nothing
        a = a.sign_for(now)
        await repository.update_assignment(conn, a)
        await outbox.add(conn, new_event(
            CaseSignedFor(**_facts(a), assignment_id=a.id, department_id=a.department_id),
            case_id=a.case_id, producer=PRODUCER, occurred_at=now, actor=who.actor,
        ))
    log.info("assignment_signed_for", assignment_id=str(a.id), department_id=a.department_id,
             actor=who.subject)
    return a


async def resolve(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID, result: str
) -> Assignment:
    """办结: the assigned department reports the case handled, with its result. In a joint
    case (联合办理) the case as a whole is resolved when no assignment of it is still open."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        # Lock every assignment of the case (in one order, so two departments reporting at
        # once cannot deadlock): the last to report is the one who sees all others done.
        found = await repository.get_assignment(conn, assignment_id)
        if found is None:
            raise _assignment_not_found(assignment_id)
        await repository.lock_case_assignments(conn, found.case_id)
        a = await _locked_assignment(conn, assignment_id)
        who.require_department(a.department_id)
        a = a.resolve(result, now)
        await repository.update_assignment(conn, a)
        case_resolved = not await repository.work_left(conn, a.case_id)
        await outbox.add(conn, new_event(
            CaseResolved(**_facts(a), assignment_id=a.id, department_id=a.department_id,
                         result=a.result or "", case_resolved=case_resolved),
            case_id=a.case_id, producer=PRODUCER, occurred_at=now, actor=who.actor,
        ))
    log.info("assignment_resolved", assignment_id=str(a.id), department_id=a.department_id,
             actor=who.subject)
    return a


def _dispatched_event(a: Assignment, actor: Actor) -> Envelope[CaseDispatched]:
    return new_event(
        CaseDispatched(**_facts(a), assignment_id=a.id, department_id=a.department_id,
                       department_name=a.department_name, role=a.role.value,
                       rule_id=a.rule_id, reason=a.reason, description=a.description),
        case_id=a.case_id, producer=PRODUCER, occurred_at=a.dispatched_at, actor=actor,
    )


def _next_assignment(a: Assignment, department: Department, rule_id: int | None, reason: str,
                     now: datetime) -> Assignment:
    """A new assignment of the same case and role at another department (改派, 转办)."""
    return replace(
        a, id=uuid4(), department_id=department.id, department_name=department.name,
        state=AssignmentState.DISPATCHED, rule_id=rule_id, reason=reason, result=None,
        dispatched_at=now, signed_for_at=None, resolved_at=None, updated_at=now,
        exit_reason=None, exited_at=None, transferred_to=None,
    )


async def reject(pool: asyncpg.Pool, who: Principal, assignment_id: UUID, reason: str) -> Assignment:
    """退单: the assigned department pushes back a misrouted assignment (before 报到), with its
    reason. In the same transaction the case goes on to the next candidate — the routing
    decision without every department that rejected the case — or, when none is left, to the
    community/street command for manual dispatch (社区协调), which is announced."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        found = await repository.get_assignment(conn, assignment_id)
        if found is None:
            raise _assignment_not_found(assignment_id)
        who.require_department(found.department_id)  # before the state: a stranger learns nothing
        await repository.lock_case_assignments(conn, found.case_id)
        a = (await _locked_assignment(conn, assignment_id)).reject(reason, now)
        await repository.update_assignment(conn, a)
        events: list[Envelope[Any]] = [new_event(
            CaseRejected(**_facts(a), assignment_id=a.id, department_id=a.department_id,
                         reason=a.exit_reason or ""),
            case_id=a.case_id, producer=PRODUCER, occurred_at=now, actor=who.actor,
        )]
        rejected = await repository.rejected_departments(conn, a.case_id)
        departments = {d.id: d for d in await repository.list_departments(conn)}
        # Re-routing goes by the rules: the whistle's named departments are not kept on the
        # assignment (a named department's rejection hands the choice to the rules).
        decision = domain.route(
            category=a.category, area_path=a.area_path,
            rules=await repository.list_rules(conn, a.category), named=(),
            departments=departments, exclude=rejected,
        )
        nxt = None
        for r in decision.routes:
            candidate = _next_assignment(
                a, departments.get(r.department_id) or Department(r.department_id,
                                                                  r.department_name, ""),
                r.rule_id, f"退单后改派：{a.department_name}退单（{a.exit_reason}）；{r.reason}",
                now)
            if await repository.insert_assignment(conn, candidate):
                nxt = candidate
                break
        if nxt is not None:
            events.append(_dispatched_event(nxt, who.actor))
        else:
            names = "、".join(departments[d].name if d in departments else d for d in rejected)
            why = (f"{a.department_name}退单（{a.exit_reason}），已退单部门：{names}；"
                   f"没有其他可派部门，转社区协调（待人工派单）。{decision.reason}")
            await repository.queue_for_manual_dispatch(conn, WaitingCase(
                case_id=a.case_id, case_no=a.case_no, area_path=a.area_path,
                category=a.category, priority=a.priority, description=a.description,
                departments=[], note=a.note, reason=why, whistled_at=a.dispatched_at,
                queued_at=now,
            ))
            events.append(new_event(CaseUnroutable(**_facts(a), reason=why), case_id=a.case_id,
                                    producer=PRODUCER, occurred_at=now, actor=who.actor))
        await outbox.add(conn, *events)
    log.info("assignment_rejected", assignment_id=str(a.id), department_id=a.department_id,
             rerouted_to=nxt.department_id if nxt else None, actor=who.subject)
    return a


async def transfer(pool: asyncpg.Pool, who: Principal, assignment_id: UUID,
                   to_department_id: str, reason: str) -> Assignment:
    """转办: the assigned department hands its assignment on to another department, with a
    reason; the target gets a new assignment of the same role."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        found = await repository.get_assignment(conn, assignment_id)
        if found is None:
            raise _assignment_not_found(assignment_id)
        who.require_department(found.department_id)
        await repository.lock_case_assignments(conn, found.case_id)
        a = (await _locked_assignment(conn, assignment_id)).transfer(to_department_id, reason,
                                                                     now)
        target = await repository.get_department(conn, to_department_id)
        if target is None:
            raise Invalid(f"部门“{to_department_id}”不存在",
                          f"unknown department '{to_department_id}'", code="unknown_department")
        nxt = _next_assignment(a, target, None,
                               f"由{a.department_name}转办：{a.exit_reason}", now)
        if await repository.has_open_assignment(conn, a.case_id, target.id):
            raise _already_open(target)
        await repository.update_assignment(conn, a)
        if not await repository.insert_assignment(conn, nxt):
            raise _already_open(target)  # rolls the transfer back
        await outbox.add(conn, new_event(
            CaseTransferred(**_facts(a), assignment_id=a.id, department_id=a.department_id,
                            to_department_id=target.id, reason=a.exit_reason or ""),
            case_id=a.case_id, producer=PRODUCER, occurred_at=now, actor=who.actor,
        ), _dispatched_event(nxt, who.actor))
    log.info("assignment_transferred", assignment_id=str(a.id), department_id=a.department_id,
             to_department_id=target.id, actor=who.subject)
    return a


def _already_open(target: Department) -> Conflict:
    return Conflict(f"{target.name}已有该案件未办结的派单，不能重复转办",
                    f"department '{target.id}' already has an open assignment on this case",
                    code="already_assigned")


async def progress(pool: asyncpg.Pool, who: Principal, assignment_id: UUID,
                   note: str) -> tuple[Assignment, Note]:
    """办理进展: the assigned department records a progress note while it handles the case."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        a = await _locked_assignment(conn, assignment_id)
        who.require_department(a.department_id)
        a, text = a.progress(note, now)
        await repository.update_assignment(conn, a)
        saved = await repository.add_note(conn, a.id, text, who.subject, who.actor.name, now)
        await outbox.add(conn, new_event(
            CaseProgressed(**_facts(a), assignment_id=a.id, department_id=a.department_id,
                           note=text),
            case_id=a.case_id, producer=PRODUCER, occurred_at=now, actor=who.actor,
        ))
    log.info("assignment_progressed", assignment_id=str(a.id), department_id=a.department_id,
             actor=who.subject)
    return a, saved


def require_reader(who: Principal, a: Assignment) -> None:
    """The assigned department, or an area holder whose subtree contains the case."""
    if who.area_filter() is None:
        who.require_department(a.department_id)
    else:
        who.require_area(a.area_path)


async def get_assignment(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID
) -> tuple[Assignment, list[Note]]:
    """The assignment and its progress notes (newest last)."""
    async with pool.acquire() as conn:
        a = await repository.get_assignment(conn, assignment_id)
        if a is None:
            raise _assignment_not_found(assignment_id)
        require_reader(who, a)
        notes = await repository.list_notes(conn, assignment_id)
    return a, notes


async def department_assignments(
    pool: asyncpg.Pool, who: Principal, department_id: str, state: AssignmentState | None,
    limit: int, offset: int, priority: Priority | None = None, sort: str = "dispatched_at",
) -> tuple[Department, list[Assignment]]:
    """A department's inbox (待报到, 办理中, 已办结): all of it for its own staff; for area
    holders, the part inside their subtree."""
    areas = who.area_filter()
    if areas is None:
        who.require_department(department_id)
    async with pool.acquire() as conn:
        dept = await repository.get_department(conn, department_id)
        if dept is None:
            raise NotFound(f"部门“{department_id}”不存在", f"department '{department_id}' not found",
                           code="department_not_found")
        rows = await repository.list_assignments(
            conn, department_id, state.value if state else None, areas, limit, offset,
            priority.value if priority else None, sort,
        )
    return dept, rows


# --- HTTP: routing rules -----------------------------------------------------------------


@dataclass(frozen=True)
class AddRule:
    category_code: str
    area_prefix: str
    department_id: str


async def add_rule(pool: asyncpg.Pool, cmd: AddRule) -> tuple[RoutingRule, Department]:
    """Add a routing rule; one rule per (category, area prefix)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.category_exists(conn, cmd.category_code):
            raise Invalid(f"事件分类“{cmd.category_code}”不存在",
                          f"unknown category '{cmd.category_code}'", code="unknown_category")
        dept = await repository.get_department(conn, cmd.department_id)
        if dept is None:
            raise Invalid(f"部门“{cmd.department_id}”不存在",
                          f"unknown department '{cmd.department_id}'", code="unknown_department")
        rule = await repository.insert_rule(
            conn, cmd.category_code, cmd.area_prefix, cmd.department_id
        )
        if rule is None:
            raise await _rule_exists(conn, cmd)
    log.info("routing_rule_added", rule_id=rule.id, category=rule.category_code,
             area_prefix=rule.area_prefix, department_id=rule.department_id)
    return rule, dept


async def _rule_exists(conn: asyncpg.Connection, cmd: AddRule) -> Conflict:
    """The 409 for a duplicate rule, naming the rule already there."""
    existing = await repository.find_rule(conn, cmd.category_code, cmd.area_prefix)
    if existing is None:  # deleted since the insert (not possible yet): say so plainly
        return Conflict("该分类在该范围内的规则刚刚发生变化，请重试",
                        "the rule for this category and area just changed; try again",
                        code="rule_exists")
    holder = await repository.get_department(conn, existing.department_id)
    name = holder.name if holder else existing.department_id
    return Conflict(
        f"分类{existing.category_code}在{existing.area_prefix}范围内已有规则#{existing.id}"
        f"（由{name}主办），不能重复添加",
        f"rule #{existing.id} already routes category {existing.category_code} in"
        f" {existing.area_prefix} (to department '{existing.department_id}')",
        code="rule_exists",
    )


# --- HTTP: departments -------------------------------------------------------------------


async def get_department(pool: asyncpg.Pool, department_id: str) -> Department:
    async with pool.acquire() as conn:
        dept = await repository.get_department(conn, department_id)
    if dept is None:
        raise NotFound(f"部门“{department_id}”不存在", f"department '{department_id}' not found",
                       code="department_not_found")
    return dept


async def put_department(pool: asyncpg.Pool, dept: Department, who: Principal) -> bool:
    """Create or replace a department (already checked by ``domain.new_department``);
    True when it was created. Routing rules and assignments that name it are kept."""
    async with pool.acquire() as conn, conn.transaction():
        created = await repository.put_department(conn, dept)
    log.info("department_created" if created else "department_updated", department_id=dept.id,
             kind=dept.kind, areas=list(dept.areas), actor=who.subject)
    return created
