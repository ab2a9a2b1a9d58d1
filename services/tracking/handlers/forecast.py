"""The resolution forecast (预计办结时间) of a case, kept current inside the transaction of every
event that changes it (dispatch, sign-for, pause, resumption, extension, resolution, rework,
rejection, transfer, closing), and by a sweep once an expected time has passed unresolved.

Each assignment with a resolution clock gets its forecast (``domain.forecast``) from its
pinned policy, the working calendar and the history of its department and category; the
case's forecast (its assignment expected last) is announced as ``case.resolution_forecast``
only when it differs from the one announced before — a duplicate event changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.tracking import repository
from services.tracking.domain import forecast as rules
from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.forecast import Forecast, History, ResolveClock
from services.tracking.domain.policy_data import pinned_from_data
from services.tracking.domain.timeline import timeline
from services.tracking.handlers.sla import load_calendar
from services.tracking.repository import forecast as repo
from services.tracking.repository.forecast import OpenAssignment
from shared import outbox
from shared.contract import (
    Actor,
    CaseClosed,
    CaseDispatched,
    CaseExtensionDecided,
    CaseFacts,
    CaseMerged,
    CasePauseDecided,
    CaseRejected,
    CaseReopened,
    CaseResolutionForecast,
    CaseResolved,
    CaseResumed,
    CaseReworkRequested,
    CaseSignedFor,
    CaseTransferred,
    Clock,
    EventPayload,
    Priority,
    new_event,
)
from shared.clock import utcnow
from shared.db import Conn

log = structlog.get_logger()

# The events after which a case's forecast is made again.
RECOMPUTED_BY: tuple[type[EventPayload], ...] = (
    CaseDispatched,
    CaseSignedFor,
    CasePauseDecided,
    CaseResumed,
    CaseExtensionDecided,
    CaseResolved,
    CaseReworkRequested,
    CaseReopened,
    CaseRejected,
    CaseTransferred,
    CaseClosed,
    CaseMerged,
)
HISTORY_LIMIT = 500  # resolved assignments of the category read per forecast, newest first
SWEEP_ACTOR = Actor(subject="system:tracking", role="system", name="时限监控")


async def refresh(
    conn: Conn, case_id: UUID, facts: CaseFacts, now: datetime
) -> CaseResolutionForecast | None:
    """Forecast the case's assignments at ``now``; the case's forecast to announce when it
    changed (None: unchanged)."""
    calendar = await load_calendar(conn)
    forecasts: dict[UUID, Forecast] = {}
    histories: dict[tuple[str, bool], History] = {}
    for a in await repo.case_assignments(conn, case_id):
        f = await _assignment(conn, a, facts.category, calendar, histories, now)
        if f is not None:
            forecasts[a.assignment_id] = f
    await repo.keep(conn, case_id, forecasts, now)
    case = rules.case_forecast(list(forecasts.values()))
    if not await repo.keep_case(conn, case_id, case, now):
        return None
    return _payload(facts, case)


async def _assignment(
    conn: Conn,
    a: OpenAssignment,
    category: str,
    calendar: WorkingCalendar | None,
    histories: dict[tuple[str, bool], History],
    now: datetime,
) -> Forecast | None:
    if a.state == "resolved" and a.resolved_at is not None:
        return rules.resolved(a.resolved_at, a.due_at)
    if a.clock_state not in ("running", "paused") or a.policy is None or calendar is None:
        return None  # no resolution clock runs: nothing to forecast
    assert a.due_at is not None and a.dispatched_at is not None
    limit = pinned_from_data(a.policy).policy.clocks()[Clock.RESOLVE]
    basis = timeline(calendar, limit.working)
    clock = ResolveClock(
        basis,
        limit.working,
        a.dispatched_at,
        limit.duration(basis) + basis.day_length * a.extension_days,
        a.due_at,
        rules.pause_spans(a.pauses, now),
    )
    key = (a.department_id, limit.working)
    if key not in histories:
        histories[key] = await _history(
            conn, a.department_id, category, calendar, limit.working, now
        )
    return rules.forecast(clock, histories[key], now)


async def _history(
    conn: Conn,
    department_id: str,
    category: str,
    calendar: WorkingCalendar,
    working: bool,
    now: datetime,
) -> History:
    """The category's resolution durations of the last days, in the clock's basis."""
    since = now - timedelta(days=rules.HISTORY_DAYS)
    rows = await repo.history(conn, department_id, category, since, now, HISTORY_LIMIT)
    basis = timeline(calendar, working)
    own, every = [], []
    for r in rows:
        clock = ResolveClock(
            basis,
            working,
            r.dispatched_at,
            timedelta(0),
            r.resolved_at,
            rules.pause_spans(r.pauses, r.resolved_at),
        )
        used = clock.used(r.resolved_at)
        every.append(used)
        if r.own:
            own.append(used)
    return History(own, every)


def _payload(facts: CaseFacts, f: Forecast | None) -> CaseResolutionForecast:
    case: dict[str, Any] = {
        "case_no": facts.case_no,
        "area_path": facts.area_path,
        "category": facts.category,
        "priority": Priority(facts.priority),
    }
    if f is None:
        return CaseResolutionForecast(
            **case,
            expected_at=None,
            earliest=None,
            latest=None,
            basis=None,
            deadline_at=None,
            sample_size=0,
            breach_likely=False,
        )
    return CaseResolutionForecast(
        **case,
        expected_at=f.expected_at,
        earliest=f.earliest,
        latest=f.latest,
        basis=f.basis,
        deadline_at=f.due_at,
        sample_size=f.sample_size,
        breach_likely=f.breach_likely,
        breach_probability=f.breach_probability,
        reason_zh=f.reason_zh,
        reason_en=f.reason_en,
    )


# --- the sweep: an expected time passed without a resolution ------------------------------------


async def sweep(pool: asyncpg.Pool, now: datetime, limit: int = 100) -> int:
    """Re-forecast (one transaction) up to ``limit`` open cases whose expected resolution has
    passed — conditional on their not being resolved yet — and announce the new forecasts.
    How many cases were looked at."""
    async with pool.acquire() as conn, conn.transaction():
        due = await repo.stale_cases(conn, now, limit)
        for case_id in due:
            case = await repository.get_case(conn, case_id)
            if case is None:  # pragma: no cover - the forecast references the case
                continue
            facts = CaseFacts(
                case_no=case.case_no,
                area_path=case.area_path,
                category=case.category,
                priority=Priority(case.priority),
            )
            payload = await refresh(conn, case_id, facts, now)
            if payload is not None:
                await outbox.add(
                    conn,
                    new_event(
                        payload,
                        case_id=case_id,
                        producer="tracking",
                        occurred_at=now,
                        actor=SWEEP_ACTOR,
                    ),
                )
    if due:
        log.info("forecasts_swept", cases=len(due))
    return len(due)


class ForecastSweeper:
    """A background worker: every ``interval`` seconds, re-forecast the open cases whose
    expected resolution passed (``sweep``), so no forecast shown stays in the past."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        interval: float,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._pool, self._interval, self._now = pool, interval, now
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="forecast-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                while await sweep(self._pool(), self._now()) >= 100:
                    pass
            except (asyncpg.PostgresError, OSError) as e:
                log.warning("forecast_sweep_failed", error=str(e))
            await asyncio.sleep(self._interval)
