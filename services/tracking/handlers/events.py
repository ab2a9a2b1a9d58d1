"""Consumed: every case event of intake and dispatch goes on the case's timeline, brings the
read model up to date and starts, stops or moves the clocks it concerns — in the consumer's
transaction, after the inbox claim."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import asyncpg
import structlog

from services.tracking import domain, repository
from services.tracking.domain import AssignmentState, CaseStatus, CaseView, Clock
from services.tracking.handlers import clocks, pauses
from services.tracking.repository import AssignmentRow
from services.tracking.repository import kpi as kpi_repo
from services.tracking.repository import sla as sla_repo
from shared import deferred, outbox
from shared.contract import (
    EVENT_TYPES,
    Actor,
    CaseClockStarted,
    CaseClockStopped,
    CaseClosed,
    CaseDispatched,
    CaseExtensionDecided,
    CaseMerged,
    CaseRejected,
    CaseResolved,
    CaseSignedFor,
    CaseTransferred,
    Envelope,
    EventPayload,
    Priority,
    Topics,
    new_event,
)
from shared.lifecycle import STATUS_OF_EVENT

log = structlog.get_logger()

PRODUCER = "tracking"
# Who raises the alerts: the deadline watch itself, not a person (时限监控).
SYSTEM_ACTOR = Actor(subject="system:tracking", role="system", name="时限监控")

# Every case event of intake and dispatch goes on the timeline (not only status changes).
CONSUMED = tuple(
    cls for cls in EVENT_TYPES.values() if cls.TOPIC in (Topics.INTAKE, Topics.DISPATCH)
)
_ASSIGNMENT_STATE_OF_EVENT = {
    CaseDispatched.TYPE: AssignmentState.DISPATCHED,
    CaseSignedFor.TYPE: AssignmentState.SIGNED_FOR,
    CaseResolved.TYPE: AssignmentState.RESOLVED,
}
_ENDING = (CaseRejected.TYPE, CaseTransferred.TYPE)  # 退单/转办 end the assignment
# Events that change none of the facts the KPI sums are kept from (the view kpi_contribution,
# migration 0008) unless they move the case to another area: after any other event — one of
# a type not listed here too — the sums are brought up to date.
_NO_KPI_FACTS = frozenset(
    {
        "case.reported",
        "case.whistled",
        "case.unroutable",
        "case.reopened",
        "case.photo_added",
        "case.progressed",
        "case.extension_requested",
        "case.pause_requested",
    }
)


async def record_case_event(
    conn: asyncpg.Connection, event: Envelope[Any], *, sign_for_deadline: timedelta | None = None
) -> None:
    """Append the event to its case's timeline, bring the read model up to date and start,
    stop or move the clocks it concerns. Clocks that start, stop or move are announced
    (case.clock_started / case.clock_stopped), so intake can show the reporter the deadline.
    ``sign_for_deadline`` overrides every policy's sign-for limit (short demo/test clocks)."""
    if not await repository.append_event(conn, event):
        return  # already on the timeline
    moved = await _apply_to_case(conn, event)
    p = event.payload
    facts = {
        "case_no": p.case_no,
        "area_path": p.area_path,
        "category": p.category,
        "priority": p.priority,
    }
    announce: list[EventPayload] = []

    def started(clock: Clock, due_at: Any) -> None:
        announce.append(
            CaseClockStarted(
                **facts,
                assignment_id=p.assignment_id,
                department_id=p.department_id,
                clock=clock.value,
                due_at=due_at,
            )
        )

    def stopped(clock: Clock, assignment_id: Any = None, department_id: Any = None) -> None:
        announce.append(
            CaseClockStopped(
                **facts,
                assignment_id=assignment_id or p.assignment_id,
                department_id=department_id or p.department_id,
                clock=str(clock),
                because=event.type,
            )
        )

    if event.type in _ASSIGNMENT_STATE_OF_EVENT:
        state = await _advance_assignment(conn, event, _ASSIGNMENT_STATE_OF_EVENT[event.type])
        if event.type == CaseDispatched.TYPE:
            for s in await clocks.start_clocks(conn, event, state, sign_for=sign_for_deadline):
                started(s.clock, s.due_at)
    elif event.type in _ENDING:
        await _ensure_assignment(conn, event)
        await sla_repo.end_assignment(conn, p.assignment_id, event.occurred_at, event.type)
    if event.type in domain.CLOCKS_STOPPED_BY:
        for clock in await clocks.stop_clocks(
            conn,
            p.assignment_id,
            domain.CLOCKS_STOPPED_BY[event.type],
            event.occurred_at,
            event.type,
        ):
            stopped(clock)
    elif event.type == CaseExtensionDecided.TYPE and p.approved and p.days > 0:
        plan = await clocks.extend_resolution(conn, event)
        if plan is not None:  # the deadline moved: announced like a clock (re)started
            started(Clock.RESOLVE, plan.due_at)
    elif event.type in pauses.HANDLED:  # 挂账/缓办: the clocks stand still, then move on
        changes = await pauses.apply(conn, event)
        for clock in changes.stopped:
            stopped(clock)
        for s in changes.started:
            started(s.clock, s.due_at)
    elif event.type in (CaseClosed.TYPE, CaseMerged.TYPE):
        for row in await clocks.stop_case_clocks(
            conn, event.case_id, event.occurred_at, event.type
        ):
            stopped(row["clock"], row["assignment_id"], row["department_id"])
    await pauses.end_with_clocks(conn, event)  # a pause running ends with the clocks
    if moved or event.type not in _NO_KPI_FACTS:  # the KPI sums follow the facts (0008)
        # once per transaction: a consumer's batch refreshes all its cases in one statement
        await deferred.once_per_transaction(conn, kpi_repo.refresh, event.case_id)
    if announce:
        await outbox.add(
            conn,
            *(
                new_event(a, case_id=event.case_id, producer=PRODUCER, actor=SYSTEM_ACTOR)
                for a in announce
            ),
        )


async def _ensure_assignment(conn: asyncpg.Connection, event: Envelope[Any]) -> None:
    """An assignment ended (退单/转办) before we heard of its dispatch: create it, so the
    dispatch arriving later starts no clock."""
    p = event.payload
    row = AssignmentRow(
        assignment_id=p.assignment_id,
        case_id=event.case_id,
        department_id=p.department_id,
        department_name=None,
        role=None,
        state=AssignmentState.DISPATCHED,
    )
    if not await repository.insert_assignment(conn, row):
        await repository.lock_assignment_state(conn, p.assignment_id)


async def _apply_to_case(conn: asyncpg.Connection, event: Envelope[Any]) -> bool:
    """Whether the case, known before, is now in another area."""
    p = event.payload
    incoming = CaseView(
        case_no=p.case_no,
        area_path=p.area_path,
        category=p.category,
        priority=Priority(p.priority).value,
        status=STATUS_OF_EVENT.get(event.type, CaseStatus.REPORTED),
        updated_at=event.occurred_at,
    )
    if await repository.insert_case(conn, event.case_id, incoming):
        return False
    current = await repository.get_case(conn, event.case_id, lock=True)
    assert current is not None  # it exists: the insert found it
    partial = event.type == CaseResolved.TYPE and not p.case_resolved  # a co-handler's
    if event.type not in STATUS_OF_EVENT or partial:  # e.g. a rating: facts, same status
        incoming = replace(incoming, status=current.status)
    merged = domain.merge_case(current, incoming)
    if merged != current:
        await repository.update_case(conn, event.case_id, merged)
    return merged.area_path != current.area_path


async def _advance_assignment(
    conn: asyncpg.Connection, event: Envelope[Any], incoming: AssignmentState
) -> AssignmentState:
    """Create the assignment from whichever of its events comes first; otherwise lock it and
    move it forward. Returns the state it is in now."""
    p = event.payload
    at = event.occurred_at
    row = AssignmentRow(
        assignment_id=p.assignment_id,
        case_id=event.case_id,
        department_id=p.department_id,
        department_name=getattr(p, "department_name", None),
        role=getattr(p, "role", None),
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
        log.info(
            "assignment_event_out_of_order",
            assignment_id=str(p.assignment_id),
            state=state.value,
            event_state=incoming.value,
        )
    await repository.update_assignment(conn, replace(row, state=state))
    return state
