"""Tracking against real PostgreSQL (the timers, driven by a controllable clock) and the real
broker (the timeline, the overdue alert, the board)."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.tracking import handlers
from services.tracking.config import Settings
from services.tracking.main import create_app
from services.tracking.scheduler import TimerScheduler
from shared.events import (
    CaseClosed,
    CaseDispatched,
    CaseReported,
    CaseResolved,
    CaseSignedFor,
    CaseWhistled,
    Location,
    Priority,
    Topics,
    new_event,
)
from tests.conftest import migrated_database
from tests.helpers import eventually, publish_event, read_topic, running_app

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
FACTS = {"case_no": "YA20260302-0007", "area_path": "YA/YA01/YA0101/YA0101-01",
         "category": "E0101", "priority": Priority.NORMAL}
WHERE = {"grid_code": "YA0101-01", "description": "楼下空地乱堆建筑垃圾",
         "location": Location(address="桃园小区3号楼")}


def reported(case_id, at):
    return new_event(CaseReported(**FACTS, **WHERE, reporter="网格员李明", reported_at=at),
                     case_id=case_id, producer="intake", occurred_at=at)


def whistled(case_id, at):
    return new_event(CaseWhistled(**FACTS, **WHERE, departments=["cg"]),
                     case_id=case_id, producer="intake", occurred_at=at)


def dispatched(case_id, assignment_id, at, department=("cg", "榆安区城市管理局")):
    return new_event(
        CaseDispatched(**FACTS, assignment_id=assignment_id, department_id=department[0],
                       department_name=department[1], role="lead", rule_id=6,
                       reason="E0101 @ YA", description=WHERE["description"]),
        case_id=case_id, producer="dispatch", occurred_at=at)


def signed_for(case_id, assignment_id, at, department_id="cg"):
    return new_event(CaseSignedFor(**FACTS, assignment_id=assignment_id,
                                   department_id=department_id),
                     case_id=case_id, producer="dispatch", occurred_at=at)


def resolved(case_id, assignment_id, at, department_id="cg"):
    return new_event(CaseResolved(**FACTS, assignment_id=assignment_id,
                                  department_id=department_id, result="已清运"),
                     case_id=case_id, producer="dispatch", occurred_at=at)


# --- timers on real PostgreSQL, handlers called directly ------------------------------------------


@pytest.fixture
async def pool(pg_server, pool_factory):
    return await pool_factory(await migrated_database(pg_server, "tracking"))


async def record(pool, *events, deadline=timedelta(minutes=30)):
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await handlers.record_case_event(conn, event, sign_for_deadline=deadline)


async def fire(pool, now, limit=100):
    async with pool.acquire() as conn:
        return await handlers.fire_due_timers(conn, now=now, limit=limit)


async def overdue_rows(pool, case_id=None):
    return await pool.fetch(
        "SELECT payload FROM outbox WHERE type = 'case.overdue'"
        " AND ($1::text IS NULL OR key = $1) ORDER BY id",
        None if case_id is None else str(case_id),
    )


async def test_a_due_timer_fires_exactly_once(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    dispatch = dispatched(case, assignment, T0)
    await record(pool, reported(case, T0 - MINUTE), dispatch)
    assert await fire(pool, T0 + 30 * MINUTE - timedelta(seconds=1)) == (0, 0)
    assert await overdue_rows(pool) == []

    assert await fire(pool, T0 + 31 * MINUTE) == (1, 1)
    [row] = await overdue_rows(pool, case)
    alert = row["payload"]
    assert alert["producer"] == "tracking" and alert["case_id"] == str(case)
    assert alert["causation_id"] == str(dispatch.event_id)
    assert alert["correlation_id"] == dispatch.correlation_id
    p = alert["payload"]
    assert p["clock"] == "sign_for" and p["assignment_id"] == str(assignment)
    assert datetime.fromisoformat(p["due_at"]) == T0 + 30 * MINUTE
    assert (p["department_id"], p["department_name"]) == ("cg", "榆安区城市管理局")
    assert (p["case_no"], p["area_path"], p["priority"]) == (
        FACTS["case_no"], FACTS["area_path"], "normal")
    types = await pool.fetch("SELECT type FROM case_events WHERE case_id = $1"
                             " ORDER BY occurred_at, seq", case)
    assert [r["type"] for r in types] == ["case.reported", "case.dispatched", "case.overdue"]

    assert await fire(pool, T0 + 2 * 30 * MINUTE) == (0, 0)  # fired is fired
    assert len(await overdue_rows(pool)) == 1
    assert await pool.fetchval("SELECT state FROM timers WHERE assignment_id = $1",
                               assignment) == "fired"


async def test_two_replicas_ticking_at_once_never_double_an_alert(pool):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(case, assignment, T0))
    late = T0 + 2 * 30 * MINUTE
    # Replica 1 holds the due row (mid-tick); replica 2 skips it at once instead of waiting.
    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.fetch("SELECT id FROM timers FOR UPDATE")
        async with asyncio.timeout(5):
            assert await fire(pool, late) == (0, 0)
        await tx.rollback()  # replica 1 crashed: the timer is pending again, not lost
    async with pool.acquire() as c1, pool.acquire() as c2:
        ticks = await asyncio.gather(
            handlers.fire_due_timers(c1, now=late, limit=10),
            handlers.fire_due_timers(c2, now=late, limit=10),
        )
    assert sum(t.fired for t in ticks) == 1
    assert len(await overdue_rows(pool, case)) == 1


async def test_many_due_timers_shared_by_two_replicas_fire_once_each(pool):
    cases = [(uuid.uuid4(), uuid.uuid4()) for _ in range(40)]
    await record(pool, *(dispatched(c, a, T0 + i * timedelta(seconds=1))
                         for i, (c, a) in enumerate(cases)))

    late = T0 + 60 * MINUTE

    async def replica() -> int:
        fired = 0
        async with pool.acquire() as conn:
            for _ in range(40):  # bounded: a timer fired twice must fail the test, not hang it
                tick = await handlers.fire_due_timers(conn, now=late, limit=3)
                if not tick.claimed:
                    return fired
                fired += tick.fired
                await asyncio.sleep(0)
        raise AssertionError("due timers never ran out")

    assert sum(await asyncio.gather(replica(), replica())) == 40
    rows = await overdue_rows(pool)
    assert sorted(r["payload"]["payload"]["assignment_id"] for r in rows) == sorted(
        str(a) for _, a in cases)
    assert await pool.fetchval("SELECT count(*) FROM timers WHERE state = 'pending'") == 0


async def test_sign_for_stops_the_clock_and_late_dispatches_start_none(pool):
    on_time, signed_first, resolved_first, closed = (uuid.uuid4() for _ in range(4))
    case = uuid.uuid4()
    await record(
        pool,
        dispatched(case, on_time, T0), signed_for(case, on_time, T0 + MINUTE),
        # dispatch's events for these two reach us in the wrong order
        signed_for(case, signed_first, T0 + MINUTE), dispatched(case, signed_first, T0),
        resolved(case, resolved_first, T0 + 2 * MINUTE), dispatched(case, resolved_first, T0),
    )
    other = uuid.uuid4()
    await record(pool, dispatched(other, closed, T0),
                 new_event(CaseClosed(**FACTS, note="网格员现场处置"), case_id=other,
                           producer="intake", occurred_at=T0 + MINUTE))
    assert await fire(pool, T0 + 24 * 60 * MINUTE) == (0, 0)
    assert await overdue_rows(pool) == []
    states = dict(await pool.fetch("SELECT assignment_id, state FROM assignments"))
    assert states == {on_time: "signed_for", signed_first: "signed_for",
                      resolved_first: "resolved", closed: "dispatched"}
    name = await pool.fetchval("SELECT department_name FROM assignments"
                               " WHERE assignment_id = $1", signed_first)
    assert name == "榆安区城市管理局"  # filled in by the late dispatch
    timers = dict(await pool.fetch("SELECT assignment_id, state FROM timers"))
    assert timers == {on_time: "cancelled", closed: "cancelled"}
    assert await pool.fetchval("SELECT status FROM cases WHERE case_id = $1", case) == "resolved"


async def test_scheduler_follows_an_injected_clock_and_survives_a_restart(pool):
    clock = {"now": T0}
    sample = {"service": "tracking", "clock": "sign_for"}
    fired_before = REGISTRY.get_sample_value("whistle_timers_fired_total", sample) or 0.0

    def scheduler():
        return TimerScheduler(lambda: pool, poll_interval=0.05, batch_size=2,
                              now=lambda: clock["now"])

    case = uuid.uuid4()
    first, second = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(case, first, T0), deadline=timedelta(seconds=30))
    one = scheduler()
    clock["now"] = T0 + timedelta(seconds=29)
    assert await one.run_once() == pytest.approx(0.05)
    assert await overdue_rows(pool) == []
    clock["now"] = T0 + timedelta(seconds=30)
    await one.run_once()
    assert len(await overdue_rows(pool)) == 1
    # "Restart": a new scheduler finds nothing left to fire, then runs in the background.
    await record(pool, dispatched(case, second, T0 + MINUTE), deadline=timedelta(seconds=30))
    two = scheduler()
    assert await two.run_once() == pytest.approx(0.05)
    two.start()
    try:
        clock["now"] = T0 + 2 * MINUTE

        async def both_fired():
            return len(await overdue_rows(pool)) == 2

        await eventually(both_fired, timeout=10, interval=0.05, message="second timer fired")
    finally:
        await two.stop()
    assert len(await overdue_rows(pool)) == 2
    assert REGISTRY.get_sample_value("whistle_timers_fired_total", sample) == fired_before + 2
    assert REGISTRY.get_sample_value("whistle_timers_due", {"service": "tracking"}) == 0


# --- the service on the real broker ---------------------------------------------------------------


@pytest.fixture
def tracking(pg_server, kafka_server):
    @asynccontextmanager
    async def start(**overrides):
        dsn = await migrated_database(pg_server, "tracking")
        settings = Settings(
            database_url=dsn, kafka_bootstrap_servers=kafka_server.bootstrap,
            kafka_idempotent_producer=False, log_json=False, outbox_poll_interval_seconds=0.5,
            timer_poll_interval_seconds=0.2, **overrides,
        )
        async with running_app(create_app(settings)) as client:
            yield client, dsn, kafka_server.bootstrap

    return start


async def fetchval(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def timeline_types(client, case_id, at_least: int) -> list[str]:
    async def probe():
        resp = await client.get(f"/cases/{case_id}/timeline")
        if resp.status_code != 200:
            return None
        types = [e["type"] for e in resp.json()["events"]]
        return types if len(types) >= at_least else None

    return await eventually(probe, timeout=45, message=f"{at_least} events on the timeline")


async def test_timeline_puts_events_from_both_producers_in_the_order_they_happened(tracking):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    t = datetime.now(UTC) - 10 * MINUTE
    async with tracking() as (client, dsn, bootstrap):
        # dispatch's events reach us before intake's: the timeline still reads in order
        for event in (dispatched(case, assignment, t + 2 * MINUTE),
                      signed_for(case, assignment, t + 3 * MINUTE),
                      resolved(case, assignment, t + 9 * MINUTE),
                      reported(case, t), whistled(case, t + MINUTE)):
            await publish_event(bootstrap, event)
        types = await timeline_types(client, case, 5)
        assert types == ["case.reported", "case.whistled", "case.dispatched",
                         "case.signed_for", "case.resolved"]
        body = (await client.get(f"/cases/{case}/timeline")).json()
        assert body["case"]["status"] == "resolved"
        assert body["case"]["status_label"] == "已办结待核查"
        assert body["case"]["case_no"] == FACTS["case_no"]
        first = body["events"][0]
        assert first["producer"] == "intake" and first["label"] == "网格上报"
        assert first["payload"]["reporter"] == "网格员李明"
        [a] = body["assignments"]
        assert (a["assignment_id"], a["state"]) == (str(assignment), "resolved")
        assert a["department_name"] == "榆安区城市管理局" and a["signed_for_at"]
        timer = await fetchval(dsn, "SELECT state FROM timers WHERE assignment_id = $1",
                               assignment)
        assert timer == "cancelled"


async def test_missed_sign_for_raises_one_alert_and_shows_on_the_board(tracking):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    async with tracking(sign_for_deadline_seconds=2) as (client, dsn, bootstrap):

        async def on_board(**query):
            items = (await client.get("/overdue", params=query)).json()["items"]
            return [i for i in items if i["case_id"] == str(case)]

        now = datetime.now(UTC)
        due = now + timedelta(seconds=2)
        await publish_event(bootstrap, reported(case, now - MINUTE))
        await publish_event(bootstrap, dispatched(case, assignment, now))
        await timeline_types(client, case, 2)
        checked_at = datetime.now(UTC)
        if checked_at < due:  # recorded before the deadline: not late yet
            assert not await on_board()
        [item] = await eventually(on_board, timeout=45, message="case on the board")
        assert item["clock"] == "sign_for" and item["department_id"] == "cg"
        assert item["overdue_seconds"] >= 0 and item["overdue_label"].startswith("超时")
        assert datetime.fromisoformat(item["due_at"]) == due
        assert datetime.fromisoformat(item["fired_at"]) >= due
        assert await on_board(area="YA/YA01") and await on_board(area=FACTS["area_path"])
        assert await on_board(department_id="cg", area="YA/")
        assert not await on_board(area="YA/YA0")  # a prefix is whole path segments
        assert not await on_board(area="YA/YA02")
        assert not await on_board(department_id="zj")

        async def published():
            return await fetchval(dsn, "SELECT count(*) FROM outbox WHERE type = 'case.overdue'"
                                  " AND key = $1 AND sent_at IS NOT NULL", str(case))

        await eventually(published, message="overdue alert published")
        records = await read_topic(bootstrap, Topics.TRACKING)
        mine = [json.loads(r.value) for r in records if r.key == str(case).encode()]
        assert [m["type"] for m in mine] == ["case.overdue"]

        await publish_event(bootstrap, signed_for(case, assignment, datetime.now(UTC)))

        async def off_board():
            return not await on_board()

        await eventually(off_board, timeout=45, message="signed-for case left the board")
        types = await timeline_types(client, case, 4)
        assert types == ["case.reported", "case.dispatched", "case.overdue", "case.signed_for"]
        assert await fetchval(dsn, "SELECT count(*) FROM outbox WHERE type = 'case.overdue'"
                              " AND key = $1", str(case)) == 1


async def test_duplicates_are_recorded_once_and_unknown_cases_are_404(tracking):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    report, dispatch = reported(case, now - MINUTE), dispatched(case, assignment, now)
    async with tracking() as (client, dsn, bootstrap):
        for event in (report, report, dispatch, dispatch):
            await publish_event(bootstrap, event)
        # events published after the duplicates on the same partitions mark "all handled"
        await publish_event(bootstrap, whistled(case, now - MINUTE / 2))
        await publish_event(bootstrap, signed_for(case, assignment, now + MINUTE))
        types = await timeline_types(client, case, 4)
        assert types == ["case.reported", "case.whistled", "case.dispatched", "case.signed_for"]
        assert await fetchval(dsn, "SELECT count(*) FROM timers WHERE case_id = $1", case) == 1

        missing = await client.get(f"/cases/{uuid.uuid4()}/timeline")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "case_not_found"
        assert "不存在" in missing.json()["error"]["message"]
        en = await client.get(f"/cases/{uuid.uuid4()}/timeline",
                              headers={"Accept-Language": "en"})
        assert "not found" in en.json()["error"]["message"]
        assert (await client.get("/overdue", params={"limit": 0})).status_code == 422

        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert "whistle_timers_due" in (await client.get("/metrics")).text
        spec = json.dumps((await client.get("/asyncapi.json")).json())
        assert Topics.TRACKING in spec and Topics.DISPATCH in spec and "case.overdue" in spec
