"""Tracking against real PostgreSQL (the timers, driven by a controllable clock) and the real
broker (the timeline, the overdue alert, the board). The service tests share one app for the
module (the Kafka group join is the slow part) and each works on its own cases; every request
carries a bearer token, as in production."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from services.tracking import consumers, handlers
from services.tracking.config import Settings
from services.tracking.main import create_app
from services.tracking.scheduler import TimerScheduler
from shared.auth import Role, TokenKeys
from shared.contract import (
    Actor,
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
from tests.helpers import (
    TEST_KEYS,
    as_user,
    bearer,
    eventually,
    publish_event,
    read_topic,
    running_app,
    token,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
FACTS = {
    "case_no": "YA20260302-0007",
    "area_path": "YA/YA01/YA0101/YA0101-01",
    "category": "E0101",
    "priority": Priority.NORMAL,
}
# The same kind of case in another street (锦园街道/锦绣社区).
ELSEWHERE = {**FACTS, "case_no": "YA20260302-0008", "area_path": "YA/YA02/YA0201/YA0201-02"}
WHERE = {
    "grid_code": "YA0101-01",
    "description": "楼下空地乱堆建筑垃圾",
    "location": Location(address="桃园小区3号楼"),
}

# Readers (demo users, shared/demo.py): the district command sees everything.
COMMAND = as_user("command")
TRACKING_ALERTS = {"subject": "system:tracking", "role": "system", "name": "时限监控"}


def reported(case_id, at, facts=FACTS, actor=None):
    return new_event(
        CaseReported(**facts, **WHERE, reporter="网格员李明", reported_at=at),
        case_id=case_id,
        producer="intake",
        occurred_at=at,
        actor=actor,
    )


def whistled(case_id, at, facts=FACTS, actor=None):
    return new_event(
        CaseWhistled(**facts, **WHERE, departments=["cg"]),
        case_id=case_id,
        producer="intake",
        occurred_at=at,
        actor=actor,
    )


def dispatched(
    case_id, assignment_id, at, department=("cg", "榆安区城市管理局"), facts=FACTS, actor=None
):
    return new_event(
        CaseDispatched(
            **facts,
            assignment_id=assignment_id,
            department_id=department[0],
            department_name=department[1],
            role="lead",
            rule_id=6,
            reason="E0101 @ YA",
            description=WHERE["description"],
        ),
        case_id=case_id,
        producer="dispatch",
        occurred_at=at,
        actor=actor,
    )


def signed_for(case_id, assignment_id, at, department_id="cg", actor=None):
    return new_event(
        CaseSignedFor(**FACTS, assignment_id=assignment_id, department_id=department_id),
        case_id=case_id,
        producer="dispatch",
        occurred_at=at,
        actor=actor,
    )


def resolved(case_id, assignment_id, at, department_id="cg", actor=None):
    return new_event(
        CaseResolved(
            **FACTS, assignment_id=assignment_id, department_id=department_id, result="已清运"
        ),
        case_id=case_id,
        producer="dispatch",
        occurred_at=at,
        actor=actor,
    )


# --- timers on real PostgreSQL, handlers called directly ------------------------------------------


@pytest.fixture
async def pool(pg_server, pool_factory):
    return await pool_factory(await migrated_database(pg_server, "tracking"))


async def record(pool, *events, deadline=timedelta(minutes=30)):
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await consumers.record(conn, event, sign_for_deadline=deadline)


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
    assert alert["actor"] == TRACKING_ALERTS  # raised by the deadline watch, not a person
    p = alert["payload"]
    assert p["clock"] == "sign_for" and p["assignment_id"] == str(assignment)
    assert datetime.fromisoformat(p["due_at"]) == T0 + 30 * MINUTE
    assert (p["department_id"], p["department_name"]) == ("cg", "榆安区城市管理局")
    assert (p["case_no"], p["area_path"], p["priority"]) == (
        FACTS["case_no"],
        FACTS["area_path"],
        "normal",
    )
    types = await pool.fetch(
        "SELECT type FROM case_events WHERE case_id = $1 ORDER BY occurred_at, seq", case
    )
    assert [r["type"] for r in types] == ["case.reported", "case.dispatched", "case.overdue"]

    assert await fire(pool, T0 + 2 * 30 * MINUTE) == (0, 0)  # fired is fired
    assert len(await overdue_rows(pool)) == 1
    assert (
        await pool.fetchval("SELECT state FROM timers WHERE assignment_id = $1", assignment)
        == "fired"
    )


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
    await record(
        pool, *(dispatched(c, a, T0 + i * timedelta(seconds=1)) for i, (c, a) in enumerate(cases))
    )

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
        str(a) for _, a in cases
    )
    assert await pool.fetchval("SELECT count(*) FROM timers WHERE state = 'pending'") == 0


async def test_sign_for_stops_the_clock_and_late_dispatches_start_none(pool):
    on_time, signed_first, resolved_first, closed = (uuid.uuid4() for _ in range(4))
    case = uuid.uuid4()
    await record(
        pool,
        dispatched(case, on_time, T0),
        signed_for(case, on_time, T0 + MINUTE),
        # dispatch's events for these two reach us in the wrong order
        signed_for(case, signed_first, T0 + MINUTE),
        dispatched(case, signed_first, T0),
        resolved(case, resolved_first, T0 + 2 * MINUTE),
        dispatched(case, resolved_first, T0),
    )
    other = uuid.uuid4()
    await record(
        pool,
        dispatched(other, closed, T0),
        new_event(
            CaseClosed(**FACTS, note="网格员现场处置"),
            case_id=other,
            producer="intake",
            occurred_at=T0 + MINUTE,
        ),
    )
    assert await fire(pool, T0 + 24 * 60 * MINUTE) == (0, 0)
    assert await overdue_rows(pool) == []
    states = dict(await pool.fetch("SELECT assignment_id, state FROM assignments"))
    assert states == {
        on_time: "signed_for",
        signed_first: "signed_for",
        resolved_first: "resolved",
        closed: "dispatched",
    }
    name = await pool.fetchval(
        "SELECT department_name FROM assignments WHERE assignment_id = $1", signed_first
    )
    assert name == "榆安区城市管理局"  # filled in by the late dispatch
    timers = dict(await pool.fetch("SELECT assignment_id, state FROM timers"))
    assert timers == {on_time: "cancelled", closed: "cancelled"}
    assert await pool.fetchval("SELECT status FROM cases WHERE case_id = $1", case) == "resolved"


async def test_rejection_or_transfer_stops_the_clock_and_is_announced(pool):
    from shared.contract import CaseRejected, CaseTransferred

    case, rejected_a, transferred_a = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await record(
        pool,
        dispatched(case, rejected_a, T0),
        dispatched(case, transferred_a, T0),
        new_event(
            CaseRejected(
                **FACTS, assignment_id=rejected_a, department_id="cg", reason="不属于本部门"
            ),
            case_id=case,
            producer="dispatch",
            occurred_at=T0 + MINUTE,
        ),
        new_event(
            CaseTransferred(
                **FACTS,
                assignment_id=transferred_a,
                department_id="cg",
                to_department_id="zj",
                reason="属住建职责",
            ),
            case_id=case,
            producer="dispatch",
            occurred_at=T0 + MINUTE,
        ),
    )
    assert await fire(pool, T0 + 24 * 60 * MINUTE) == (0, 0)  # no alert for either
    timers = dict(await pool.fetch("SELECT assignment_id, state FROM timers"))
    assert timers == {rejected_a: "cancelled", transferred_a: "cancelled"}
    stopped = [
        r["payload"]["payload"]
        for r in await pool.fetch(
            "SELECT payload FROM outbox WHERE type = 'case.clock_stopped' ORDER BY id"
        )
    ]
    assert [(p["assignment_id"], p["because"]) for p in stopped] == [
        (str(rejected_a), "case.rejected"),
        (str(transferred_a), "case.transferred"),
    ]


async def test_scheduler_follows_an_injected_clock_and_survives_a_restart(pool):
    clock = {"now": T0}
    sample = {"service": "tracking", "clock": "sign_for"}
    fired_before = REGISTRY.get_sample_value("whistle_timers_fired_total", sample) or 0.0

    def scheduler():
        return TimerScheduler(
            lambda: pool, poll_interval=0.05, batch_size=2, now=lambda: clock["now"]
        )

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

# The module's app runs a short sign-for deadline. A test that wants an alert dates its
# dispatch almost a deadline ago; the others date theirs recently, so no alert can race them.
DEADLINE = timedelta(seconds=60)

# Demo users (shared/demo.py USERS) and made-up ones.
TAOYUAN, JINXIU = as_user("taoyuan"), as_user("jinxiu")  # communities YA0101, YA0201
YINGZE, DONGHU = as_user("yingze"), as_user("donghu")  # streets YA01, YA03
SUP_YINGZE, ADMIN = as_user("sup-yingze"), as_user("admin")  # supervisor of YA01; admin
WANGFANG = as_user("wangfang")  # grid worker of YA0101-03/-04
GRID_01 = bearer(
    Role.GRID_WORKER, "YA/YA01/YA0101/YA0101-01", grids=("YA/YA01/YA0101/YA0101-01",)
)  # the grid FACTS' cases are in
CG, ZJ = as_user("cg-duty"), as_user("zj-duty")  # departments


@dataclass
class App:
    client: httpx.AsyncClient
    dsn: str
    bootstrap: str

    async def val(self, sql: str, *args):
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def publish(self, *events) -> None:
        for event in events:
            await publish_event(self.bootstrap, event)

    async def timeline(self, case_id, headers=COMMAND) -> httpx.Response:
        return await self.client.get(f"/cases/{case_id}/timeline", headers=headers)

    async def timeline_types(self, case_id, at_least: int) -> list[str]:
        async def probe():
            resp = await self.timeline(case_id)
            if resp.status_code != 200:
                return None
            types = [e["type"] for e in resp.json()["events"]]
            return types if len(types) >= at_least else None

        return await eventually(probe, timeout=45, message=f"{at_least} events on the timeline")

    async def board(self, headers=COMMAND, **query) -> list[dict]:
        resp = await self.client.get("/overdue", params=query, headers=headers)
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]


@pytest.fixture(scope="module")
async def tracking(pg_server, kafka_server):
    dsn = await migrated_database(pg_server, "tracking")
    settings = Settings(
        environment="test",
        database_url=dsn,
        kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False,
        log_json=False,
        outbox_poll_interval_seconds=0.5,
        timer_poll_interval_seconds=0.2,
        sign_for_deadline_seconds=DEADLINE.total_seconds(),
    )
    async with running_app(create_app(settings)) as client:
        yield App(client, dsn, kafka_server.bootstrap)


def error_code(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]["code"]


async def test_timeline_puts_events_from_both_producers_in_the_order_they_happened(tracking):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    t = datetime.now(UTC) - 30 * SECOND
    # dispatch's events reach us before intake's: the timeline still reads in order
    await tracking.publish(
        dispatched(case, assignment, t + 2 * SECOND),
        signed_for(case, assignment, t + 3 * SECOND),
        resolved(case, assignment, t + 9 * SECOND),
        reported(case, t),
        whistled(case, t + SECOND),
    )
    types = await tracking.timeline_types(case, 5)
    assert types == [
        "case.reported",
        "case.whistled",
        "case.dispatched",
        "case.signed_for",
        "case.resolved",
    ]
    body = (await tracking.timeline(case)).json()
    assert body["case"]["status"] == "resolved"
    assert body["case"]["status_label"] == "已办结待核查"
    assert body["case"]["case_no"] == FACTS["case_no"]
    first = body["events"][0]
    assert first["producer"] == "intake" and first["label"] == "网格上报"
    assert first["payload"]["reporter"] == "网格员李明"
    assert [e["actor"] for e in body["events"]] == [None] * 5  # events from before attribution
    [a] = body["assignments"]
    assert (a["assignment_id"], a["state"]) == (str(assignment), "resolved")
    assert a["department_name"] == "榆安区城市管理局" and a["signed_for_at"]
    timer = await tracking.val("SELECT state FROM timers WHERE assignment_id = $1", assignment)
    assert timer == "cancelled"


async def test_timeline_shows_who_did_each_step(tracking):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    t = datetime.now(UTC) - 30 * SECOND
    grid_worker = Actor(subject="wangfang", role="grid_worker", name="网格员王芳")
    community = Actor(subject="taoyuan", role="community", name="桃园社区书记")
    router = Actor(subject="system:dispatch", role="system", name="自动派单")
    department = Actor(subject="cg-duty", role="department", name="榆安区城市管理局值班员")
    await tracking.publish(
        reported(case, t, actor=grid_worker),
        whistled(case, t + SECOND, actor=community),
        dispatched(case, assignment, t + 2 * SECOND, actor=router),
        signed_for(case, assignment, t + 3 * SECOND, actor=department),
    )
    await tracking.timeline_types(case, 4)
    events = (await tracking.timeline(case)).json()["events"]
    assert [(e["label"], e["actor"]) for e in events] == [
        ("网格上报", grid_worker.model_dump()),
        ("社区吹哨", community.model_dump()),
        ("派单", router.model_dump()),
        ("部门报到", department.model_dump()),
    ]


async def test_timeline_is_read_only_by_the_case_area_and_its_departments(tracking):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    t = datetime.now(UTC) - 30 * SECOND
    await tracking.publish(
        reported(case, t),
        dispatched(case, assignment, t + SECOND),
        signed_for(case, assignment, t + 2 * SECOND),
    )
    await tracking.timeline_types(case, 3)

    # who may read it: its grid, community, street, district, supervisors above it, and the
    # department it was dispatched to
    for reader in (GRID_01, TAOYUAN, YINGZE, COMMAND, SUP_YINGZE, as_user("supervisor"), CG):
        resp = await tracking.timeline(case, reader)
        assert resp.status_code == 200, resp.text
        assert resp.json()["case"]["case_no"] == FACTS["case_no"]

    # who may not: outside the area, a department without an assignment on it, admin
    denied = {
        "street outside": (DONGHU, "out_of_scope"),
        "other community": (JINXIU, "out_of_scope"),
        "string prefix": (bearer(Role.STREET, "YA/YA0"), "out_of_scope"),
        "other grids": (WANGFANG, "out_of_scope"),
        "below the case": (bearer(Role.COMMUNITY, f"{FACTS['area_path']}/x"), "out_of_scope"),
        "other supervisor": (bearer(Role.SUPERVISOR, "YA/YA02"), "out_of_scope"),
        "unassigned department": (ZJ, "not_your_case"),
        "admin": (ADMIN, "role_not_allowed"),
    }
    for why, (reader, code) in denied.items():
        resp = await tracking.timeline(case, reader)
        assert error_code(resp, 403) == code, why
    message = (await tracking.timeline(case, DONGHU)).json()["error"]["message"]
    assert "无权" in message and FACTS["area_path"] in message  # the reason, in Chinese
    zh = (await tracking.timeline(case, ZJ)).json()["error"]["message"]
    assert "没有派单" in zh
    en = await tracking.client.get(
        f"/cases/{case}/timeline", headers={**ZJ, "Accept-Language": "en"}
    )
    assert "no assignment" in en.json()["error"]["message"]

    # an unknown case stays 404 for a role that may read timelines
    assert error_code(await tracking.timeline(uuid.uuid4(), CG), 404) == "case_not_found"


async def test_requests_without_a_valid_token_are_401(tracking):
    case = uuid.uuid4()
    await tracking.publish(reported(case, datetime.now(UTC)))
    await tracking.timeline_types(case, 1)
    secret = "another-secret-of-at-least-32-characters!"
    other_keys = TokenKeys("HS256", secret, secret, "whistle", "whistle")
    other_audience = TokenKeys(
        "HS256", TEST_KEYS.verify_key, TEST_KEYS.sign_key, "whistle", "elsewhere"
    )
    bad = {
        "no header": ({}, "unauthenticated"),
        "not bearer": ({"Authorization": "Basic dXNlcjpwYXNz"}, "unauthenticated"),
        "empty bearer": ({"Authorization": "Bearer "}, "unauthenticated"),
        "garbage": ({"Authorization": "Bearer not-a-jwt"}, "invalid_token"),
        "expired": (bearer(Role.DISTRICT, "YA", ttl=-60), "token_expired"),
        "foreign key": (
            {"Authorization": f"Bearer {token(Role.DISTRICT, 'YA', keys=other_keys)}"},
            "invalid_token",
        ),
        "other audience": (
            {"Authorization": f"Bearer {token(Role.DISTRICT, 'YA', keys=other_audience)}"},
            "invalid_token",
        ),
    }
    for why, (headers, code) in bad.items():
        for path in (f"/cases/{case}/timeline", "/overdue"):
            resp = await tracking.client.get(path, headers=headers)
            assert error_code(resp, 401) == code, (why, path)
    missing = await tracking.client.get(f"/cases/{case}/timeline")
    assert "Bearer" in missing.json()["error"]["message"]
    # health, readiness and metrics stay open
    for path in ("/livez", "/readyz", "/metrics"):
        assert (await tracking.client.get(path)).status_code == 200, path


async def test_missed_sign_for_raises_one_alert_and_shows_on_the_board(tracking):
    case, assignment = uuid.uuid4(), uuid.uuid4()

    async def on_board(**query):
        return [i for i in await tracking.board(**query) if i["case_id"] == str(case)]

    now = datetime.now(UTC)
    due = now + 2 * SECOND
    await tracking.publish(
        reported(case, now - MINUTE), dispatched(case, assignment, due - DEADLINE)
    )
    await tracking.timeline_types(case, 2)
    checked_at = datetime.now(UTC)
    if checked_at < due:  # recorded before the deadline: not late yet
        assert not await on_board()
    [item] = await eventually(on_board, timeout=45, message="case on the board")
    assert item["clock"] == "sign_for" and item["department_id"] == "cg"
    assert item["overdue_seconds"] >= 0 and item["label"].startswith("超时")
    assert datetime.fromisoformat(item["due_at"]) == due

    async def alerted():  # the board shows a late clock at once; the alert's time follows
        return [i for i in await on_board() if i["overdue_alerted_at"]]

    [item] = await eventually(alerted, timeout=45, message="the overdue alert on the board")
    assert datetime.fromisoformat(item["overdue_alerted_at"]) >= due
    assert await on_board(area="YA/YA01") and await on_board(area=FACTS["area_path"])
    assert await on_board(department_id="cg", area="YA/")
    assert not await on_board(area="YA/YA0")  # a prefix is whole path segments
    assert not await on_board(area="YA/YA02")
    assert not await on_board(department_id="zj")

    async def published():
        return await tracking.val(
            "SELECT count(*) FROM outbox WHERE type = 'case.overdue'"
            " AND key = $1 AND sent_at IS NOT NULL",
            str(case),
        )

    await eventually(published, message="overdue alert published")
    records = await read_topic(tracking.bootstrap, Topics.TRACKING)
    mine = [json.loads(r.value) for r in records if r.key == str(case).encode()]
    # The clock's start is announced (for the reporter's view), then the alert.
    assert [m["type"] for m in mine] == ["case.clock_started", "case.overdue"]
    assert mine[0]["payload"]["due_at"] == mine[1]["payload"]["due_at"]
    assert {m["actor"]["subject"] for m in mine} == {TRACKING_ALERTS["subject"]}
    assert mine[1]["actor"] == TRACKING_ALERTS

    await tracking.publish(signed_for(case, assignment, datetime.now(UTC)))

    async def off_board():
        return not await on_board()

    await eventually(off_board, timeout=45, message="signed-for case left the board")
    types = await tracking.timeline_types(case, 4)
    assert types == ["case.reported", "case.dispatched", "case.overdue", "case.signed_for"]
    alert = (await tracking.timeline(case)).json()["events"][2]
    assert (alert["label"], alert["actor"]) == ("超时", TRACKING_ALERTS)
    assert (
        await tracking.val(
            "SELECT count(*) FROM outbox WHERE type = 'case.overdue' AND key = $1", str(case)
        )
        == 1
    )


async def test_the_board_shows_each_reader_only_their_part(tracking):
    here, there = uuid.uuid4(), uuid.uuid4()  # 桃园社区 (YA01), 锦绣社区 (YA02)
    due = datetime.now(UTC) + SECOND
    await tracking.publish(
        dispatched(here, uuid.uuid4(), due - DEADLINE),
        dispatched(
            there,
            uuid.uuid4(),
            due - DEADLINE,
            department=("zj", "榆安区住房和城乡建设局"),
            facts=ELSEWHERE,
        ),
    )

    async def both_on_board():
        cases = {i["case_id"] for i in await tracking.board()}
        return {str(here), str(there)} <= cases

    await eventually(both_on_board, timeout=45, message="both cases on the district's board")

    async def seen_by(headers, **query) -> tuple[list[dict], set[str]]:
        items = await tracking.board(headers, **query)
        return items, {i["case_id"] for i in items} & {str(here), str(there)}

    def under(items, root):
        return all(i["area_path"] == root or i["area_path"].startswith(root + "/") for i in items)

    # area readers see their subtree, and nothing else
    for reader, root, mine in (
        (TAOYUAN, "YA/YA01/YA0101", {str(here)}),
        (JINXIU, "YA/YA02/YA0201", {str(there)}),
        (YINGZE, "YA/YA01", {str(here)}),
        (DONGHU, "YA/YA03", set()),
        (SUP_YINGZE, "YA/YA01", {str(here)}),
        (COMMAND, "YA", {str(here), str(there)}),
    ):
        items, seen = await seen_by(reader)
        assert seen == mine, root
        assert under(items, root), root
    # a filter narrows inside the caller's subtree
    items, seen = await seen_by(YINGZE, area="YA/YA01/YA0101")
    assert seen == {str(here)} and under(items, "YA/YA01/YA0101")
    assert (await seen_by(TAOYUAN, department_id="zj"))[1] == set()
    assert (await seen_by(COMMAND, department_id="zj"))[1] == {str(there)}

    # department staff see their own department's items only, anywhere
    items, seen = await seen_by(CG)
    assert seen == {str(here)} and {i["department_id"] for i in items} == {"cg"}
    items, seen = await seen_by(ZJ, department_id="zj")
    assert seen == {str(there)} and {i["department_id"] for i in items} == {"zj"}
    assert (await seen_by(ZJ, area="YA/YA01"))[1] == set()

    # a filter reaching outside the caller's part is refused, not silently emptied
    denied = {
        "area outside the community": (TAOYUAN, {"area": "YA/YA02"}, "out_of_scope"),
        "area above the community": (TAOYUAN, {"area": "YA/YA01"}, "out_of_scope"),
        "string prefix": (YINGZE, {"area": "YA/YA0"}, "out_of_scope"),
        "another department": (CG, {"department_id": "zj"}, "not_your_department"),
        "grid worker": (WANGFANG, {}, "role_not_allowed"),
        "admin": (ADMIN, {}, "role_not_allowed"),
    }
    for why, (reader, query, code) in denied.items():
        resp = await tracking.client.get("/overdue", params=query, headers=reader)
        assert error_code(resp, 403) == code, why
    message = (
        await tracking.client.get("/overdue", params={"area": "YA/YA02"}, headers=TAOYUAN)
    ).json()["error"]["message"]
    assert "YA/YA02" in message and "无权" in message
    grid = await tracking.client.get("/overdue", headers=WANGFANG)
    assert "网格员" in grid.json()["error"]["message"]


async def test_duplicates_are_recorded_once_and_unknown_cases_are_404(tracking):
    case, assignment = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    report, dispatch = reported(case, now - MINUTE), dispatched(case, assignment, now)
    await tracking.publish(report, report, dispatch, dispatch)
    # events published after the duplicates on the same partitions mark "all handled"
    await tracking.publish(
        whistled(case, now - MINUTE / 2), signed_for(case, assignment, now + SECOND)
    )
    types = await tracking.timeline_types(case, 4)
    assert types == ["case.reported", "case.whistled", "case.dispatched", "case.signed_for"]
    assert await tracking.val("SELECT count(*) FROM timers WHERE case_id = $1", case) == 1

    client = tracking.client
    missing = await tracking.timeline(uuid.uuid4())
    assert error_code(missing, 404) == "case_not_found"
    assert "不存在" in missing.json()["error"]["message"]
    en = await client.get(
        f"/cases/{uuid.uuid4()}/timeline", headers={**COMMAND, "Accept-Language": "en"}
    )
    assert "not found" in en.json()["error"]["message"]
    assert (await client.get("/overdue", params={"limit": 0}, headers=COMMAND)).status_code == 422

    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert "whistle_timers_due" in (await client.get("/metrics")).text
    spec = json.dumps((await client.get("/asyncapi.json")).json())
    assert Topics.TRACKING in spec and Topics.DISPATCH in spec and "case.overdue" in spec
