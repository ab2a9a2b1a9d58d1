"""Tracking's use cases: record a case event (timeline, read model, clocks), fire due timers,
read a case's history and the overdue board. Each runs in one transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
import structlog

from services.tracking import domain, repository
from services.tracking.domain import AssignmentState, CaseStatus, CaseView, Clock, TimerState
from services.tracking.repository import AssignmentRow, DueTimer
from shared import metrics, outbox
from shared.auth import Forbidden, Principal, Role
from shared.errors import NotFound
from shared.lifecycle import STATUS_OF_EVENT
from shared.events import (
    CaseClockStarted,
    CaseClockStopped,
    CaseMerged,
    EVENT_TYPES,
    Topics,
    Actor,
    CaseClosed,
    CaseDispatched,
    CaseOverdue,
    CaseRejected,
    CaseResolved,
    CaseSignedFor,
    CaseTransferred,
    Envelope,
    Priority,
    new_event,
)

log = structlog.get_logger()

PRODUCER = "tracking"
# Who raises the overdue alerts: the deadline watch itself, not a person (时限监控).
SYSTEM_ACTOR = Actor(subject="system:tracking", role="system", name="时限监控")

# Every case event of intake and dispatch goes on the timeline (not only status changes).
CONSUMED_TYPES = tuple(
    cls.TYPE for cls in EVENT_TYPES.values() if cls.TOPIC in (Topics.INTAKE, Topics.DISPATCH)
)
_ASSIGNMENT_STATE_OF_EVENT = {
    CaseDispatched.TYPE: AssignmentState.DISPATCHED,
    CaseSignedFor.TYPE: AssignmentState.SIGNED_FOR,
    CaseResolved.TYPE: AssignmentState.RESOLVED,
}


# --- consumed: every case event -----------------------------------------------------------------


async def record_case_event(
    conn: asyncpg.Connection, event: Envelope[Any], *, sign_for_deadline: timedelta
) -> None:
    """Append the event to its case's timeline, bring the read model up to date and start or
    stop the clocks it concerns. Runs in the consumer's transaction (after the inbox claim)."""
    if not await repository.append_event(conn, event):
        return  # already on the timeline
    await _apply_to_case(conn, event)
    p = event.payload
    facts = {"case_no": p.case_no, "area_path": p.area_path, "category": p.category,
             "priority": p.priority}
    # Clocks that start or stop are announced, so intake can show the reporter the deadline.
    announce = []
    if event.type == CaseDispatched.TYPE:
        state = await _advance_assignment(conn, event, AssignmentState.DISPATCHED)
        due_at = domain.sign_for_due_at(event.occurred_at, sign_for_deadline)
        if domain.needs_sign_for_clock(state) and await repository.schedule_timer(
            conn, case_id=event.case_id, assignment_id=p.assignment_id, clock=Clock.SIGN_FOR,
            due_at=due_at, correlation_id=event.correlation_id, causation_id=event.event_id,
        ):
            announce.append(CaseClockStarted(
                **facts, assignment_id=p.assignment_id, department_id=p.department_id,
                clock=Clock.SIGN_FOR.value, due_at=due_at))
    elif event.type in (CaseSignedFor.TYPE, CaseResolved.TYPE):
        state = await _advance_assignment(conn, event, _ASSIGNMENT_STATE_OF_EVENT[event.type])
        if domain.stops_sign_for_clock(state) and await repository.cancel_assignment_timer(
            conn, p.assignment_id, Clock.SIGN_FOR, event.occurred_at
        ):
            announce.append(CaseClockStopped(
                **facts, assignment_id=p.assignment_id, department_id=p.department_id,
                clock=Clock.SIGN_FOR.value, because=event.type))
    elif event.type in (CaseRejected.TYPE, CaseTransferred.TYPE):
        # 退单/转办 end the assignment: like a sign-for, they stop its sign-for clock (the
        # new assignment elsewhere starts its own with its CaseDispatched).
        if await repository.cancel_assignment_timer(
            conn, p.assignment_id, Clock.SIGN_FOR, event.occurred_at
        ):
            announce.append(CaseClockStopped(
                **facts, assignment_id=p.assignment_id, department_id=p.department_id,
                clock=Clock.SIGN_FOR.value, because=event.type))
    elif event.type in (CaseClosed.TYPE, CaseMerged.TYPE):
        for row in await repository.cancel_case_timers(conn, event.case_id, event.occurred_at):
            announce.append(CaseClockStopped(
                **facts, assignment_id=row["assignment_id"], department_id=row["department_id"],
                clock=row["clock"], because=event.type))
    if announce:
        await outbox.add(conn, *(new_event(a, case_id=event.case_id, producer=PRODUCER,
                                           actor=SYSTEM_ACTOR) for a in announce))


async def _apply_to_case(conn: asyncpg.Connection, event: Envelope[Any]) -> None:
    p = event.payload
    incoming = CaseView(
        case_no=p.case_no, area_path=p.area_path, category=p.category,
        priority=Priority(p.priority).value,
        status=STATUS_OF_EVENT.get(event.type, CaseStatus.REPORTED),
        updated_at=event.occurred_at,
    )
    if await repository.insert_case(conn, event.case_id, incoming):
        return
    current = await repository.get_case(conn, event.case_id, lock=True)
    assert current is not None  # it exists: the insert found it
    partial = event.type == CaseResolved.TYPE and not p.case_resolved  # a co-handler's
    if event.type not in STATUS_OF_EVENT or partial:  # e.g. a rating: facts, same status
        incoming = replace(incoming, status=current.status)
    merged = domain.merge_case(current, incoming)
    if merged != current:
        await repository.update_case(conn, event.case_id, merged)


async def _advance_assignment(
    conn: asyncpg.Connection, event: Envelope[Any], incoming: AssignmentState
) -> AssignmentState:
    """Create the assignment from whichever of its events comes first; otherwise lock it and
    move it forward. Returns the state it is in now."""
    p = event.payload
    at = event.occurred_at
    row = AssignmentRow(
        assignment_id=p.assignment_id, case_id=event.case_id, department_id=p.department_id,
        department_name=getattr(p, "department_name", None), role=getattr(p, "role", None),
        state=incoming,
        dispatched_at=at if incoming is AssignmentState.DISPATCHED else None,
        signed_for_at=at if incoming is AssignmentState.SIGNED_FOR else None,
        resolved_at=at if incoming is AssignmentState.RESOLVED else None,
    )
    if await repository.insert_assignment(conn, row):
        return incoming
    current = await repository.lock_assignment_state(conn, p.assignment_id)
    state = domain.advance_assignment(current, incoming)
    if state is not incoming:
        log.info("assignment_event_out_of_order", assignment_id=str(p.assignment_id),
                 state=state.value, event_state=incoming.value)
    await repository.update_assignment(conn, replace(row, state=state))
    return state


# --- the timer scheduler's work -----------------------------------------------------------------


class Tick(NamedTuple):
    claimed: int
    fired: int


async def fire_due_timers(conn: asyncpg.Connection, *, now: datetime, limit: int) -> Tick:
    """One scheduler tick in ONE transaction: claim due timers (skipping rows another replica
    holds), mark them fired, write each CaseOverdue to the outbox and to the timeline. A timer
    moves pending → fired once, so a restart or a second replica neither loses nor doubles it."""
    async with conn.transaction():
        due = await repository.claim_due_timers(conn, now, limit)
        if not due:
            return Tick(0, 0)
        fire, moot = [], []  # moot: the step was done or the case closed meanwhile
        for t in due:
            (fire if domain.should_fire(t.assignment_state, t.case.status) else moot).append(t)
        await repository.settle_timers(conn, [t.id for t in fire], TimerState.FIRED, now)
        await repository.settle_timers(conn, [t.id for t in moot], TimerState.CANCELLED, now)
        alerts = [_overdue_event(t, now) for t in fire]
        if alerts:
            await outbox.add(conn, *alerts)
        for alert in alerts:
            await repository.append_event(conn, alert)
    for t in fire:
        metrics.TIMERS_FIRED.labels(PRODUCER, t.clock.value).inc()
        log.info("timer_fired", case_id=str(t.case_id), assignment_id=str(t.assignment_id),
                 clock=t.clock.value, due_at=t.due_at.isoformat(),
                 late_seconds=round((now - t.due_at).total_seconds(), 3))
    return Tick(len(due), len(fire))


def _overdue_event(t: DueTimer, now: datetime) -> Envelope[Any]:
    event = new_event(
        CaseOverdue(
            case_no=t.case.case_no, area_path=t.case.area_path, category=t.case.category,
            priority=Priority(t.case.priority), assignment_id=t.assignment_id,
            department_id=t.department_id, department_name=t.department_name or t.department_id,
            clock=t.clock.value, due_at=t.due_at,
        ),
        case_id=t.case_id, producer=PRODUCER, occurred_at=now, actor=SYSTEM_ACTOR,
    )
    # The alert belongs to the dispatch that started the clock: same correlation chain.
    return event.model_copy(update={
        "correlation_id": t.correlation_id or event.correlation_id,
        "causation_id": t.causation_id,
    })


async def timers_due(pool: asyncpg.Pool, now: datetime) -> tuple[int, datetime | None]:
    async with pool.acquire() as conn:
        due, next_due = await repository.timers_due(conn, now)
    metrics.TIMERS_DUE.labels(PRODUCER).set(due)
    return due, next_due


# --- who may read what ----------------------------------------------------------------------


def require_case_reader(who: Principal, case: CaseView, assignments: list[AssignmentRow]) -> None:
    """Department staff read a case only if their department has an assignment on it (in any
    state); everyone else only if the case lies in the area they act for."""
    if who.role is Role.DEPARTMENT:
        if not any(a.department_id == who.department_id for a in assignments):
            raise Forbidden(
                f"本部门（{who.department_id}）在该案件上没有派单，无权查看其全过程",
                f"department '{who.department_id}' has no assignment on this case",
                code="not_your_case",
            )
        return
    who.require_area(case.area_path)


class BoardScope(NamedTuple):
    """What part of the overdue board a caller sees: cases under any of ``area_roots`` (None:
    no area restriction) and, if set, only ``department_id``'s assignments."""

    area_roots: tuple[str, ...] | None
    department_id: str | None


def board_scope(who: Principal, *, area: str | None, department_id: str | None) -> BoardScope:
    """Narrow the caller's own scope by the requested filters; a filter reaching outside the
    scope is refused rather than silently emptied."""
    if who.role is Role.DEPARTMENT:
        if department_id is not None and department_id != who.department_id:
            raise Forbidden(
                f"只能查看本部门的超时事项（本部门：{who.department_id}，请求：{department_id}）",
                f"department staff see only their own department's overdue items "
                f"(yours: {who.department_id}, requested: {department_id})",
                code="not_your_department",
            )
        return BoardScope((area,) if area is not None else None, who.department_id)
    if area is not None:
        who.require_area(area)
        return BoardScope((area,), department_id)
    return BoardScope(who.area_filter(), department_id)


# --- queries for supervisors --------------------------------------------------------------------


class CaseHistory(NamedTuple):
    case: CaseView
    assignments: list[AssignmentRow]
    events: list[asyncpg.Record]


async def case_history(pool: asyncpg.Pool, case_id: UUID, who: Principal) -> CaseHistory:
    """The case, its assignments and its timeline, if ``who`` may read them."""
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        case = await repository.get_case(conn, case_id)
        if case is None:
            raise NotFound(f"案件 {case_id} 不存在或尚未同步到督办系统",
                           f"case {case_id} not found (or not yet known to tracking)",
                           code="case_not_found")
        assignments = await repository.case_assignments(conn, case_id)
        require_case_reader(who, case, assignments)
        return CaseHistory(case, assignments, await repository.timeline(conn, case_id))


async def overdue_board(
    pool: asyncpg.Pool, who: Principal, *, area: str | None, department_id: str | None,
    limit: int, offset: int,
) -> list[domain.OverdueEntry]:
    """The overdue board as ``who`` may see it, narrowed by the requested filters."""
    scope = board_scope(who, area=area, department_id=department_id)
    async with pool.acquire() as conn:
        entries = await repository.overdue_board(
            conn, area_roots=scope.area_roots, department_id=scope.department_id,
            limit=limit, offset=offset,
        )
    return domain.overdue_board(entries)
