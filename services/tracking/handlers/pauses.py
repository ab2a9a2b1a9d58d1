"""Approved pauses (挂账/缓办), inside the transaction of the event that moves them: an
approval stands the assignment's running clocks still from its ``occurred_at`` (their pending
timers cancelled, so nothing fires while it lasts); the resumption moves their deadlines by
the time they stood still (``clocks.replan``) and runs them again. Pauses are kept by request
id, so a decision or a resume heard twice changes nothing the second time, and a resume heard
before its decision is remembered until the decision comes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import NamedTuple
from uuid import UUID

import asyncpg
import structlog

from services.tracking import repository
from services.tracking.domain import Clock
from services.tracking.handlers import clocks as clock_handlers
from services.tracking.handlers.clocks import Started
from services.tracking.repository import pauses as pause_repo
from services.tracking.repository import sla as sla_repo
from services.tracking.repository.pauses import PauseRow
from services.tracking.repository.sla import ClockRow
from shared.contract import AssignmentFacts, CaseFacts, CasePauseDecided, CaseResumed, Envelope
from shared.db import Conn

log = structlog.get_logger()


class Changes(NamedTuple):
    stopped: list[Clock]  # stood still (announced as case.clock_stopped)
    started: list[Started]  # running again with a new deadline (case.clock_started)


NOTHING = Changes([], [])


async def start_pause(conn: Conn, event: Envelope[CasePauseDecided]) -> Changes:
    """case.pause_decided: when approved, the assignment's running clocks stand still."""
    if not event.payload.approved:
        return NOTHING
    p = event.payload
    at = event.occurred_at
    current = await sla_repo.assignment_sla(conn, p.assignment_id)  # locks the assignment
    pause = await pause_repo.record_start(
        conn, p.request_id, p.assignment_id, event.case_id, p.kind.value, p.reason, at
    )
    if pause is None:
        log.info("pause_decision_again", request_id=str(p.request_id))
        return NOTHING
    if pause.ended_at is not None:
        # Its resumption was heard first: the pause is over — the clocks that kept running
        # move by it now.
        log.info("pause_heard_after_its_end", request_id=str(p.request_id))
        return await _move(conn, event, current, ("running",), after=pause.ended_at)
    paused = await pause_repo.pause_clocks(conn, p.assignment_id)
    await repository.cancel_assignment_timers(conn, p.assignment_id, paused, at)
    log.info(
        "clocks_paused",
        assignment_id=str(p.assignment_id),
        kind=p.kind.value,
        clocks=[c.value for c in paused],
    )
    return Changes(paused, [])


async def end_pause(conn: Conn, event: Envelope[CaseResumed]) -> Changes:
    """case.resumed: the clocks the pause held run again, their deadlines moved by it."""
    p = event.payload
    at = event.occurred_at
    current = await sla_repo.assignment_sla(conn, p.assignment_id)
    pause = await pause_repo.record_end(
        conn, p.request_id, p.assignment_id, event.case_id, at, event.type
    )
    if pause is None:
        log.info("pause_end_again", request_id=str(p.request_id))
        return NOTHING
    if pause.started_at is None:  # the decision comes later; nothing stands still yet
        log.info("resume_heard_before_its_decision", request_id=str(p.request_id))
        return NOTHING
    return await _move(conn, event, current, ("paused",), after=at)


async def _move(
    conn: Conn,
    event: Envelope[AssignmentFacts],
    current: asyncpg.Record | None,
    states: tuple[str, ...],
    *,
    after: datetime,
) -> Changes:
    """Move the assignment's clocks in ``states`` by every pause of it and run them again."""
    if current is None:
        return NOTHING
    held = await pause_repo.lock_clocks(conn, event.payload.assignment_id, states)
    moved = await clock_handlers.replan(conn, event, current, held, after=after, state="running")
    if held and not moved:  # no policy: nothing to move them by; they run on as they were
        for c in held:
            await sla_repo.move_clock(conn, replace(c, state="running"))
    return Changes([], [Started(m.clock.clock, m.plan.due_at) for m in moved])


async def end_with_assignment_clocks(conn: Conn, event: Envelope[AssignmentFacts]) -> None:
    """The event stopped every clock of its assignment (办结, 退单, 转办) while a pause ran:
    the pause ends with them."""
    await pause_repo.end_running(
        conn, event.occurred_at, event.type, assignment_id=event.payload.assignment_id
    )


async def end_with_case_clocks(conn: Conn, event: Envelope[CaseFacts]) -> None:
    """The event stopped every clock of its case (结案, 合并) while a pause ran: the pause
    ends with them."""
    await pause_repo.end_running(conn, event.occurred_at, event.type, case_id=event.case_id)


# --- what the history shows ------------------------------------------------------------------


def paused_for(pauses: Iterable[PauseRow], clock: ClockRow, now: datetime) -> timedelta:
    """How long ``clock`` has stood still so far: the pauses of its assignment while it ran
    (an open one until ``now``, none after the clock stopped)."""
    until = clock.stopped_at or now
    total = timedelta(0)
    for p in pauses:
        if p.assignment_id != clock.assignment_id or p.started_at is None:
            continue
        start, end = max(p.started_at, clock.started_at), min(p.ended_at or now, until)
        if end > start:
            total += end - start
    return total


async def case_pauses(pool: asyncpg.Pool, case_id: UUID) -> list[PauseRow]:
    """The case's pauses, oldest first (read after the caller was allowed the case)."""
    async with pool.acquire() as conn:
        return await pause_repo.of_case(conn, case_id)
