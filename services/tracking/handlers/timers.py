"""The timer scheduler's work: fire what is due — warnings (预警), overdue alerts (超时) and
escalations (逐级上报) — exactly once, each in the transaction that marks its timer fired."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
import structlog

from services.tracking import domain, repository
from services.tracking.domain import TimerKind, TimerState
from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.schedule import next_escalation
from services.tracking.handlers.events import PRODUCER, SYSTEM_ACTOR
from services.tracking.handlers.sla import load_calendar
from services.tracking.repository import DueTimer
from services.tracking.repository.cases import append_events
from shared import metrics, outbox
from shared.contract import (
    CaseDeadlineWarning,
    Clock,
    CaseEscalated,
    CaseOverdue,
    Envelope,
    EventPayload,
    Level,
    Priority,
    new_event,
)
from shared.db import Conn

log = structlog.get_logger()


class Tick(NamedTuple):
    claimed: int
    fired: int


def _fires(t: DueTimer, now: datetime) -> bool:
    return domain.timer_fires(
        domain.TimerFacts(
            clock=t.clock,
            kind=t.kind,
            revision=t.revision,
            clock_running=t.clock_running,
            clock_revision=t.clock_revision,
            clock_due_at=t.clock_due_at or t.due_at,
            assignment=t.assignment_state,
            ended=t.ended,
            case=t.case.status,
        ),
        now,
    )


async def fire_due_timers(conn: Conn, *, now: datetime, limit: int) -> Tick:
    """One scheduler tick in ONE transaction: claim due timers (skipping rows another replica
    holds), mark them fired, write each alert to the outbox and to the timeline, and schedule
    the next repetition of an escalation. A timer moves pending → fired once, so a restart or
    a second replica neither loses nor doubles an alert."""
    async with conn.transaction():
        due = await repository.claim_due_timers(conn, now, limit)
        if not due:
            return Tick(0, 0)
        fire: list[DueTimer] = []
        moot: list[DueTimer] = []  # moot: the step was done, the case closed or the deadline moved
        for t in due:
            (fire if _fires(t, now) else moot).append(t)
        await repository.settle_timers(conn, [t.id for t in fire], TimerState.FIRED, now)
        await repository.settle_timers(conn, [t.id for t in moot], TimerState.CANCELLED, now)
        alerts = [alert_event(t, now) for t in fire]
        # While a clock stays overdue, the ladder's last level hears it again at its interval.
        repeating = [t for t in fire if t.kind is TimerKind.ESCALATION and t.ladder is not None]
        calendar = await load_calendar(conn) if repeating else None  # once per tick
        if calendar is not None:
            for t in repeating:
                await _schedule_repetition(conn, t, calendar, now)
        await outbox.add(conn, *alerts)
        await append_events(conn, alerts)  # one round trip for the batch, not one per alert
    for t in fire:
        metrics.TIMERS_FIRED.labels(PRODUCER, t.clock.value).inc()
        if t.kind is TimerKind.DEADLINE:
            metrics.OVERDUE.labels(PRODUCER, t.clock.value).inc()
        log.info(
            "timer_fired",
            case_id=str(t.case_id),
            assignment_id=str(t.assignment_id),
            clock=t.clock.value,
            kind=t.kind.value,
            step=t.step,
            due_at=t.due_at.isoformat(),
            late_seconds=round((now - t.due_at).total_seconds(), 3),
        )
    return Tick(len(due), len(fire))


async def _schedule_repetition(
    conn: Conn, t: DueTimer, calendar: WorkingCalendar, now: datetime
) -> None:
    assert t.ladder is not None
    nxt = next_escalation(t.ladder, calendar, t.clock, t.step, t.due_at, now)
    if nxt is None:
        return
    await repository.schedule_timer(
        conn,
        case_id=t.case_id,
        assignment_id=t.assignment_id,
        clock=t.clock,
        due_at=nxt.at,
        kind=TimerKind.ESCALATION,
        step=nxt.step,
        level=nxt.level,
        revision=t.revision,
        correlation_id=t.correlation_id,
        causation_id=t.causation_id,
    )


def alert_event(t: DueTimer, now: datetime) -> Envelope[Any]:
    facts: dict[str, Any] = {
        "case_no": t.case.case_no,
        "area_path": t.case.area_path,
        "category": t.case.category,
        "priority": Priority(t.case.priority),
        "assignment_id": t.assignment_id,
        "department_id": t.department_id,
        "department_name": t.department_name or t.department_id,
        "clock": t.clock.value,
    }
    deadline = t.clock_due_at or t.due_at
    payload: EventPayload
    if t.kind is TimerKind.WARNING:
        payload = CaseDeadlineWarning(**facts, due_at=deadline)
    elif t.kind is TimerKind.DEADLINE:
        payload = CaseOverdue(**facts, due_at=t.due_at)
    else:
        steps = len(t.ladder.steps) if t.ladder is not None else 1
        payload = CaseEscalated(
            **facts,
            due_at=deadline,
            level=Level(t.level) if t.level else Level.COMMUNITY,
            step=t.step,
            repeat=max(0, t.step - steps + 1),
        )
    event = new_event(
        payload, case_id=t.case_id, producer=PRODUCER, occurred_at=now, actor=SYSTEM_ACTOR
    )
    # The alert belongs to the dispatch that started the clock: same correlation chain.
    return event.model_copy(
        update={
            "correlation_id": t.correlation_id or event.correlation_id,
            "causation_id": t.causation_id,
        }
    )


async def timers_due(pool: asyncpg.Pool, now: datetime) -> tuple[int, datetime | None]:
    """After each scheduler round: the timers due and the next due time, and the gauges of
    what is due and of the clocks overdue now (per clock, 0 for a clock with none)."""
    async with pool.acquire() as conn:
        due, next_due, overdue = await repository.timers_due(conn, now)
    metrics.TIMERS_DUE.labels(PRODUCER).set(due)
    for clock in Clock:
        metrics.OVERDUE_NOW.labels(PRODUCER, clock.value).set(overdue.get(clock.value, 0))
    return due, next_due
