"""Consumed: every case event of intake and dispatch goes on the case's timeline, brings the
read model up to date and starts, stops or moves the clocks it concerns — in the consumer's
transaction, after the inbox claim.

One handler per event class (``consumers`` routes each class to its own). Each records its
event the same way (``_record``: the timeline, the read model, the KPI sums, the clocks'
announcements) and runs its own step on the clocks and the assignment, typed by its class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

import structlog

from services.tracking import domain, repository
from services.tracking.domain import AssignmentState, CaseStatus, CaseView, Clock
from services.tracking.handlers import clocks, forecast, pauses
from services.tracking.repository import AssignmentRow
from services.tracking.repository import grid_work as grid_work_repo
from services.tracking.repository import kpi as kpi_repo
from services.tracking.repository import sla as sla_repo
from shared import deferred, outbox
from shared.contract import (
    EVENT_TYPES,
    Actor,
    AssignmentFacts,
    AssignmentRole,
    CaseClockStarted,
    CaseClockStopped,
    CaseClosed,
    CaseDispatched,
    CaseExtensionDecided,
    CaseExtensionRequested,
    CaseFacts,
    CaseMerged,
    CasePauseDecided,
    CasePauseRequested,
    CasePhotoAdded,
    CaseProgressed,
    CaseRated,
    CaseRejected,
    CaseReopened,
    CaseReported,
    CaseResolved,
    CaseResumed,
    CaseReworkRequested,
    CaseSignedFor,
    CaseTransferred,
    CaseUnroutable,
    CaseWhistled,
    Envelope,
    EventPayload,
    Priority,
    Topics,
    new_event,
    status_of,
)
from shared.db import Conn

log = structlog.get_logger()

PRODUCER = "tracking"
# Who raises the alerts: the deadline watch itself, not a person (时限监控).
SYSTEM_ACTOR = Actor(subject="system:tracking", role="system", name="时限监控")

# Every case event of intake and dispatch goes on the timeline (not only status changes): each
# of these classes has its handler below, routed in ``consumers``.
CONSUMED = tuple(
    cls for cls in EVENT_TYPES.values() if cls.TOPIC in (Topics.INTAKE, Topics.DISPATCH)
)

E = TypeVar("E", bound=CaseFacts)


class Announcements:
    """The clocks an event started, moved or stopped, announced in its transaction
    (case.clock_started / case.clock_stopped, ``because`` the event's type), so intake can
    show the reporter the deadline."""

    def __init__(self, event: Envelope[CaseFacts]) -> None:
        self._event = event
        self.payloads: list[EventPayload] = []

    def started(self, clock: Clock, due_at: datetime, assignment: AssignmentFacts) -> None:
        facts = self._facts(assignment.assignment_id, assignment.department_id)
        self.payloads.append(CaseClockStarted(**facts, clock=clock, due_at=due_at))

    def stopped(self, clock: Clock, assignment_id: UUID, department_id: str) -> None:
        facts = self._facts(assignment_id, department_id)
        self.payloads.append(CaseClockStopped(**facts, clock=clock, because=self._event.type))

    def _facts(self, assignment_id: UUID, department_id: str) -> dict[str, Any]:
        """The case's facts as the event carries them, and the assignment's."""
        p = self._event.payload
        return {
            "case_no": p.case_no,
            "area_path": p.area_path,
            "category": p.category,
            "priority": p.priority,
            "assignment_id": assignment_id,
            "department_id": department_id,
        }


# An event's own step, after it went on the timeline and into the read model.
Step = Callable[[Conn, Envelope[E], Announcements], Awaitable[None]]


async def _record(
    conn: Conn,
    event: Envelope[E],
    step: Step[E] | None = None,
    *,
    kpi_facts: bool = True,
    status_kept: bool = False,
) -> None:
    """What every event goes through: append it to its case's timeline (once: heard again, it
    changes nothing), bring the read model up to date, run its ``step``, refresh the case's
    KPI sums and announce the clocks that started, moved or stopped.

    ``kpi_facts``: the event may change facts the KPI sums are kept from (the view
    kpi_contribution, migration 0008); one that does not refreshes them only when it moves the
    case to another area. ``status_kept``: the event's status does not apply to a case known
    before (a co-handler's resolution while others still work)."""
    if not await repository.append_event(conn, event):
        return  # already on the timeline
    moved = await _apply_to_case(conn, event, status_kept=status_kept)
    announce = Announcements(event)
    if step is not None:
        await step(conn, event, announce)
    if isinstance(event.payload, forecast.RECOMPUTED_BY):  # 预计办结时间, announced if changed
        found = await forecast.refresh(conn, event.case_id, event.payload, event.occurred_at)
        announce.payloads.extend([found] if found is not None else [])
    if moved or kpi_facts:  # the KPI sums follow the facts (0008)
        # once per transaction: a consumer's batch refreshes all its cases in one statement
        await deferred.once_per_transaction(conn, kpi_repo.refresh, event.case_id)
    if announce.payloads:
        await outbox.add(
            conn,
            *(
                new_event(a, case_id=event.case_id, producer=PRODUCER, actor=SYSTEM_ACTOR)
                for a in announce.payloads
            ),
        )


# --- intake's events ---------------------------------------------------------------------------


async def record_reported(conn: Conn, event: Envelope[CaseReported]) -> None:
    """网格发现: where the case came from (案件来源) is kept for the counts."""
    await _record(conn, event, _note_origin, kpi_facts=False)


async def record_whistled(conn: Conn, event: Envelope[CaseWhistled]) -> None:
    await _record(conn, event, kpi_facts=False)


async def record_rework_requested(conn: Conn, event: Envelope[CaseReworkRequested]) -> None:
    await _record(conn, event)


async def record_rated(conn: Conn, event: Envelope[CaseRated]) -> None:
    await _record(conn, event)


async def record_reopened(conn: Conn, event: Envelope[CaseReopened]) -> None:
    """重开: the closing before it no longer counts."""
    await _record(conn, event, _note_reopening, kpi_facts=False)


async def record_photo_added(conn: Conn, event: Envelope[CasePhotoAdded]) -> None:
    await _record(conn, event, kpi_facts=False)


async def record_closed(conn: Conn, event: Envelope[CaseClosed]) -> None:
    """结案: every clock of the case stops; how and by whom it was closed is kept (随手做)."""
    await _record(conn, event, _close)


async def record_merged(conn: Conn, event: Envelope[CaseMerged]) -> None:
    """A duplicate merged into its primary case is closed: every clock of it stops."""
    await _record(conn, event, _stop_case_clocks)


# --- dispatch's events -------------------------------------------------------------------------


async def record_unroutable(conn: Conn, event: Envelope[CaseUnroutable]) -> None:
    await _record(conn, event, kpi_facts=False)


async def record_dispatched(
    conn: Conn,
    event: Envelope[CaseDispatched],
    *,
    sign_for_deadline: timedelta | None = None,
) -> None:
    """派单: the assignment, and the clocks it still needs started under the policy in force.
    ``sign_for_deadline`` overrides every policy's sign-for limit (short demo/test clocks)."""
    await _record(conn, event, partial(_start_clocks, sign_for=sign_for_deadline))


async def record_signed_for(conn: Conn, event: Envelope[CaseSignedFor]) -> None:
    """报到: the assignment moves on; its sign-for clock stops."""
    await _record(conn, event, _sign_for)


async def record_progressed(conn: Conn, event: Envelope[CaseProgressed]) -> None:
    """A progress note: the on-site clock stops."""
    stops = domain.CLOCKS_STOPPED_BY[CaseProgressed]
    await _record(conn, event, partial(_stop_clocks, stops=stops), kpi_facts=False)


async def record_resolved(conn: Conn, event: Envelope[CaseResolved]) -> None:
    """办结: the assignment is resolved and its clocks stop; a co-handler's resolution while
    others still work leaves the case's status as it is."""
    await _record(conn, event, _resolve, status_kept=not event.payload.case_resolved)


async def record_rejected(conn: Conn, event: Envelope[CaseRejected]) -> None:
    """退单: the assignment ends, and its clocks stop."""
    stops = domain.CLOCKS_STOPPED_BY[CaseRejected]
    await _record(conn, event, partial(_end_assignment, stops=stops))


async def record_transferred(conn: Conn, event: Envelope[CaseTransferred]) -> None:
    """转办: the assignment ends, and its clocks stop."""
    stops = domain.CLOCKS_STOPPED_BY[CaseTransferred]
    await _record(conn, event, partial(_end_assignment, stops=stops))


async def record_extension_requested(conn: Conn, event: Envelope[CaseExtensionRequested]) -> None:
    await _record(conn, event, kpi_facts=False)


async def record_extension_decided(conn: Conn, event: Envelope[CaseExtensionDecided]) -> None:
    """延期: an approved extension moves the resolution deadline."""
    await _record(conn, event, _extend)


async def record_pause_requested(conn: Conn, event: Envelope[CasePauseRequested]) -> None:
    await _record(conn, event, kpi_facts=False)


async def record_pause_decided(conn: Conn, event: Envelope[CasePauseDecided]) -> None:
    """挂账/缓办 approved: the assignment's running clocks stand still."""
    await _record(conn, event, _pause)


async def record_resumed(conn: Conn, event: Envelope[CaseResumed]) -> None:
    """The pause ended: the clocks it held run again, their deadlines moved."""
    await _record(conn, event, _resume)


# --- the events' steps ---------------------------------------------------------------------------


async def _note_origin(conn: Conn, event: Envelope[CaseReported], _: Announcements) -> None:
    p = event.payload
    await grid_work_repo.record_origin(
        conn, event.case_id, p.source.value, event.occurred_at, p.reporter
    )


async def _note_reopening(conn: Conn, event: Envelope[CaseReopened], _: Announcements) -> None:
    await grid_work_repo.record_reopening(conn, event.case_id, event.occurred_at)


async def _close(conn: Conn, event: Envelope[CaseClosed], announce: Announcements) -> None:
    await _stop_case_clocks(conn, event, announce)
    await grid_work_repo.record_closing(
        conn,
        event.case_id,
        event.event_id,
        event.occurred_at,
        event.payload.resolution,
        event.actor,
    )


async def _start_clocks(
    conn: Conn,
    event: Envelope[CaseDispatched],
    announce: Announcements,
    *,
    sign_for: timedelta | None,
) -> None:
    p = event.payload
    state = await _advance_assignment(
        conn,
        event,
        AssignmentState.DISPATCHED,
        department_name=p.department_name,
        role=p.role,
    )
    for s in await clocks.start_clocks(conn, event, state, sign_for=sign_for):
        announce.started(s.clock, s.due_at, p)


async def _sign_for(conn: Conn, event: Envelope[CaseSignedFor], announce: Announcements) -> None:
    await _advance_assignment(conn, event, AssignmentState.SIGNED_FOR)
    await _stop_clocks(conn, event, announce, stops=domain.CLOCKS_STOPPED_BY[CaseSignedFor])


async def _resolve(conn: Conn, event: Envelope[CaseResolved], announce: Announcements) -> None:
    await _advance_assignment(conn, event, AssignmentState.RESOLVED)
    await _stop_clocks(conn, event, announce, stops=domain.CLOCKS_STOPPED_BY[CaseResolved])


async def _end_assignment(
    conn: Conn,
    event: Envelope[AssignmentFacts],
    announce: Announcements,
    *,
    stops: tuple[Clock, ...],
) -> None:
    """退单/转办 end the assignment (known or not yet) and stop its clocks."""
    p = event.payload
    await _ensure_assignment(conn, event)
    await sla_repo.end_assignment(conn, p.assignment_id, event.occurred_at, event.type)
    await _stop_clocks(conn, event, announce, stops=stops)


async def _stop_clocks(
    conn: Conn,
    event: Envelope[AssignmentFacts],
    announce: Announcements,
    *,
    stops: tuple[Clock, ...],
) -> None:
    """Stop those clocks of the event's assignment; a pause running ends with its resolution
    clock (办结, 退单, 转办)."""
    p = event.payload
    for clock in await clocks.stop_clocks(
        conn, p.assignment_id, stops, event.occurred_at, event.type
    ):
        announce.stopped(clock, p.assignment_id, p.department_id)
    if Clock.RESOLVE in stops:
        await pauses.end_with_assignment_clocks(conn, event)


async def _stop_case_clocks(
    conn: Conn, event: Envelope[CaseFacts], announce: Announcements
) -> None:
    """结案, 合并: every clock of the case stops, and a pause running with them."""
    for row in await clocks.stop_case_clocks(conn, event.case_id, event.occurred_at, event.type):
        announce.stopped(Clock(row["clock"]), row["assignment_id"], row["department_id"])
    await pauses.end_with_case_clocks(conn, event)


async def _extend(
    conn: Conn, event: Envelope[CaseExtensionDecided], announce: Announcements
) -> None:
    p = event.payload
    if not (p.approved and p.days > 0):
        return
    plan = await clocks.extend_resolution(conn, event)
    if plan is not None:  # the deadline moved: announced like a clock (re)started
        announce.started(Clock.RESOLVE, plan.due_at, p)


async def _pause(conn: Conn, event: Envelope[CasePauseDecided], announce: Announcements) -> None:
    _announce_changes(announce, event.payload, await pauses.start_pause(conn, event))


async def _resume(conn: Conn, event: Envelope[CaseResumed], announce: Announcements) -> None:
    _announce_changes(announce, event.payload, await pauses.end_pause(conn, event))


def _announce_changes(announce: Announcements, p: AssignmentFacts, changes: pauses.Changes) -> None:
    """挂账/缓办: the clocks stand still, then move on."""
    for clock in changes.stopped:
        announce.stopped(clock, p.assignment_id, p.department_id)
    for s in changes.started:
        announce.started(s.clock, s.due_at, p)


# --- the read model ----------------------------------------------------------------------------


async def _ensure_assignment(conn: Conn, event: Envelope[AssignmentFacts]) -> None:
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


async def _apply_to_case(conn: Conn, event: Envelope[CaseFacts], *, status_kept: bool) -> bool:
    """Whether the case, known before, is now in another area."""
    p = event.payload
    status = status_of(p)  # the lifecycle's status of the event, if any
    incoming = CaseView(
        case_no=p.case_no,
        area_path=p.area_path,
        category=p.category,
        priority=Priority(p.priority).value,
        status=CaseStatus.REPORTED if status is None else status,
        updated_at=event.occurred_at,
    )
    if await repository.insert_case(conn, event.case_id, incoming):
        return False
    current = await repository.get_case(conn, event.case_id, lock=True)
    assert current is not None  # it exists: the insert found it
    if status is None or status_kept:  # e.g. a rating: facts, same status
        incoming = replace(incoming, status=current.status)
    merged = domain.merge_case(current, incoming)
    if merged != current:
        await repository.update_case(conn, event.case_id, merged)
    return merged.area_path != current.area_path


async def _advance_assignment(
    conn: Conn,
    event: Envelope[AssignmentFacts],
    incoming: AssignmentState,
    *,
    department_name: str | None = None,
    role: AssignmentRole | None = None,
) -> AssignmentState:
    """Create the assignment from whichever of its events comes first; otherwise lock it and
    move it forward. Returns the state it is in now. Only the dispatch names the department
    and its role."""
    p = event.payload
    at = event.occurred_at
    row = AssignmentRow(
        assignment_id=p.assignment_id,
        case_id=event.case_id,
        department_id=p.department_id,
        department_name=department_name,
        role=role,
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
