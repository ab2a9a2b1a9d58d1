"""Tracking's SLA clocks on real PostgreSQL, driven by a controllable clock: a dispatch pins
the policy in force and schedules every stage (warning, deadline, escalation steps); two
schedulers racing fire each exactly once; an approved extension moves the resolution deadline;
rejection, resolution and progress stop clocks. Then the admin API for the working calendar
and the policy versions, on the real broker.

Times are Asia/Shanghai wall clock, in the demo calendar (08:30–12:00, 13:30–17:30 Mon–Fri);
2026-03-02 is a Monday. E0101 normal runs under the 大类 rule E01: sign-for 2 working hours,
resolution 3 working days, warning at 80 %, ladder community +0 / street +4 / district +15
working hours, repeating every working day.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from services.tracking import handlers
from services.tracking.demo import CALENDAR_DATA, VERSION_1, normal
from services.tracking.handlers import sla
from services.tracking.main import create_app
from services.tracking.scheduler import TimerScheduler
from shared.auth import Principal, Role
from shared.contract import (
    CaseExtensionDecided,
    CaseProgressed,
    CaseRejected,
    CaseResolved,
    CaseSignedFor,
    Priority,
)
from tests.component import tracking_fixtures
from tests.component.tracking_fixtures import CN, HERE, MON, at, dispatched, record, step
from tests.helpers import as_user, bearer, eventually, publish_event, running_app

DAY = timedelta(days=1)
FACTS = HERE  # 市容环境/乱堆物料, normal, 桃园社区
LIFT = {**FACTS, "case_no": "YA20260302-0102", "category": "C0501", "priority": Priority.URGENT}
ADMIN = Principal(subject="admin", name="管理员", role=Role.ADMIN, area="YA")


def extension(case, assignment, when, days, approved=True, request_id=None):
    return step(
        CaseExtensionDecided,
        case,
        assignment,
        when,
        request_id=request_id or uuid.uuid4(),
        approved=approved,
        days=days if approved else 0,
    )


pool = tracking_fixtures.pool  # a migrated, seeded tracking database per test


async def clocks_of(pool, assignment):
    rows = await pool.fetch("SELECT * FROM clocks WHERE assignment_id = $1", assignment)
    return {r["clock"]: r for r in rows}


async def pending(pool, assignment):
    rows = await pool.fetch(
        "SELECT clock, kind, step, level, due_at FROM timers WHERE assignment_id = $1"
        " AND state = 'pending' ORDER BY due_at, clock, kind DESC, step",
        assignment,
    )
    return [(r["clock"], r["kind"], r["step"], r["due_at"].astimezone(CN)) for r in rows]


async def alerts(pool, case=None):
    """Tracking's alerts in the outbox, in the order written: (type, clock, step or None)."""
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE type IN ('case.deadline_warning', 'case.overdue',"
        " 'case.escalated') AND ($1::text IS NULL OR key = $1) ORDER BY id",
        None if case is None else str(case),
    )
    out = []
    for r in rows:
        p = r["payload"]["payload"]
        out.append((r["payload"]["type"], p["clock"], p.get("step"), p.get("level")))
    return out


async def announced(pool, case, kind):
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE type = $1 AND key = $2 ORDER BY id", kind, str(case)
    )
    return [r["payload"]["payload"] for r in rows]


# --- pinning and scheduling ------------------------------------------------------------------


async def test_a_dispatch_pins_the_policy_in_force_and_schedules_every_stage(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(case, assignment, MON))
    pinned = await pool.fetchval(
        "SELECT policy FROM assignments WHERE assignment_id = $1", assignment
    )
    assert (pinned["version"], pinned["matched"]) == (1, "E01")
    assert pinned["policy"]["resolve"] == "3 working_days"
    clocks = await clocks_of(pool, assignment)
    assert set(clocks) == {"sign_for", "resolve"}  # no on-site clock for a normal case
    assert clocks["sign_for"]["warn_at"] == at(0, 10, 36)  # 80 % of 2 working hours
    assert clocks["sign_for"]["due_at"] == at(0, 11)
    assert clocks["resolve"]["warn_at"] == at(2, 12)  # 18 of 22.5 working hours
    assert clocks["resolve"]["due_at"] == at(3, 9)  # Thursday 09:00
    assert await pending(pool, assignment) == [
        ("sign_for", "warning", 0, at(0, 10, 36)),
        ("sign_for", "escalation", 0, at(0, 11)),
        ("sign_for", "deadline", 0, at(0, 11)),
        ("sign_for", "escalation", 1, at(0, 16, 30)),
        ("sign_for", "escalation", 2, at(2, 11)),
        ("resolve", "warning", 0, at(2, 12)),
        ("resolve", "escalation", 0, at(3, 9)),
        ("resolve", "deadline", 0, at(3, 9)),
        ("resolve", "escalation", 1, at(3, 14, 30)),
        ("resolve", "escalation", 2, at(7, 9)),  # next Monday
    ]
    started = await announced(pool, case, "case.clock_started")
    assert {(s["clock"], datetime.fromisoformat(s["due_at"])) for s in started} == {
        ("sign_for", at(0, 11)),
        ("resolve", at(3, 9)),
    }

    # an urgent lift case (电梯困人, 小类 rule C0501) also runs an on-site clock, in calendar time
    lift, lift_a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(lift, lift_a, MON, facts=LIFT))
    lift_clocks = await clocks_of(pool, lift_a)
    assert {k: c["due_at"] for k, c in lift_clocks.items()} == {
        "sign_for": at(0, 9, 15),
        "on_site": at(0, 9, 30),
        "resolve": at(0, 21),
    }


async def test_a_later_policy_version_does_not_change_an_earlier_case(pool):
    early, early_a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(early, early_a, MON))
    before = await pending(pool, early_a)
    v2 = {
        **VERSION_1,
        "version": 2,
        "effective_from": at(1, 0).isoformat(),
        "rules": {"E01": {"normal": normal(sign_for="1 working_hours", resolve="1 working_day")}},
    }
    await sla.add_policy_version(pool, v2, ADMIN, now=MON + timedelta(hours=1))

    late, late_a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(late, late_a, at(1, 9)))
    assert (await clocks_of(pool, late_a))["sign_for"]["due_at"] == at(1, 10)
    assert (await clocks_of(pool, late_a))["resolve"]["due_at"] == at(2, 9)
    policies = dict(
        await pool.fetch("SELECT assignment_id, (policy->>'version')::int FROM assignments")
    )
    assert policies == {early_a: 1, late_a: 2}
    # the early case keeps version 1's clocks — and an extension is counted under version 1
    assert await pending(pool, early_a) == before
    await record(pool, extension(early, early_a, at(1, 10), days=1))
    assert (await clocks_of(pool, early_a))["resolve"]["due_at"] == at(4, 9)  # Thu + 1 day


async def test_a_replaced_calendar_counts_from_the_next_dispatch_on(pool):
    """Parsed calendars are kept by revision: a replacement is used at once."""
    first, first_a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(first, first_a, MON))
    assert (await clocks_of(pool, first_a))["sign_for"]["due_at"] == at(0, 11)
    await sla.replace_calendar(
        pool, {**CALENDAR_DATA, "holidays": [*CALENDAR_DATA["holidays"], "2026-03-02"]}, ADMIN
    )
    second, second_a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(second, second_a, MON))
    assert (await clocks_of(pool, second_a))["sign_for"]["due_at"] == at(1, 10, 30)
    assert (await clocks_of(pool, first_a))["sign_for"]["due_at"] == at(0, 11)


# --- firing: warning, overdue, escalations, exactly once --------------------------------------


async def test_warning_overdue_and_escalations_fire_once_with_two_schedulers_racing(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(case, assignment, MON))
    now = {"t": MON}

    def scheduler():
        return TimerScheduler(lambda: pool, poll_interval=0.05, batch_size=1, now=lambda: now["t"])

    one, two = scheduler(), scheduler()

    async def tick(t):
        now["t"] = t
        await asyncio.gather(one.run_once(), two.run_once(), one.run_once(), two.run_once())

    expected = []
    timeline = [
        (at(0, 10, 35), []),
        (at(0, 10, 36), [("case.deadline_warning", "sign_for", None, None)]),
        (
            at(0, 11),
            [
                ("case.overdue", "sign_for", None, None),
                ("case.escalated", "sign_for", 0, "community"),
            ],
        ),
        (at(0, 16, 30), [("case.escalated", "sign_for", 1, "street")]),
        (at(1, 10), []),
        (at(2, 11), [("case.escalated", "sign_for", 2, "district")]),
        (at(2, 12), [("case.deadline_warning", "resolve", None, None)]),
        (
            at(3, 9),
            [
                ("case.overdue", "resolve", None, None),
                ("case.escalated", "resolve", 0, "community"),
            ],
        ),
        # the ladder repeats at its last level every working day while still overdue
        (at(3, 11), [("case.escalated", "sign_for", 3, "district")]),
    ]
    for t, fired in timeline:
        await tick(t)
        await tick(t)  # again at the same instant: nothing more
        expected += fired
        got = await alerts(pool, case)
        assert sorted(got, key=repr) == sorted(expected, key=repr), t
    # every alert once on the timeline too, by the deadline watch
    kinds = await pool.fetch(
        "SELECT type, actor FROM case_events WHERE case_id = $1 AND producer = 'tracking'", case
    )
    assert len(kinds) == len(expected)
    assert {r["actor"]["subject"] for r in kinds} == {"system:tracking"}

    # Signing for (late) stops the sign-for clock: its next repetition never fires.
    await record(pool, step(CaseSignedFor, case, assignment, at(3, 12)))
    await tick(at(4, 11))
    assert ("case.escalated", "sign_for", 4, "district") not in await alerts(pool, case)
    assert ("case.escalated", "resolve", 1, "street") in await alerts(pool, case)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM timers WHERE assignment_id = $1"
            " AND clock = 'sign_for' AND state = 'pending'",
            assignment,
        )
        == 0
    )
    escalated = await announced(pool, case, "case.escalated")
    assert {e["repeat"] for e in escalated if e["step"] == 3} == {1}
    assert all(datetime.fromisoformat(e["due_at"]) in (at(0, 11), at(3, 9)) for e in escalated)


async def test_many_clocks_shared_by_two_racing_replicas_fire_once_each(pool):
    cases = [(uuid.uuid4(), uuid.uuid4()) for _ in range(15)]
    await record(pool, *(dispatched(c, a, MON) for c, a in cases))
    late = at(0, 11, 1)  # past every sign-for deadline (11:00)

    async def replica() -> int:
        fired = 0
        async with pool.acquire() as conn:
            for _ in range(100):
                tick = await handlers.fire_due_timers(conn, now=late, limit=2)
                if not tick.claimed:
                    return fired
                fired += tick.fired
                await asyncio.sleep(0)
        raise AssertionError("due timers never ran out")

    total = sum(await asyncio.gather(replica(), replica()))
    # the warning (10:36) gives way: its deadline has passed by the time it is claimed
    assert total == 2 * len(cases)
    rows = await pool.fetch(
        "SELECT type, key FROM outbox WHERE type IN"
        " ('case.deadline_warning', 'case.overdue', 'case.escalated')"
    )
    assert sorted((r["type"], r["key"]) for r in rows) == sorted(
        (kind, str(c)) for c, _ in cases for kind in ("case.escalated", "case.overdue")
    )


async def test_the_scheduler_catching_up_after_an_outage_does_not_burst_repetitions(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    await record(
        pool,
        dispatched(case, assignment, MON),
        step(CaseSignedFor, case, assignment, MON + timedelta(minutes=5)),
    )
    # no scheduler ran for two weeks: each stage fires once, the next repetition is ahead
    now = at(14, 10)
    async with pool.acquire() as conn:
        while (await handlers.fire_due_timers(conn, now=now, limit=50)).claimed:
            pass
    got = await alerts(pool, case)
    assert ("case.overdue", "resolve", None, None) in got
    assert ("case.deadline_warning", "resolve", None, None) not in got  # past its deadline
    assert sum(1 for g in got if g[0] == "case.escalated") == 3  # the ladder's steps
    [(clock, kind, _, due)] = await pending(pool, assignment)
    assert (clock, kind) == ("resolve", "escalation") and due > now


# --- extensions, rejection, resolution, progress -------------------------------------------------


async def test_an_approved_extension_moves_the_resolution_deadline_visibly(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    request = uuid.uuid4()
    await record(
        pool,
        dispatched(case, assignment, MON),
        step(CaseSignedFor, case, assignment, MON + timedelta(minutes=10)),
    )
    await record(pool, extension(case, assignment, at(1, 10), days=3, approved=False))
    assert (await clocks_of(pool, assignment))["resolve"]["due_at"] == at(3, 9)  # refused

    decision = extension(case, assignment, at(1, 10), days=2, request_id=request)
    await record(pool, decision)
    resolve = (await clocks_of(pool, assignment))["resolve"]
    assert resolve["due_at"] == at(7, 9)  # Thu 09:00 + 2 working days = next Monday 09:00
    assert (resolve["extension_days"], resolve["revision"]) == (2, 1)
    moved = [
        s for s in await announced(pool, case, "case.clock_started") if s["clock"] == "resolve"
    ]
    assert [datetime.fromisoformat(s["due_at"]) for s in moved] == [at(3, 9), at(7, 9)]
    assert [(c, k) for c, k, _, _ in await pending(pool, assignment)] == [
        ("resolve", "warning"),
        ("resolve", "escalation"),
        ("resolve", "deadline"),
        ("resolve", "escalation"),
        ("resolve", "escalation"),
    ]
    assert (await pending(pool, assignment))[2][3] == at(7, 9)

    # the same decision again (another event id, same request) moves nothing
    again = extension(case, assignment, at(1, 11), days=2, request_id=request)
    await record(pool, again)
    assert (await clocks_of(pool, assignment))["resolve"]["revision"] == 1

    async with pool.acquire() as conn:
        await handlers.fire_due_timers(conn, now=at(3, 10), limit=50)  # the old deadline
        assert ("case.overdue", "resolve", None, None) not in await alerts(pool, case)
        await handlers.fire_due_timers(conn, now=at(7, 9), limit=50)
    assert [a for a in await alerts(pool, case) if a[0] == "case.overdue"] == [
        ("case.overdue", "resolve", None, None)
    ]
    [overdue] = await announced(pool, case, "case.overdue")
    assert datetime.fromisoformat(overdue["due_at"]) == at(7, 9)


async def test_rejection_stops_every_clock_of_the_assignment(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    await record(
        pool,
        dispatched(case, assignment, MON),
        step(CaseRejected, case, assignment, MON + timedelta(minutes=10), reason="不属于本部门"),
    )
    assert {k: c["state"] for k, c in (await clocks_of(pool, assignment)).items()} == {
        "sign_for": "stopped",
        "resolve": "stopped",
    }
    assert await pending(pool, assignment) == []
    stopped = await announced(pool, case, "case.clock_stopped")
    assert sorted((s["clock"], s["because"]) for s in stopped) == [
        ("resolve", "case.rejected"),
        ("sign_for", "case.rejected"),
    ]
    async with pool.acquire() as conn:
        assert await handlers.fire_due_timers(conn, now=at(10, 9), limit=50) == (0, 0)
    assert await alerts(pool, case) == []

    # a rejection heard before its dispatch: the dispatch starts no clock
    other, other_a = uuid.uuid4(), uuid.uuid4()
    await record(
        pool,
        step(CaseRejected, other, other_a, MON + timedelta(minutes=10), reason="不属于本部门"),
        dispatched(other, other_a, MON),
    )
    assert await clocks_of(pool, other_a) == {}


async def test_a_closing_heard_before_the_resolution_leaves_the_clocks_as_in_order(pool):
    """结案 and 办结 come on two topics: heard in either order, the resolution clock stops at
    the resolution (the earlier fact), by it, and each stop is announced once."""
    ends = {}
    for order in ("in order", "closing first"):
        case, assignment = uuid.uuid4(), uuid.uuid4()
        resolved = step(CaseResolved, case, assignment, at(1, 9), result="已清理")
        closing = tracking_fixtures.closed(case, at(1, 11))
        await record(pool, dispatched(case, assignment, MON))
        await record(pool, step(CaseSignedFor, case, assignment, MON + timedelta(minutes=5)))
        await record(pool, *((resolved, closing) if order == "in order" else (closing, resolved)))
        got = await clocks_of(pool, assignment)
        ends[order] = {k: (c["state"], c["stopped_at"], c["stopped_by"]) for k, c in got.items()}
        stops = await announced(pool, case, "case.clock_stopped")
        assert sorted(s["clock"] for s in stops) == ["resolve", "sign_for"], (order, stops)
    assert ends["closing first"] == ends["in order"]
    assert ends["in order"]["resolve"] == ("stopped", at(1, 9), "case.resolved")


async def test_the_overdue_gauge_counts_the_clocks_late_now_per_clock(pool):
    """whistle_clocks_overdue_now{clock}: running clocks past their deadline as of the scheduler's
    round (what the overdue board shows), 0 for a clock with none; a stopped clock leaves it."""

    def gauge(clock):
        return REGISTRY.get_sample_value(
            "whistle_clocks_overdue_now", {"service": "tracking", "clock": clock}
        )

    late, signed = (uuid.uuid4(), uuid.uuid4()), (uuid.uuid4(), uuid.uuid4())
    await record(pool, dispatched(*late, MON), dispatched(*signed, MON))
    await record(pool, step(CaseSignedFor, *signed, MON + timedelta(minutes=5)))
    await handlers.timers_due(pool, at(0, 9, 30))  # nothing due yet
    assert (gauge("sign_for"), gauge("resolve"), gauge("on_site")) == (0, 0, 0)
    await handlers.timers_due(pool, at(0, 12))  # 2 working hours: one sign-for is late
    assert (gauge("sign_for"), gauge("resolve")) == (1, 0)
    await handlers.timers_due(pool, at(10, 9))  # both resolution deadlines passed too
    assert (gauge("sign_for"), gauge("resolve")) == (1, 2)
    await record(pool, step(CaseResolved, *signed, at(10, 9, 5), result="已清理"))
    await handlers.timers_due(pool, at(10, 10))
    assert (gauge("sign_for"), gauge("resolve"), gauge("on_site")) == (1, 1, 0)


async def test_each_assignment_of_a_joint_case_has_its_own_clocks(pool):
    case, lead, co = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await record(
        pool, dispatched(case, lead, MON), dispatched(case, co, MON, department="zj", role="co")
    )
    await record(
        pool,
        step(CaseSignedFor, case, lead, MON + timedelta(minutes=5)),
        step(
            CaseResolved, case, lead, MON + timedelta(hours=1), result="已清理", case_resolved=False
        ),
    )
    assert {c["state"] for c in (await clocks_of(pool, lead)).values()} == {"stopped"}
    assert {c["state"] for c in (await clocks_of(pool, co)).values()} == {"running"}
    async with pool.acquire() as conn:
        await handlers.fire_due_timers(conn, now=at(0, 11), limit=50)
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE type = 'case.overdue' AND key = $1", str(case)
    )
    assert [
        (r["payload"]["payload"]["department_id"], r["payload"]["payload"]["clock"]) for r in rows
    ] == [("zj", "sign_for")]


async def test_a_progress_note_stops_the_on_site_clock(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    await record(
        pool,
        dispatched(case, assignment, MON, facts=LIFT),
        step(CaseSignedFor, case, assignment, MON + timedelta(minutes=5), facts=LIFT),
        step(
            CaseProgressed,
            case,
            assignment,
            MON + timedelta(minutes=25),
            facts=LIFT,
            note="已到现场",
        ),
    )
    states = {k: c["state"] for k, c in (await clocks_of(pool, assignment)).items()}
    assert states == {"sign_for": "stopped", "on_site": "stopped", "resolve": "running"}
    async with pool.acquire() as conn:
        await handlers.fire_due_timers(conn, now=at(0, 12), limit=50)
    assert await alerts(pool, case) == []


async def test_a_sign_for_override_keeps_short_clocks_with_the_policy_ladder(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(case, assignment, MON), sign_for=timedelta(seconds=8))
    clocks = await clocks_of(pool, assignment)
    assert clocks["sign_for"]["due_at"] == MON + timedelta(seconds=8)
    assert clocks["sign_for"]["warn_at"] == MON + timedelta(seconds=6.4)
    assert clocks["resolve"]["due_at"] == at(3, 9)  # the override is the sign-for's only


# --- the admin API, on the real broker ---------------------------------------------------------


@pytest.fixture(scope="module")
async def service(pg_server, kafka_server):
    settings = await tracking_fixtures.service_settings(pg_server, kafka_server)
    async with running_app(create_app(settings)) as client:
        yield client, settings.database_url.get_secret_value(), kafka_server.bootstrap


ADMIN_H, COMMAND = as_user("admin"), as_user("command")


def problem(resp, status):
    assert resp.status_code == status, resp.text
    return resp.json()["error"]


async def test_calendar_is_read_by_anyone_and_replaced_only_by_admin_when_valid(service):
    client, _, _ = service
    dept = bearer(Role.DEPARTMENT, department_id="cg")
    current = await client.get("/sla/calendar", headers=dept)
    assert current.status_code == 200, current.text
    assert current.json()["calendar"]["timezone"] == "Asia/Shanghai"
    assert "2026-10-01" in current.json()["calendar"]["holidays"]
    revision = current.json()["revision"]

    bad = {
        "unknown zone": ({**CALENDAR_DATA, "timezone": "Mars/Olympus"}, "timezone"),
        "overlap": (
            {**CALENDAR_DATA, "hours": {"mon": [["08:30", "12:00"], ["11:00", "13:00"]]}},
            "hours.mon",
        ),
        "typo": ({**CALENDAR_DATA, "holiday": ["2026-01-01"]}, "holiday"),
        "both": ({**CALENDAR_DATA, "makeup_days": ["2026-10-01"]}, "makeup_days"),
    }
    for why, (body, field) in bad.items():
        err = problem(await client.put("/sla/calendar", json=body, headers=ADMIN_H), 422)
        assert err["code"] == "invalid_calendar" and err["message"].startswith(field), why
    en = await client.put(
        "/sla/calendar", json=bad["unknown zone"][0], headers={**ADMIN_H, "Accept-Language": "en"}
    )
    assert "unknown time zone" in en.json()["error"]["message"]
    assert (
        problem(await client.put("/sla/calendar", json=CALENDAR_DATA, headers=COMMAND), 403)["code"]
        == "role_not_allowed"
    )
    assert (await client.get("/sla/calendar", headers=dept)).json()["revision"] == revision

    new_year_eve = {**CALENDAR_DATA, "holidays": [*CALENDAR_DATA["holidays"], "2026-12-31"]}
    replaced = await client.put("/sla/calendar", json=new_year_eve, headers=ADMIN_H)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["revision"] > revision
    assert "2026-12-31" in replaced.json()["calendar"]["holidays"]
    assert replaced.json()["created_by"] == "admin"
    restored = await client.put("/sla/calendar", json=CALENDAR_DATA, headers=ADMIN_H)
    assert restored.status_code == 200


async def test_policy_versions_are_added_only_when_valid(service):
    client, _, _ = service
    listed = await client.get("/sla/policy-versions", headers=as_user("cg-duty"))
    assert [v["version"] for v in listed.json()["items"]] == [1]
    one = (await client.get("/sla/policy-versions/1", headers=COMMAND)).json()
    assert one["policy"]["rules"]["C0501"]["urgent"]["on_site"] == "30 minutes"
    assert (
        problem(await client.get("/sla/policy-versions/9", headers=COMMAND), 404)["code"]
        == "policy_version_not_found"
    )

    future = (datetime.now(CN) + 30 * DAY).replace(microsecond=0).isoformat()
    good = {**VERSION_1, "version": 2, "effective_from": future, "note": "夏季时限"}
    bad = {
        "negative limit": (
            {
                **good,
                "defaults": {**good["defaults"], "normal": normal(sign_for="-2 working_hours")},
            },
            "时限必须大于0",
        ),
        "warning after the deadline": (
            {**good, "defaults": {**good["defaults"], "normal": normal(ratio=1.2)}},
            "预警比例",
        ),
        "same number": ({**good, "version": 1}, "重复"),
        "retroactive": ({**good, "effective_from": "2026-02-01T00:00:00+08:00"}, "追溯"),
        "no time zone": ({**good, "effective_from": "2026-12-01T00:00:00"}, "时区"),
    }
    for why, (body, zh) in bad.items():
        err = problem(await client.post("/sla/policy-versions", json=body, headers=ADMIN_H), 422)
        assert zh in err["message"], (why, err)
    assert problem(
        await client.post("/sla/policy-versions", json=good, headers=as_user("supervisor")), 403
    )
    listed = await client.get("/sla/policy-versions", headers=COMMAND)
    assert [v["version"] for v in listed.json()["items"]] == [1]  # nothing changed

    added = await client.post("/sla/policy-versions", json=good, headers=ADMIN_H)
    assert added.status_code == 201, added.text
    assert added.json()["policy"]["note"] == "夏季时限"
    listed = await client.get("/sla/policy-versions", headers=COMMAND)
    assert [v["version"] for v in listed.json()["items"]] == [1, 2]
    # versions never overlap, and numbers grow with the time they take effect
    earlier = (datetime.now(CN) + 20 * DAY).replace(microsecond=0).isoformat()
    for body, zh in (
        ({**good, "version": 3}, "同时生效"),
        ({**good, "version": 3, "effective_from": earlier}, "递增"),
    ):
        err = problem(await client.post("/sla/policy-versions", json=body, headers=ADMIN_H), 422)
        assert zh in err["message"], err
    assert len((await client.get("/sla/policy-versions", headers=COMMAND)).json()["items"]) == 2


async def test_a_dispatch_through_the_broker_shows_its_pinned_clocks(service):
    client, _, bootstrap = service
    case, assignment = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(CN)
    await publish_event(bootstrap, dispatched(case, assignment, now, facts=LIFT))

    async def clocks():
        resp = await client.get(f"/cases/{case}/timeline", headers=COMMAND)
        return resp.status_code == 200 and len(resp.json()["clocks"]) == 3 and resp.json()

    body = await eventually(clocks, timeout=45, message="the clocks on the timeline")
    due = {c["clock"]: datetime.fromisoformat(c["due_at"]) for c in body["clocks"]}
    assert due == {
        "sign_for": now + timedelta(minutes=15),
        "on_site": now + timedelta(minutes=30),
        "resolve": now + timedelta(hours=12),
    }
    assert {c["state"] for c in body["clocks"]} == {"running"}
