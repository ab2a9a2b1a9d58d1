"""Approved pauses (挂账/缓办) on tracking's clocks, on real PostgreSQL with an injected clock:
while a pause runs no warning, overdue alert or escalation fires; the resumption moves the
deadline by exactly the working time the clock stood still and schedules what is left once;
decisions and resumptions heard twice or in the wrong order change nothing more; an extension
approved while paused counts; the case history shows it all.

The demo calendar and E0101 normal, as in test_tracking_sla: dispatched Monday 2026-03-02
09:00, the resolution is due Thursday 09:00 (3 working days), warned Wednesday 12:00.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest

from services.tracking import repository
from services.tracking.api.history import case_timeline
from services.tracking.domain import Clock, TimerKind
from services.tracking.handlers.sla import load_calendar
from shared.auth import Principal, Role
from shared.contract import (
    CaseClosed,
    CasePauseDecided,
    CaseResolved,
    CaseResumed,
    PauseKind,
    new_event,
)
from tests.component import test_tracking_sla as sla
from tests.component.test_tracking_sla import (
    FACTS,
    MON,
    CaseSignedFor,
    alerts,
    announced,
    at,
    clocks_of,
    dispatched,
    extension,
    pending,
    record,
    step,
)
from tests.helpers import eventually

pool = sla.pool  # the same fixture: a migrated, seeded tracking database per test
DISTRICT = Principal(subject="command", name="区指挥中心", role=Role.DISTRICT, area="YA")
PAUSED_AT, RESUMED_AT = at(1, 9), at(8, 9)  # Tuesday 09:00 → Tuesday next week 09:00


def decided(case, assignment, when, request, approved=True, kind=PauseKind.HANG):
    return step(
        CasePauseDecided,
        case,
        assignment,
        when,
        request_id=request,
        kind=kind,
        reason="需列入改造计划",
        approved=approved,
        comment=None if approved else "理由不充分",
    )


def resumed(case, assignment, when, request):
    return step(CaseResumed, case, assignment, when, request_id=request, note="资金已落实")


async def signed_for(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    await record(
        pool,
        dispatched(case, assignment, MON),
        step(CaseSignedFor, case, assignment, MON + timedelta(minutes=10)),
    )
    return case, assignment


async def fire(pool, now):
    async with pool.acquire() as conn:
        while (await sla.handlers.fire_due_timers(conn, now=now, limit=50)).claimed:
            pass


async def test_no_timer_fires_while_paused_and_the_deadline_moves_by_the_paused_time(pool):
    case, assignment = await signed_for(pool)
    request = uuid.uuid4()
    await record(pool, decided(case, assignment, PAUSED_AT, request, approved=False))
    assert (await clocks_of(pool, assignment))["resolve"]["state"] == "running"  # refused

    await record(pool, decided(case, assignment, PAUSED_AT, request))
    clock = (await clocks_of(pool, assignment))["resolve"]
    assert (clock["state"], clock["due_at"], clock["revision"]) == ("paused", at(3, 9), 0)
    assert await pending(pool, assignment) == []  # every pending timer cancelled
    stopped = await announced(pool, case, "case.clock_stopped")
    assert [(s["clock"], s["because"]) for s in stopped if s["because"] != "case.signed_for"] == [
        ("resolve", "case.pause_decided")
    ]

    # Days pass — the old warning, deadline and escalations — and nothing fires.
    for day in range(1, 8):
        await fire(pool, at(day, 17))
    assert await alerts(pool, case) == []

    await record(pool, resumed(case, assignment, RESUMED_AT, request))
    clock = (await clocks_of(pool, assignment))["resolve"]
    # 2 working days were left at the pause: Tuesday next week 09:00 + 2 = Thursday 09:00,
    # exactly the 5 working days it stood still after the old deadline.
    assert (clock["state"], clock["due_at"], clock["warn_at"], clock["revision"]) == (
        "running",
        at(10, 9),
        at(9, 12),
        1,
    )
    async with pool.acquire() as conn:
        calendar = await load_calendar(conn)
    assert calendar.between(at(3, 9), clock["due_at"]) == calendar.between(PAUSED_AT, RESUMED_AT)
    timers = await pending(pool, assignment)
    assert [(c, k) for c, k, _, _ in timers][:3] == [
        ("resolve", "warning"),
        ("resolve", "escalation"),
        ("resolve", "deadline"),
    ]
    assert (timers[0][3], timers[2][3]) == (at(9, 12), at(10, 9))
    assert all(due > RESUMED_AT for *_, due in timers)
    revisions = await pool.fetch(
        "SELECT DISTINCT revision FROM timers WHERE assignment_id = $1 AND state = 'pending'",
        assignment,
    )
    assert [r["revision"] for r in revisions] == [1]
    moved = [
        s for s in await announced(pool, case, "case.clock_started") if s["clock"] == "resolve"
    ]
    assert [datetime.fromisoformat(s["due_at"]) for s in moved] == [at(3, 9), at(10, 9)]

    # Heard again (other event ids, same request): nothing moves, nothing is scheduled twice.
    await record(
        pool,
        decided(case, assignment, PAUSED_AT, request),
        resumed(case, assignment, RESUMED_AT, request),
    )
    assert (await clocks_of(pool, assignment))["resolve"]["revision"] == 1
    assert await pending(pool, assignment) == timers

    await fire(pool, at(9, 12))
    assert await alerts(pool, case) == [("case.deadline_warning", "resolve", None, None)]
    await fire(pool, at(10, 9))
    assert sorted(await alerts(pool, case), key=repr) == sorted(
        [
            ("case.deadline_warning", "resolve", None, None),
            ("case.overdue", "resolve", None, None),
            ("case.escalated", "resolve", 0, "community"),
        ],
        key=repr,
    )
    [overdue] = await announced(pool, case, "case.overdue")
    assert datetime.fromisoformat(overdue["due_at"]) == at(10, 9)


async def test_a_resume_heard_before_its_decision_moves_the_deadline_when_it_comes(pool):
    case, assignment = await signed_for(pool)
    request = uuid.uuid4()
    before = await pending(pool, assignment)
    await record(pool, resumed(case, assignment, RESUMED_AT, request))
    assert (await clocks_of(pool, assignment))["resolve"]["state"] == "running"
    assert await pending(pool, assignment) == before  # nothing stood still yet

    await record(pool, decided(case, assignment, PAUSED_AT, request))
    clock = (await clocks_of(pool, assignment))["resolve"]
    assert (clock["state"], clock["due_at"], clock["revision"]) == ("running", at(10, 9), 1)
    timers = await pending(pool, assignment)
    assert timers[0][:2] == ("resolve", "warning") and timers[0][3] == at(9, 12)
    assert len(timers) == len({(c, k, s) for c, k, s, _ in timers})  # each stage once

    await record(
        pool,
        resumed(case, assignment, RESUMED_AT, request),
        decided(case, assignment, PAUSED_AT, request),
    )
    assert (await clocks_of(pool, assignment))["resolve"]["revision"] == 1
    assert await pending(pool, assignment) == timers
    [pause] = await pool.fetch("SELECT * FROM pauses WHERE request_id = $1", request)
    assert (pause["started_at"], pause["ended_at"], pause["kind"]) == (
        PAUSED_AT,
        RESUMED_AT,
        "hang",
    )


async def test_an_extension_approved_while_paused_counts_when_the_work_resumes(pool):
    case, assignment = await signed_for(pool)
    request = uuid.uuid4()
    await record(
        pool,
        decided(case, assignment, PAUSED_AT, request),
        extension(case, assignment, at(2, 10), days=2),
    )
    clock = (await clocks_of(pool, assignment))["resolve"]
    assert (clock["state"], clock["extension_days"]) == ("paused", 2)
    assert await pending(pool, assignment) == []  # still standing still
    assert [s["clock"] for s in await announced(pool, case, "case.clock_started")] == [
        "sign_for",
        "resolve",
    ]  # the dispatch's only: the move comes with the resumption

    await record(pool, resumed(case, assignment, RESUMED_AT, request))
    clock = (await clocks_of(pool, assignment))["resolve"]
    assert (clock["state"], clock["due_at"]) == ("running", at(14, 9))  # Thu + 2 = Monday
    assert (await pending(pool, assignment))[2][3] == at(14, 9)

    # An extension after the resumption keeps the pause counted.
    other_case, other = await signed_for(pool)
    other_request = uuid.uuid4()
    await record(
        pool,
        decided(other_case, other, PAUSED_AT, other_request),
        resumed(other_case, other, RESUMED_AT, other_request),
        extension(other_case, other, at(9, 10), days=1),
    )
    assert (await clocks_of(pool, other))["resolve"]["due_at"] == at(11, 9)  # Thu + 1 = Fri


async def test_the_history_shows_the_pause_and_it_ends_with_the_resolution(pool):
    case, assignment = await signed_for(pool)
    request = uuid.uuid4()
    await record(pool, decided(case, assignment, PAUSED_AT, request, kind=PauseKind.DEFER))
    timeline = await case_timeline(case, pool, DISTRICT)
    resolve = next(c for c in timeline.clocks if c.clock == "resolve")
    assert (resolve.state, resolve.paused_since) == ("paused", PAUSED_AT)
    assert resolve.state_label.startswith("暂停计时") and resolve.paused_seconds > 0
    [pause] = timeline.pauses
    assert (pause.kind, pause.kind_label, pause.reason, pause.start, pause.end, pause.running) == (
        "defer",
        "缓办",
        "需列入改造计划",
        PAUSED_AT,
        None,
        True,
    )
    labels = [e.label for e in timeline.events]
    assert labels[-1] == "挂账/缓办审批"

    done = at(4, 15)
    await record(
        pool, step(CaseResolved, case, assignment, done, result="已整改", case_resolved=True)
    )
    timeline = await case_timeline(case, pool, DISTRICT)
    resolve = next(c for c in timeline.clocks if c.clock == "resolve")
    assert (resolve.state, resolve.stopped_by, resolve.paused_since) == (
        "stopped",
        "case.resolved",
        None,
    )
    assert resolve.paused_seconds == int((done - PAUSED_AT).total_seconds())
    [pause] = timeline.pauses
    assert (pause.end, pause.ended_by, pause.running) == (done, "case.resolved", False)
    await fire(pool, at(20, 9))
    assert await alerts(pool, case) == []

    # Closing the case ends a pause still running on another assignment too.
    other_case, other = await signed_for(pool)
    other_request = uuid.uuid4()
    closed = new_event(
        CaseClosed(**FACTS), case_id=other_case, producer="intake", occurred_at=at(2, 9)
    )
    await record(pool, decided(other_case, other, PAUSED_AT, other_request), closed)
    [row] = await pool.fetch(
        "SELECT ended_at, ended_by FROM pauses WHERE request_id = $1", other_request
    )
    assert (row["ended_at"], row["ended_by"]) == (at(2, 9), "case.closed")
    assert {c["state"] for c in (await clocks_of(pool, other)).values()} == {"stopped"}


async def test_a_clock_long_overdue_goes_on_escalating_after_the_pause_counted(pool):
    case, assignment = await signed_for(pool)
    await fire(pool, at(7, 10))  # overdue Thursday; community, street, district escalated
    assert [a for a in await alerts(pool, case) if a[0] == "case.escalated"] == [
        ("case.escalated", "resolve", step, level)
        for step, level in ((0, "community"), (1, "street"), (2, "district"))
    ]
    request = uuid.uuid4()
    await record(pool, decided(case, assignment, at(7, 12), request))
    assert await pending(pool, assignment) == []  # the daily repetition waits too
    await fire(pool, at(9, 11))
    assert len(await alerts(pool, case)) == 4  # overdue and the three steps: nothing new

    await record(pool, resumed(case, assignment, at(9, 12), request))
    # one working day after the last step, not counting Monday 12:00 → Wednesday 12:00
    assert await pending(pool, assignment) == [("resolve", "escalation", 3, at(10, 9))]
    await fire(pool, at(10, 9))
    [*_, last] = await announced(pool, case, "case.escalated")
    assert (last["step"], last["repeat"], last["level"]) == (3, 1, "district")


@pytest.mark.parametrize("stage_exists", [True, False], ids=["stage exists", "new stage"])
async def test_a_pause_and_a_scheduler_holding_one_of_its_timers_do_not_deadlock(
    pool, stage_exists
):
    """Another replica's scheduler holds the latest timer of the clock (claimed, firing) and,
    before it commits, schedules a repetition — one that exists already, or a new one: the
    pause approval waits for it, then cancels what is left. Neither is killed as a deadlock
    (they were: the approval changed earlier timers and locked the assignment FOR UPDATE,
    and the scheduler's insert waited for those)."""
    case, assignment = await signed_for(pool)
    async with pool.acquire() as scheduler, scheduler.transaction():
        await scheduler.execute(
            "SELECT id FROM timers WHERE assignment_id = $1 AND state = 'pending'"
            " ORDER BY due_at DESC, id DESC LIMIT 1 FOR UPDATE",
            assignment,
        )
        stage = await scheduler.fetchrow(
            "SELECT clock, kind, step, revision, due_at FROM timers"
            " WHERE assignment_id = $1 AND state = 'pending' AND kind = 'deadline'",
            assignment,
        )
        approval = asyncio.create_task(
            record(pool, decided(case, assignment, PAUSED_AT, uuid.uuid4()))
        )

        async def approval_waits():
            assert not approval.done() or approval.result()
            return await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )

        await eventually(approval_waits, timeout=10, message="the approval waits")
        added = await repository.schedule_timer(
            scheduler,
            case_id=case,
            assignment_id=assignment,
            clock=Clock(stage["clock"]),
            due_at=stage["due_at"],
            kind=TimerKind(stage["kind"]),
            step=stage["step"] if stage_exists else 99,
            revision=stage["revision"],
            correlation_id=None,
            causation_id=None,
        )
        assert added is not stage_exists
    await asyncio.wait_for(approval, 30)
    assert (await clocks_of(pool, assignment))["resolve"]["state"] == "paused"
    # every timer it saw is cancelled; one committed after it looked stays pending, and
    # comes to nothing when due (its clock is not running): as before
    assert [s for _, _, s, _ in await pending(pool, assignment)] == ([] if stage_exists else [99])
