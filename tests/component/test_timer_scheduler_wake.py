"""The timer scheduler on real PostgreSQL (issue 14: an alert ≤1 s after its deadline): a timer
armed due soon wakes a sleeping scheduler through NOTIFY, a far one does not, the listening
connection comes back after it is lost or could not be had, and a backlog is fired several
batches at a time, each timer once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from services.tracking import consumers, handlers
from services.tracking.domain import Clock, TimerKind
from services.tracking.repository import schedule_timer
from services.tracking.repository.timers import TIMERS_ARMED
from services.tracking.scheduler import TimerScheduler
from shared import db
from shared.contract import CaseDispatched, CaseReported, Location, Priority, new_event
from tests.conftest import free_port, migrated_database

from tests.helpers import eventually

FACTS = {
    "case_no": "YA20260302-0014",
    "area_path": "YA/YA01/YA0101/YA0101-01",
    "category": "E0101",
    "priority": Priority.NORMAL,
}


@pytest.fixture
async def dsn(pg_server):
    return await migrated_database(pg_server, "tracking")


@pytest.fixture
async def pool(dsn, pool_factory):
    return await pool_factory(dsn)


async def dispatch(pool, at, deadline):
    """Record a case reported and dispatched at ``at`` with a sign-for deadline after it, as
    tracking's consumers do; its (case_id, assignment_id)."""
    case, assignment = uuid.uuid4(), uuid.uuid4()
    events = [
        new_event(
            CaseReported(
                **FACTS,
                grid_code="YA0101-01",
                description="占道经营",
                location=Location(address="桃园小区"),
                reporter="网格员李明",
                reported_at=at,
            ),
            case_id=case,
            producer="intake",
            occurred_at=at,
        ),
        new_event(
            CaseDispatched(
                **FACTS,
                assignment_id=assignment,
                department_id="cg",
                department_name="城管",
                role="lead",
                rule_id=6,
                reason="E0101",
                description="占道经营",
            ),
            case_id=case,
            producer="dispatch",
            occurred_at=at,
        ),
    ]
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await consumers.record(conn, event, sign_for_deadline=deadline)
    return case, assignment


async def listening(pool) -> list[int]:
    """The backends LISTENing for armed timers (a LISTEN is the last thing they ran)."""
    rows = await pool.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = $1",
        f'LISTEN "{TIMERS_ARMED}"',
    )
    return [r["pid"] for r in rows]


async def overdue_at(pool, case):
    """When the case's overdue alert was written (its transaction's start), or None."""
    return await pool.fetchval(
        "SELECT created_at FROM outbox WHERE type = 'case.overdue' AND key = $1", str(case)
    )


async def test_a_timer_armed_due_soon_wakes_a_sleeping_scheduler(pool, dsn):
    # Nothing due: without a wake-up it would sleep its whole 30 s poll interval.
    scheduler = TimerScheduler(lambda: pool, poll_interval=30.0, batch_size=10, listen_dsn=dsn)
    scheduler.start()
    try:
        await eventually(
            lambda: listening(pool), timeout=10, interval=0.05, message="the scheduler listens"
        )
        now = datetime.now(UTC)
        case, _ = await dispatch(pool, now, timedelta(seconds=1))
        fired = await eventually(
            lambda: overdue_at(pool, case),
            timeout=8,
            interval=0.05,
            message="the overdue alert, long before the next poll",
        )
        assert fired - (now + timedelta(seconds=1)) < timedelta(seconds=3)
    finally:
        await scheduler.stop()
    assert await eventually(
        lambda: _none_listening(pool),
        timeout=5,
        interval=0.05,
        message="its listening connection closed",
    )


async def test_only_a_timer_due_within_the_horizon_notifies(pool):
    case, assignment = await dispatch(pool, datetime.now(UTC), timedelta(hours=2))
    notes: list[str] = []

    def note(_conn, _pid, _channel, payload) -> None:
        notes.append(payload)

    listener = await pool.acquire()
    try:
        await listener.add_listener(TIMERS_ARMED, note)

        async def arm(*dues: timedelta, step: int) -> None:
            async with pool.acquire() as conn, conn.transaction():
                for i, due in enumerate(dues):
                    await schedule_timer(
                        conn,
                        case_id=case,
                        assignment_id=assignment,
                        clock=Clock.SIGN_FOR,
                        due_at=datetime.now(UTC) + due,
                        correlation_id=None,
                        causation_id=None,
                        kind=TimerKind.ESCALATION,
                        step=step + i,
                    )

        await arm(timedelta(hours=2), step=10)  # far: found by a poll in time
        await arm(timedelta(seconds=1), timedelta(seconds=-5), timedelta(seconds=2), step=20)

        async def heard():
            await listener.execute("SELECT 1")
            return notes

        await eventually(heard, timeout=5, interval=0.05, message="the notification")
        await listener.execute("SELECT 1")
        # Notifications come in commit order: the far arming sent none; the near one, one for
        # its three timers.
        assert notes == [""]
    finally:
        await listener.remove_listener(TIMERS_ARMED, note)
        await pool.release(listener)


async def test_the_listening_connection_comes_back_after_it_is_lost(pool, dsn):
    scheduler = TimerScheduler(
        lambda: pool, poll_interval=0.2, batch_size=10, listen_dsn=dsn, listen_retry=0.2
    )
    scheduler.start()
    try:
        [first] = await eventually(
            lambda: listening(pool), timeout=10, interval=0.05, message="the scheduler listens"
        )
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", first)
        again = await eventually(
            lambda: _others(pool, first),
            timeout=10,
            interval=0.05,
            message="the scheduler listens again on another connection",
        )
        assert first not in again
        case, _ = await dispatch(pool, datetime.now(UTC), timedelta(seconds=0.5))
        await eventually(
            lambda: overdue_at(pool, case),
            timeout=8,
            interval=0.05,
            message="the overdue alert after the reconnection",
        )
    finally:
        await scheduler.stop()


async def test_a_listener_that_cannot_connect_is_retried_while_the_scheduler_polls(pool):
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/tracking"  # nothing listens there
    scheduler = TimerScheduler(
        lambda: pool, poll_interval=0.1, batch_size=10, listen_dsn=nowhere, listen_retry=0.2
    )
    with capture_logs() as logs:
        scheduler.start()
        try:

            async def failed():
                return [e for e in logs if e["event"] == "listen_error"][1:]  # tried again

            await eventually(failed, timeout=10, interval=0.05, message="the LISTEN retried")
            case, _ = await dispatch(pool, datetime.now(UTC), timedelta(seconds=0.3))
            await eventually(
                lambda: overdue_at(pool, case),
                timeout=8,
                interval=0.05,
                message="the overdue alert by polling",
            )
        finally:
            await scheduler.stop()


async def _none_listening(pool) -> bool:
    return await listening(pool) == []


async def _others(pool, pid: int) -> list[int]:
    return [p for p in await listening(pool) if p != pid]


class CountingScheduler(TimerScheduler):
    """Counts the ticks in flight at once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = self.most = self.ticks = 0

    async def tick(self) -> handlers.Tick:
        self.in_flight += 1
        self.ticks += 1
        self.most = max(self.most, self.in_flight)
        try:
            return await super().tick()
        finally:
            self.in_flight -= 1


async def test_a_backlog_is_fired_several_batches_at_a_time_each_timer_once(pool):
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    cases = [(await dispatch(pool, t0, timedelta(minutes=30)))[0] for _ in range(23)]
    clock = {"now": t0 + timedelta(minutes=31)}
    scheduler = CountingScheduler(
        lambda: pool, poll_interval=0.05, batch_size=2, parallel=3, now=lambda: clock["now"]
    )
    await scheduler.run_once()
    assert scheduler.most == 3  # one batch first, then three at a time while they come full
    rows = await pool.fetch(
        "SELECT key, count(*) AS n FROM outbox WHERE type = 'case.overdue' GROUP BY key"
    )
    assert {r["key"]: r["n"] for r in rows} == {str(c): 1 for c in cases}
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM timers WHERE state = 'pending' AND due_at <= $1", clock["now"]
        )
        == 0
    )
    # One more round finds nothing: a single empty batch.
    before = scheduler.ticks
    await scheduler.run_once()
    assert scheduler.ticks == before + 1


async def test_without_a_listen_dsn_it_polls(pg_server):
    dsn = await migrated_database(pg_server, "tracking")
    small = await db.create_pool(dsn, min_size=1, max_size=1, attempts=3)
    try:
        scheduler = TimerScheduler(lambda: small, poll_interval=0.1, batch_size=10)
        scheduler.start()
        try:
            case, _ = await dispatch(small, datetime.now(UTC), timedelta(seconds=0.3))
            await eventually(
                lambda: overdue_at(small, case),
                timeout=8,
                interval=0.05,
                message="the overdue alert by polling",
            )
            assert await listening(small) == []
        finally:
            await scheduler.stop()
    finally:
        await small.close()
