"""The supervisors' boards (超时 / 临期督办), their live stream and urging (督办), on real
PostgreSQL. First the handlers, driven by events and an injected clock, like
test_tracking_sla; then the service on the real broker, served by uvicorn on a loopback port
so the Server-Sent Events stream can be followed live, resumed and shut down.

Times are Asia/Shanghai wall clock in the demo calendar (08:30–12:00, 13:30–17:30 Mon–Fri);
2026-03-02 is a Monday. Under the demo policy a 市容环境 (E01) normal case must be signed
for in 2 working hours (warning at 80 %) and resolved in 3 working days; a 电梯困人 (C0501)
urgent case in 15 minutes, on site in 30 and resolved in 12 hours (calendar time), with the
urgent ladder community +0 / street +30 min / district +120 min.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from services.tracking import consumers, handlers
from services.tracking.config import Settings
from services.tracking.demo import seed_demo
from services.tracking.domain.board import Board
from services.tracking.handlers.boards import BoardQuery
from services.tracking.main import create_app
from services.tracking.repository.boards import BoardFilter
from services.tracking.stream import BoardStreams
from shared import db
from shared.auth import Forbidden, Principal, Role
from shared.contract import (
    CaseClosed,
    CaseDispatched,
    CasePauseDecided,
    CaseProgressed,
    CaseRejected,
    CaseResolved,
    CaseResumed,
    CaseSignedFor,
    PauseKind,
    Priority,
    Topics,
    new_event,
)
from shared.errors import Conflict, NotFound
from tests.conftest import free_port, migrated_database
from tests.helpers import as_user, bearer, eventually, read_topic

CN = ZoneInfo("Asia/Shanghai")


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """Day 0 is Monday 2026-03-02."""
    return datetime(2026, 3, 2 + day, hh, mm, tzinfo=CN)


MON = at(0, 9)
# 市容环境/乱堆物料, normal, 桃园社区 (YA/YA01/YA0101)
HERE = {
    "case_no": "YA-A",
    "area_path": "YA/YA01/YA0101/YA0101-01",
    "category": "E0101",
    "priority": Priority.NORMAL,
}
# 电梯困人, urgent, 锦绣社区 (YA/YA02/YA0201)
LIFT = {
    "case_no": "YA-L",
    "area_path": "YA/YA02/YA0201/YA0201-02",
    "category": "C0501",
    "priority": Priority.URGENT,
}
# 市容环境/楼道杂物, minor, 迎泽街道's second community (YA/YA01/YA0102)
STAIRS = {
    "case_no": "YA-M",
    "area_path": "YA/YA01/YA0102/YA0102-01",
    "category": "E0103",
    "priority": Priority.MINOR,
}

DISTRICT = Principal(subject="command", name="区指挥中心", role=Role.DISTRICT, area="YA")


def dispatched(case, assignment, when, facts=HERE, department="cg", role="lead"):
    return new_event(
        CaseDispatched(
            **facts,
            assignment_id=assignment,
            department_id=department,
            department_name=f"部门{department}",
            role=role,
            rule_id=1,
            reason="test",
            description="test",
        ),
        case_id=case,
        producer="dispatch",
        occurred_at=when,
    )


def step(cls, case, assignment, when, facts=HERE, department="cg", **fields):
    return new_event(
        cls(**facts, assignment_id=assignment, department_id=department, **fields),
        case_id=case,
        producer="dispatch",
        occurred_at=when,
    )


def closed(case, when, facts=HERE):
    return new_event(
        CaseClosed(**facts, note="核查通过"), case_id=case, producer="intake", occurred_at=when
    )


@pytest.fixture
async def pool(pg_server, pool_factory):
    dsn = await migrated_database(pg_server, "tracking")
    await seed_demo(Settings(environment="test", database_url=dsn))
    return await pool_factory(dsn)


async def record(pool, *events):
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await consumers.record(conn, event)


async def fire(pool, now):
    async with pool.acquire() as conn:
        while (await handlers.fire_due_timers(conn, now=now, limit=100)).claimed:
            pass


async def items(pool, now, which=Board.OVERDUE, who=DISTRICT, limit=100, offset=0, **query):
    return await handlers.read_board(
        pool, who, which, BoardQuery(**query), now=now, limit=limit, offset=offset
    )


async def seen(pool, now, which=Board.OVERDUE, who=DISTRICT, **query):
    """(case_no, clock) of each item, in board order."""
    return [(i.case_no, i.clock.value) for i in await items(pool, now, which, who, **query)]


# --- the overdue board ---------------------------------------------------------------------------


async def test_every_running_clock_past_its_deadline_is_on_the_board_most_late_first(pool):
    here, here_a = uuid.uuid4(), uuid.uuid4()
    lift, lift_a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(here, here_a, MON), dispatched(lift, lift_a, MON, LIFT, "dt"))
    assert await seen(pool, at(0, 9, 10)) == []
    assert await seen(pool, at(0, 9, 20)) == [("YA-L", "sign_for")]
    # every kind of clock, not only sign-for: on-site and resolution too
    assert await seen(pool, at(0, 11, 30)) == [
        ("YA-L", "sign_for"),
        ("YA-L", "on_site"),
        ("YA-A", "sign_for"),
    ]
    assert await seen(pool, at(0, 21, 30)) == [
        ("YA-L", "sign_for"),
        ("YA-L", "on_site"),
        ("YA-A", "sign_for"),
        ("YA-L", "resolve"),
    ]

    # before the scheduler got to them: late, but no alert or escalation yet
    [first, *_] = await items(pool, at(0, 11, 30))
    assert (first.overdue_alerted_at, first.escalation_level, first.urge_count) == (None, None, 0)
    assert first.late_by(at(0, 11, 30)) == timedelta(hours=2, minutes=15)
    # the escalation level each clock reached, as the ladder fired
    await fire(pool, at(0, 11, 30))
    levels = {
        (i.case_no, i.clock.value): (i.escalation_level, i.escalation_step)
        for i in await items(pool, at(0, 11, 30))
    }
    assert levels == {
        ("YA-L", "sign_for"): ("district", 2),  # 09:15 +0, +30, +120 min
        ("YA-L", "on_site"): ("district", 2),  # 09:30 … 11:30
        ("YA-A", "sign_for"): ("community", 0),
    }  # 11:00 +0
    [lift_sign_for, *_] = await items(pool, at(0, 11, 30))
    assert lift_sign_for.overdue_alerted_at == at(0, 11, 30)  # when the scheduler fired it

    # doing the step takes a clock off the board; closing the case takes them all
    await record(
        pool,
        step(CaseSignedFor, here, here_a, at(0, 11, 40)),
        step(CaseProgressed, lift, lift_a, at(0, 11, 41), LIFT, "dt", note="已到现场"),
    )
    assert await seen(pool, at(0, 11, 45)) == [("YA-L", "sign_for")]
    await record(pool, closed(lift, at(0, 11, 50), LIFT))
    assert await seen(pool, at(3, 12)) == [("YA-A", "resolve")]  # Thu 09:00 passed
    await record(pool, step(CaseRejected, here, here_a, at(3, 12, 5), reason="不归我管"))
    assert await seen(pool, at(3, 13)) == []


async def test_the_near_overdue_board_shows_warned_clocks_least_time_left_first(pool):
    cases = {}
    for no, minutes in (("YA-1", 0), ("YA-2", 10), ("YA-3", 5)):
        case, assignment = uuid.uuid4(), uuid.uuid4()
        cases[no] = (case, assignment)
        await record(
            pool,
            dispatched(case, assignment, MON + timedelta(minutes=minutes), {**HERE, "case_no": no}),
        )
    # sign-for due 11:00, 11:10, 11:05; warned at 80 %: 10:36, 10:46, 10:42
    assert await seen(pool, at(0, 10, 35), Board.NEAR_OVERDUE) == []
    assert await seen(pool, at(0, 10, 40), Board.NEAR_OVERDUE) == [("YA-1", "sign_for")]
    near = await items(pool, at(0, 10, 50), Board.NEAR_OVERDUE)
    assert [(i.case_no, i.clock.value) for i in near] == [
        ("YA-1", "sign_for"),
        ("YA-3", "sign_for"),
        ("YA-2", "sign_for"),
    ]
    assert [i.left(at(0, 10, 50)) for i in near] == [
        timedelta(minutes=10),
        timedelta(minutes=15),
        timedelta(minutes=20),
    ]
    # once due it moves to the overdue board; signed for, it leaves both
    assert await seen(pool, at(0, 11, 2), Board.NEAR_OVERDUE) == [
        ("YA-3", "sign_for"),
        ("YA-2", "sign_for"),
    ]
    assert await seen(pool, at(0, 11, 2)) == [("YA-1", "sign_for")]
    case, assignment = cases["YA-3"]
    await record(
        pool, step(CaseSignedFor, case, assignment, at(0, 11, 3), {**HERE, "case_no": "YA-3"})
    )
    assert await seen(pool, at(0, 11, 4), Board.NEAR_OVERDUE) == [("YA-2", "sign_for")]


async def test_a_paused_clock_leaves_the_boards_and_comes_back_when_resumed(pool):
    case, assignment, request = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = await handlers.feed_start(pool)
    await record(
        pool, dispatched(case, assignment, MON), step(CaseSignedFor, case, assignment, at(0, 9, 30))
    )
    # resolution due Thursday 09:00, warned Wednesday 12:00
    assert await seen(pool, at(2, 13), Board.NEAR_OVERDUE) == [("YA-A", "resolve")]
    await record(
        pool,
        step(
            CasePauseDecided,
            case,
            assignment,
            at(2, 13),
            request_id=request,
            kind=PauseKind.HANG,
            reason="需列入改造计划",
            approved=True,
        ),
    )
    for which in Board:  # standing still (挂账): neither close nor late, however long
        assert await seen(pool, at(2, 14), which) == []
        assert await seen(pool, at(6, 12), which) == []
    await record(
        pool, step(CaseResumed, case, assignment, at(7, 9), request_id=request, note="资金已落实")
    )
    [back] = await items(pool, at(7, 9, 30), Board.NEAR_OVERDUE)
    assert back.clock.value == "resolve" and back.due_at > at(7, 9, 30)
    got, _ = await drain(pool, BoardFilter(None), start)
    resolve = [change for change, _, clock in got if clock == "resolve"]
    assert resolve[0] == "started" and "paused" in resolve and "resumed" in resolve


@pytest.fixture
async def three_cases(pool):
    """On Wednesday 09:00: the lift case's three clocks, HERE's sign-for and STAIRS' sign-for
    are late (resolution clocks of HERE and STAIRS are not)."""
    for facts, department in ((HERE, "cg"), (LIFT, "dt"), (STAIRS, "zj")):
        await record(pool, dispatched(uuid.uuid4(), uuid.uuid4(), MON, facts, department))
    return at(2, 9)


async def test_every_filter_narrows_the_board(pool, three_cases):
    now = three_cases
    everything = await seen(pool, now)
    assert everything == [
        ("YA-L", "sign_for"),
        ("YA-L", "on_site"),
        ("YA-A", "sign_for"),
        ("YA-L", "resolve"),
        ("YA-M", "sign_for"),
    ]
    # equally late: the most urgent first (urgent < normal < minor), at one deadline
    cases = {
        # area subtree, by whole path segments
        (("area", "YA/YA01"),): [("YA-A", "sign_for"), ("YA-M", "sign_for")],
        (("area", "YA/YA01/YA0101"),): [("YA-A", "sign_for")],
        (("area", "YA/YA0"),): [],
        (("area", "YA/YA02/YA0201/YA0201-02"),): [
            ("YA-L", "sign_for"),
            ("YA-L", "on_site"),
            ("YA-L", "resolve"),
        ],
        (("department_id", "zj"),): [("YA-M", "sign_for")],
        (("department_id", "nobody"),): [],
        # a 大类 covers its 小类
        (("category", "E01"),): [("YA-A", "sign_for"), ("YA-M", "sign_for")],
        (("category", "E0101"),): [("YA-A", "sign_for")],
        (("category", "C05"),): [("YA-L", "sign_for"), ("YA-L", "on_site"), ("YA-L", "resolve")],
        (("category", "E02"),): [],
        (("priority", "minor"),): [("YA-M", "sign_for")],
        (("priority", "normal"),): [("YA-A", "sign_for")],
        (("clock", "on_site"),): [("YA-L", "on_site")],
        (("clock", "resolve"),): [("YA-L", "resolve")],
        (("clock", "sign_for"),): [
            ("YA-L", "sign_for"),
            ("YA-A", "sign_for"),
            ("YA-M", "sign_for"),
        ],
        (
            ("area", "YA/YA01"),
            ("clock", "sign_for"),
            ("priority", "normal"),
            ("category", "E01"),
            ("department_id", "cg"),
        ): [("YA-A", "sign_for")],
        (("area", "YA/YA01"), ("priority", "urgent")): [],
    }
    for query, expected in cases.items():
        assert await seen(pool, now, **dict(query)) == expected, query
    # pages agree with the whole board
    pages = [await items(pool, now, limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [(i.case_no, i.clock.value) for page in pages for i in page] == everything
    assert [len(p) for p in pages] == [2, 2, 1, 0]


async def test_each_reader_sees_only_their_part_and_a_filter_outside_it_is_refused(
    pool, three_cases
):
    now = three_cases
    community = Principal("taoyuan", "桃园社区", Role.COMMUNITY, "YA/YA01/YA0101")
    street = Principal("yingze", "迎泽街道", Role.STREET, "YA/YA01")
    supervisor = Principal("sup-ya02", "督办", Role.SUPERVISOR, "YA/YA02")
    cg = Principal("cg-duty", "城管值班", Role.DEPARTMENT, "YA", department_id="cg")
    for who, expected in (
        (community, {"YA-A"}),
        (street, {"YA-A", "YA-M"}),
        (supervisor, {"YA-L"}),
        (cg, {"YA-A"}),
        (DISTRICT, {"YA-A", "YA-M", "YA-L"}),
    ):
        for which in Board:
            assert {no for no, _ in await seen(pool, at(2, 9), which, who)} <= expected
        assert {no for no, _ in await seen(pool, now, who=who)} == expected, who.subject
    assert await seen(pool, now, who=street, area="YA/YA01/YA0102") == [("YA-M", "sign_for")]
    refused = {
        "area outside": (community, {"area": "YA/YA02"}, "out_of_scope"),
        "area above": (community, {"area": "YA/YA01"}, "out_of_scope"),
        "string prefix": (street, {"area": "YA/YA0"}, "out_of_scope"),
        "another department": (cg, {"department_id": "zj"}, "not_your_department"),
    }
    for why, (who, query, code) in refused.items():
        for which in Board:
            with pytest.raises(Forbidden) as err:
                await seen(pool, now, which, who, **query)
            assert err.value.code == code, why


# --- urging, at the handler ----------------------------------------------------------------------

SUPERVISOR = Principal("sup-yingze", "迎泽督办", Role.SUPERVISOR, "YA/YA01")


async def urged(pool, case):
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE type = 'case.urged' AND key = $1 ORDER BY id", str(case)
    )
    return [
        (r["payload"]["payload"]["department_id"], r["payload"]["payload"]["count"]) for r in rows
    ]


async def test_urging_numbers_each_assignment_and_shows_on_the_board(pool):
    case, lead, co = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await record(
        pool, dispatched(case, lead, MON), dispatched(case, co, MON, department="zj", role="co")
    )
    now = at(0, 11, 30)
    first = await handlers.urge_case(
        pool, case, SUPERVISOR, note="请尽快报到", department_id=None, now=now
    )
    assert [(e.payload.department_id, e.payload.count) for e in first] == [("cg", 1), ("zj", 1)]
    await handlers.urge_case(pool, case, SUPERVISOR, note="再催", department_id="cg", now=now)
    assert await urged(pool, case) == [("cg", 1), ("zj", 1), ("cg", 2)]
    board = {i.department_id: (i.urge_count, i.last_urged_at) for i in await items(pool, now)}
    assert board == {"cg": (2, now), "zj": (1, now)}
    # on the timeline too, by the supervisor who urged
    rows = await pool.fetch(
        "SELECT actor, payload FROM case_events WHERE case_id = $1"
        " AND type = 'case.urged' ORDER BY seq",
        case,
    )
    assert [(r["actor"]["subject"], r["payload"]["note"]) for r in rows] == [
        ("sup-yingze", "请尽快报到"),
        ("sup-yingze", "请尽快报到"),
        ("sup-yingze", "再催"),
    ]

    # urgings of one case count in turn, however many arrive at once
    await asyncio.gather(
        *(
            handlers.urge_case(pool, case, SUPERVISOR, note="并发", department_id="zj", now=now)
            for _ in range(5)
        )
    )
    assert sorted(c for d, c in await urged(pool, case) if d == "zj") == [1, 2, 3, 4, 5, 6]

    # the department named must be on the case and still handling it; a closed case is done
    with pytest.raises(NotFound):
        await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id="gd", now=now)
    await record(
        pool,
        step(CaseSignedFor, case, lead, at(0, 12)),
        step(CaseResolved, case, lead, at(0, 12, 5), result="已清运", case_resolved=False),
    )
    with pytest.raises(Conflict) as err:
        await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id="cg", now=now)
    assert err.value.code == "no_open_assignment"
    only_zj = await handlers.urge_case(
        pool, case, SUPERVISOR, note="x", department_id=None, now=now
    )
    assert [(e.payload.department_id, e.payload.count) for e in only_zj] == [("zj", 7)]
    await record(pool, closed(case, at(0, 13)))
    with pytest.raises(Conflict) as err:
        await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id=None, now=now)
    assert err.value.code == "case_closed"
    with pytest.raises(Forbidden):
        outside = Principal("sup-ya02", "督办", Role.SUPERVISOR, "YA/YA02")
        await handlers.urge_case(pool, case, outside, note="x", department_id=None, now=now)
    with pytest.raises(NotFound):
        await handlers.urge_case(
            pool, uuid.uuid4(), SUPERVISOR, note="x", department_id=None, now=now
        )


# --- the feed behind the stream: nothing skipped when commits come out of order -----------------


async def drain(pool, f, after):
    got = []
    while True:
        batch = await handlers.feed_changes(pool, f, after, limit=3)
        got += [(r["change"], r["case_no"], r["clock"]) for r in batch.changes]
        after = batch.position
        if not batch.more:
            return got, after


async def test_a_change_that_commits_after_a_later_one_is_still_served_in_order(pool):
    everyone = BoardFilter(None)
    start = await handlers.feed_start(pool)
    one, one_a = uuid.uuid4(), uuid.uuid4()
    two, two_a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(one, one_a, MON), dispatched(two, two_a, MON, LIFT, "dt"))
    got, position = await drain(pool, everyone, start)
    # in the order they committed (and, within a transaction, were written)
    assert got[:2] == [("started", "YA-A", "sign_for"), ("started", "YA-A", "resolve")]
    assert sorted(got[2:]) == [
        ("started", "YA-L", "on_site"),
        ("started", "YA-L", "resolve"),
        ("started", "YA-L", "sign_for"),
    ]

    # T1 takes its sequence number first but commits last
    slow = await pool.acquire()
    tx = slow.transaction()
    await tx.start()
    await slow.execute(
        "UPDATE clocks SET due_at = due_at + interval '1 hour'"
        " WHERE assignment_id = $1 AND clock = 'resolve'",
        one_a,
    )
    await record(pool, step(CaseSignedFor, two, two_a, at(0, 9, 5), LIFT, "dt"))
    # the later change is committed, but is held back while T1 may still commit before it
    held, still = await drain(pool, everyone, position)
    assert held == [] and still == position
    await tx.commit()
    await pool.release(slow)
    got, position = await drain(pool, everyone, position)
    assert got == [("moved", "YA-A", "resolve"), ("stopped", "YA-L", "sign_for")]

    # a rolled-back change never appears
    conn = await pool.acquire()
    tx = conn.transaction()
    await tx.start()
    await conn.execute("UPDATE clocks SET state = 'stopped' WHERE assignment_id = $1", one_a)
    await tx.rollback()
    await pool.release(conn)
    await record(pool, step(CaseSignedFor, one, one_a, at(0, 9, 6)))
    got, _ = await drain(pool, everyone, position)
    assert got == [("stopped", "YA-A", "sign_for")]

    # a filter skips what it does not want, and the position still moves on past it
    lift_only = BoardFilter(("YA/YA02",))
    got, end = await drain(pool, lift_only, start)
    assert {no for _, no, _ in got} == {"YA-L"} and end > position
    everything, last = await drain(pool, everyone, start)
    assert len(everything) == 8 and last == end


@pytest.mark.parametrize("watching", [True, False], ids=["watching the tip", "polling"])
async def test_stopping_the_worker_ends_every_open_stream(pool, watching):
    """The app's lifespan stops BoardStreams: open streams end instead of hanging. Bound to
    the pool, one watch of the feed's tip wakes them; unbound, each polls."""
    streams = BoardStreams(poll_interval=0.05)
    if watching:
        streams.bind(lambda: pool)
    streams.start()
    start = await handlers.feed_start(pool)
    got: list[str] = []

    async def follow():
        async for message in streams.follow(pool, BoardFilter(None), start):
            got.append(message.event)

    readers = [asyncio.create_task(follow()) for _ in range(3)]

    async def all_open():
        return streams.open_streams == 3

    await eventually(all_open, timeout=10, interval=0.02, message="three streams open")
    await record(pool, dispatched(uuid.uuid4(), uuid.uuid4(), MON))

    async def heard():
        return got.count("started") == 6

    await eventually(heard, timeout=10, interval=0.02, message="each heard both clocks start")
    await asyncio.wait_for(streams.stop(), 5)
    await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert streams.open_streams == 0 and got.count("ready") == 3


async def test_the_feed_forgets_changes_older_than_its_retention(pool):
    start = await handlers.feed_start(pool)
    old, new = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(uuid.uuid4(), old, MON), dispatched(uuid.uuid4(), new, MON))
    await pool.execute(
        "UPDATE board_feed SET recorded_at = now() - interval '8 days' WHERE assignment_id = $1",
        old,
    )
    week_ago = datetime.now(UTC) - timedelta(days=7)
    assert await handlers.purge_feed(pool, week_ago, batch=1) == 2  # batch after batch
    got, _ = await drain(pool, BoardFilter(None), start)
    assert [change for change, _, _ in got] == ["started", "started"]  # the new one's
    assert await handlers.purge_feed(pool, week_ago) == 0


# --- the service: boards over HTTP, urging on the real broker, the live stream ----------------


@asynccontextmanager
async def served(app) -> AsyncIterator[tuple[uvicorn.Server, asyncio.Task, httpx.AsyncClient]]:
    """The app served by uvicorn on a loopback port (ASGITransport buffers whole responses,
    so a live stream needs a real server)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_config=None,
            timeout_graceful_shutdown=10,
        )
    )
    task = asyncio.create_task(server.serve())

    async def started():
        if task.done():
            task.result()  # raises what stopped it
        return server.started

    await eventually(started, timeout=60, interval=0.05, message="uvicorn started")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(30)
        ) as client:
            yield server, task, client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


class Service:
    def __init__(self, server, serving, client, pool, bootstrap):
        self.server, self.serving, self.client, self.pool = server, serving, client, pool
        self.bootstrap = bootstrap


@pytest.fixture(scope="module")
async def service(pg_server, kafka_server):
    dsn = await migrated_database(pg_server, "tracking")
    settings = Settings(
        environment="test",
        database_url=dsn,
        kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False,
        log_json=False,
        outbox_poll_interval_seconds=0.3,
        timer_poll_interval_seconds=0.2,
        board_stream_poll_seconds=0.1,
        board_stream_heartbeat_seconds=1,
    )
    await seed_demo(settings)
    pool = await db.create_pool(dsn, min_size=1, max_size=4, attempts=3)
    try:
        async with served(create_app(settings)) as (server, serving, client):
            yield Service(server, serving, client, pool, kafka_server.bootstrap)
    finally:
        await pool.close()


COMMAND, SUP_YINGZE, TAOYUAN = as_user("command"), as_user("sup-yingze"), as_user("taoyuan")
CG, WANGFANG = as_user("cg-duty"), as_user("wangfang")
EN = {"Accept-Language": "en"}


def error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]


async def test_bad_queries_are_422_and_filters_outside_the_scope_are_403(service):
    client = service.client
    for path in ("/overdue", "/near-overdue", "/boards/stream"):
        err = error(await client.get(path, params={"colour": "red"}, headers=COMMAND), 422)
        assert err["code"] == "unknown_parameter", path
        assert "未知的查询参数" in err["message"] and "colour" in err["message"]
        en = error(await client.get(path, params={"colour": "red"}, headers={**COMMAND, **EN}), 422)
        assert en["message"].startswith("unknown query parameter(s): colour")
        bad = {"clock": "lunch", "priority": "asap", "category": "e01", "area": "/"}
        for name, value in bad.items():
            err = error(await client.get(path, params={name: value}, headers=COMMAND), 422)
            assert err["code"] in ("validation_error", "invalid_category", "invalid_area"), name
            assert name in err["message"] or "分类" in err["message"] or "辖区" in err["message"]
        refused = {
            "area outside": (TAOYUAN, {"area": "YA/YA02"}, "out_of_scope"),
            "another department": (CG, {"department_id": "zj"}, "not_your_department"),
            "grid worker": (WANGFANG, {}, "role_not_allowed"),
        }
        for why, (who, query, code) in refused.items():
            assert error(await client.get(path, params=query, headers=who), 403)["code"] == code, (
                path,
                why,
            )
    for path in ("/overdue", "/near-overdue"):
        for query in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"last_event_id": "1-1"}):
            assert error(await client.get(path, params=query, headers=COMMAND), 422), query
    for query, headers in (
        ({"last_event_id": "yesterday"}, {}),
        ({}, {"Last-Event-ID": "1-x"}),
        ({"follow": "maybe"}, {}),
        ({"limit": 5}, {}),
    ):
        resp = await client.get("/boards/stream", params=query, headers={**COMMAND, **headers})
        assert error(resp, 422)["code"] in (
            "invalid_last_event_id",
            "validation_error",
            "unknown_parameter",
        ), query
    # well formed but never sent: beyond the feed's horizon (e.g. from a rebuilt database) —
    # the stream starts from now, as without an id, instead of staying silent
    for query, headers in (
        ({"last_event_id": "999999999999-1"}, {}),
        ({}, {"Last-Event-ID": "999999999999-1"}),
    ):
        resp = await client.get(
            "/boards/stream", params={**query, "follow": "false"}, headers={**COMMAND, **headers}
        )
        assert resp.status_code == 200, resp.text
        ready = next(
            json.loads(line[len("data: ") :])
            for line in resp.text.splitlines()
            if line.startswith("data: ")
        )
        txid, _ = ready["position"].split("-")
        assert int(txid) < 999999999999, ready


async def record_now(service, *events):
    await record(service.pool, *events)


async def test_the_boards_over_http_show_late_and_warned_clocks(service):
    client, department = service.client, f"dt-{uuid.uuid4().hex[:6]}"
    late, late_a = uuid.uuid4(), uuid.uuid4()
    warned, warned_a = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    await record_now(
        service,
        dispatched(late, late_a, MON, LIFT, department),
        # urgent clocks run in calendar time: sign for in 15 minutes, warned at 12
        dispatched(
            warned, warned_a, now - timedelta(minutes=13), {**LIFT, "case_no": "YA-W"}, department
        ),
    )

    near = (
        await client.get(
            "/near-overdue",
            params={"department_id": department, "clock": "sign_for"},
            headers=COMMAND,
        )
    ).json()["items"]
    assert [(i["case_no"], i["clock"]) for i in near] == [("YA-W", "sign_for")]
    assert 0 < near[0]["seconds_left"] <= 120 and near[0]["label"].startswith("剩余")
    assert near[0]["overdue_seconds"] == 0

    async def overdue():
        resp = await client.get("/overdue", params={"department_id": department}, headers=COMMAND)
        body = [i for i in resp.json()["items"] if i["case_no"] == "YA-L"]
        # the scheduler catches up with the old case's ladder: district reached
        return len(body) == 3 and all(i["escalation_level"] == "district" for i in body) and body

    items = await eventually(overdue, timeout=45, message="the old case's clocks escalated")
    assert [(i["case_no"], i["clock"], i["clock_label"]) for i in items] == [
        ("YA-L", "sign_for", "签收"),
        ("YA-L", "on_site", "到场"),
        ("YA-L", "resolve", "办结"),
    ]
    assert all(i["label"].startswith("超时 ") and i["overdue_seconds"] > 0 for i in items)
    assert {i["escalation_level_label"] for i in items} == {"区"}
    assert all(i["overdue_alerted_at"] and i["urge_count"] == 0 for i in items)

    # the same filters, narrowed by scope: 锦绣社区's lift case is not 桃园's business
    assert (
        error(
            await client.get("/near-overdue", params={"area": LIFT["area_path"]}, headers=TAOYUAN),
            403,
        )["code"]
        == "out_of_scope"
    )
    jinxiu = await client.get(
        "/overdue",
        params={"category": "C05", "priority": "urgent", "department_id": department},
        headers=as_user("jinxiu"),
    )
    assert [i["case_no"] for i in jinxiu.json()["items"]][:3] == ["YA-L"] * 3


async def test_a_retried_urging_with_its_idempotency_key_urges_once(service):
    client = service.client
    case, lead = uuid.uuid4(), uuid.uuid4()
    await record_now(service, dispatched(case, lead, MON, department="i-lead"))
    url, key = f"/cases/{case}/urge", {"Idempotency-Key": f"urge-{case}"}
    first = await client.post(url, json={"note": "请今天内报到"}, headers={**SUP_YINGZE, **key})
    assert first.status_code == 201, first.text
    again = await client.post(url, json={"note": "请今天内报到"}, headers={**SUP_YINGZE, **key})
    assert again.status_code == 200, again.text
    assert again.json() == first.json()  # the same urging, the same event, the same time
    other = await client.post(url, json={"note": "另一条督办"}, headers={**SUP_YINGZE, **key})
    assert error(other, 409)["code"] == "idempotency_key_reused"
    # another person's key is another key; without a key every call urges
    mine = await client.post(url, json={"note": "请今天内报到"}, headers={**TAOYUAN, **key})
    assert mine.status_code == 201 and mine.json()["urgings"][0]["count"] == 2
    assert (await client.post(url, json={"note": "x"}, headers=SUP_YINGZE)).json()["urgings"][0][
        "count"
    ] == 3
    count = await service.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'case.urged' AND key = $1", str(case)
    )
    assert count == 3


async def test_urging_over_http_publishes_one_event_per_open_assignment_and_counts(service):
    client = service.client
    case, lead, co = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await record_now(
        service,
        dispatched(case, lead, MON, department="u-lead"),
        dispatched(case, co, MON, department="u-co", role="co"),
    )
    url = f"/cases/{case}/urge"

    first = await client.post(url, json={"note": "请今天内报到"}, headers=SUP_YINGZE)
    assert first.status_code == 201, first.text
    assert [(u["department_id"], u["count"]) for u in first.json()["urgings"]] == [
        ("u-lead", 1),
        ("u-co", 1),
    ]
    again = await client.post(
        url, json={"note": "再次督办", "department_id": "u-lead"}, headers=TAOYUAN
    )  # the community over the case may urge too
    assert [(u["department_id"], u["count"]) for u in again.json()["urgings"]] == [("u-lead", 2)]
    board = (
        await client.get(
            "/overdue", params={"department_id": "u-lead", "clock": "sign_for"}, headers=COMMAND
        )
    ).json()["items"]
    assert [(i["urge_count"], i["case_id"]) for i in board] == [(2, str(case))]

    refused = {
        "empty note": ({"note": ""}, SUP_YINGZE, 422, "validation_error"),
        "unknown field": ({"note": "x", "level": "district"}, SUP_YINGZE, 422, "validation_error"),
        "not on the case": (
            {"note": "x", "department_id": "gd"},
            SUP_YINGZE,
            404,
            "department_not_on_case",
        ),
        "department": ({"note": "x"}, CG, 403, "role_not_allowed"),
        "outside": ({"note": "x"}, as_user("jinxiu"), 403, "out_of_scope"),
    }
    for why, (body, who, status, code) in refused.items():
        assert error(await client.post(url, json=body, headers=who), status)["code"] == code, why
    assert (
        error(
            await client.post(
                f"/cases/{uuid.uuid4()}/urge", json={"note": "x"}, headers=SUP_YINGZE
            ),
            404,
        )["code"]
        == "case_not_found"
    )
    await record_now(
        service,
        step(CaseSignedFor, case, lead, MON + timedelta(hours=1), department="u-lead"),
        step(
            CaseResolved,
            case,
            lead,
            MON + timedelta(hours=2),
            department="u-lead",
            result="已清运",
            case_resolved=False,
        ),
    )
    done = await client.post(url, json={"note": "x", "department_id": "u-lead"}, headers=SUP_YINGZE)
    assert error(done, 409)["code"] == "no_open_assignment"
    assert "没有正在办理的派单" in done.json()["error"]["message"]
    await record_now(service, closed(case, MON + timedelta(hours=3)))
    shut = await client.post(url, json={"note": "x"}, headers={**SUP_YINGZE, **EN})
    assert error(shut, 409)["code"] == "case_closed"
    assert "closed" in shut.json()["error"]["message"]

    # exactly the three urgings on the topic, once each, as the supervisor and community did
    async def published():
        return await service.pool.fetchval(
            "SELECT count(*) = 3 AND bool_and(sent_at IS NOT NULL) FROM outbox"
            " WHERE type = 'case.urged' AND key = $1",
            str(case),
        )

    await eventually(published, message="the urgings published")
    records = [
        json.loads(r.value)
        for r in await read_topic(service.bootstrap, Topics.TRACKING)
        if r.key == str(case).encode()
    ]
    urgings = [r for r in records if r["type"] == "case.urged"]
    assert len({u["event_id"] for u in urgings}) == len(urgings) == 3
    assert sorted(
        (u["payload"]["department_id"], u["payload"]["count"], u["actor"]["subject"])
        for u in urgings
    ) == [("u-co", 1, "sup-yingze"), ("u-lead", 1, "sup-yingze"), ("u-lead", 2, "taoyuan")]
    timeline = (await client.get(f"/cases/{case}/timeline", headers=COMMAND)).json()["events"]
    assert [(e["label"], e["payload"]["note"]) for e in timeline if e["type"] == "case.urged"] == [
        ("督办", "请今天内报到"),
        ("督办", "请今天内报到"),
        ("督办", "再次督办"),
    ]


async def test_a_paused_assignment_is_not_urged_and_a_blank_note_changes_nothing(service):
    client = service.client
    case, lead, co, request = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # minutes ago: no timer of theirs is due yet, the scheduler leaves them alone
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    await record_now(
        service,
        dispatched(case, lead, t0, department="p-lead"),
        dispatched(case, co, t0, department="p-co", role="co"),
        step(CaseSignedFor, case, lead, t0 + timedelta(minutes=1), department="p-lead"),
        step(
            CasePauseDecided,
            case,
            lead,
            t0 + timedelta(minutes=2),
            department="p-lead",
            request_id=request,
            kind=PauseKind.HANG,
            reason="需列入改造计划",
            approved=True,
        ),
    )
    url = f"/cases/{case}/urge"
    blank = await client.post(url, json={"note": "   "}, headers=SUP_YINGZE)
    assert error(blank, 422)["code"] == "validation_error"
    # 挂账: the lead's clock stands still — naming it is a conflict, in Chinese first
    held = await client.post(
        url, json={"note": "请尽快办理", "department_id": "p-lead"}, headers=SUP_YINGZE
    )
    assert error(held, 409)["code"] == "assignment_paused"
    assert held.json()["error"]["message"].startswith("派单已批准挂账/缓办")
    held_en = await client.post(
        url, json={"note": "x", "department_id": "p-lead"}, headers={**SUP_YINGZE, **EN}
    )
    assert "paused" in error(held_en, 409)["message"]
    # the whole case: only the co-handler still running is urged
    some = await client.post(url, json={"note": "请尽快办理"}, headers=SUP_YINGZE)
    assert some.status_code == 201, some.text
    assert [(u["department_id"], u["count"]) for u in some.json()["urgings"]] == [("p-co", 1)]
    urged = await service.pool.fetch(
        "SELECT payload->>'department_id' AS d FROM case_events"
        " WHERE case_id = $1 AND type = 'case.urged'",
        case,
    )
    assert [r["d"] for r in urged] == ["p-co"]  # the blank note and the paused lead: nothing
    await record_now(
        service,
        step(
            CaseResumed,
            case,
            lead,
            t0 + timedelta(minutes=3),
            department="p-lead",
            request_id=request,
            note="资金已落实",
        ),
    )
    back = await client.post(
        url, json={"note": "请尽快办理", "department_id": "p-lead"}, headers=SUP_YINGZE
    )
    assert [(u["department_id"], u["count"]) for u in back.json()["urgings"]] == [("p-lead", 1)]


# --- the live stream ------------------------------------------------------------------------------


async def _read(resp: httpx.Response, events: list[dict], comments: list[str]) -> None:
    event: dict = {}
    async for line in resp.aiter_lines():
        if not line:
            if event:
                events.append(event)
            event = {}
        elif line.startswith(":"):
            comments.append(line)
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[name] = json.loads(value) if name == "data" else value


@asynccontextmanager
async def listening(client, headers=COMMAND, last_event_id=None, **params):
    """Follow the stream in the background: (events, heartbeat comments, reader task)."""
    events: list[dict] = []
    comments: list[str] = []
    if last_event_id:
        headers = {**headers, "Last-Event-ID": last_event_id}
    async with client.stream(
        "GET",
        "/boards/stream",
        params=params,
        headers=headers,
        timeout=httpx.Timeout(30, read=None),
    ) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(_read(resp, events, comments))
        try:
            yield events, comments, reader
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def arrived(events, n, message):
    async def probe():
        return len(events) >= n

    await eventually(probe, timeout=20, interval=0.05, message=message)


def changes(events):
    return [(e["event"], e["data"]["clock"]) for e in events if e["event"] != "ready"]


async def test_the_stream_resumes_after_last_event_id_and_misses_nothing(service):
    client, pool = service.client, service.pool
    department = f"sse-{uuid.uuid4().hex[:6]}"
    case, assignment = uuid.uuid4(), uuid.uuid4()
    facts = {**LIFT, "case_no": "YA-S"}
    now = datetime.now(UTC)
    async with listening(client, department_id=department) as (events, comments, _):
        await arrived(events, 1, "ready")
        assert events[0]["event"] == "ready" and events[0]["id"] == events[0]["data"]["position"]
        await record_now(service, dispatched(case, assignment, now, facts, department))
        await client.post(
            f"/cases/{case}/urge", json={"note": "请尽快到场"}, headers=as_user("supervisor")
        )
        await arrived(events, 5, "three clocks started and an urging")
        assert sorted(changes(events)[:3]) == [
            ("started", "on_site"),
            ("started", "resolve"),
            ("started", "sign_for"),
        ]
        assert changes(events)[3] == ("urged", None)
        urging = events[4]["data"]
        assert (urging["count"], urging["note"], urging["case_no"]) == (1, "请尽快到场", "YA-S")
        assert urging["department_id"] == department and urging["urge_count"] == 1

        async def heartbeat():
            return comments

        await eventually(heartbeat, timeout=5, message="a heartbeat comment")
        last_seen = events[-1]["id"]

    # while nobody listens: the sign-for stops, another urging, the on-site clock stops
    await record_now(
        service,
        step(CaseSignedFor, case, assignment, now + timedelta(minutes=1), facts, department),
    )
    await client.post(
        f"/cases/{case}/urge", json={"note": "到场了吗"}, headers=as_user("supervisor")
    )
    await record_now(
        service,
        step(
            CaseProgressed,
            case,
            assignment,
            now + timedelta(minutes=2),
            facts,
            department,
            note="已到现场",
        ),
    )

    async with listening(client, last_event_id=last_seen, department_id=department) as (
        resumed,
        _,
        _,
    ):
        await arrived(resumed, 4, "the changes missed while away")
        assert resumed[0]["event"] == "ready" and resumed[0]["id"] == last_seen
        assert changes(resumed) == [
            ("stopped", "sign_for"),
            ("urged", None),
            ("stopped", "on_site"),
        ]
        assert resumed[2]["data"]["count"] == 2

        # a change that took its sequence number first but commits last is not passed over
        other, other_a = uuid.uuid4(), uuid.uuid4()
        await record_now(
            service, dispatched(other, other_a, now, {**facts, "case_no": "YA-T"}, department)
        )
        await arrived(resumed, 7, "the other case's clocks started")
        slow = await pool.acquire()
        tx = slow.transaction()
        await tx.start()
        await slow.execute(
            "UPDATE clocks SET due_at = due_at + interval '1 hour'"
            " WHERE assignment_id = $1 AND clock = 'resolve'",
            other_a,
        )
        await record_now(
            service,
            step(
                CaseResolved,
                case,
                assignment,
                now + timedelta(minutes=3),
                facts,
                department,
                result="已修复",
            ),
        )
        await asyncio.sleep(0.5)  # the stream polls every 0.1 s: the resolution is held back
        assert len(resumed) == 7
        await tx.commit()
        await pool.release(slow)
        await arrived(resumed, 9, "both, in commit order")
        assert [(e["event"], e["data"]["case_no"], e["data"]["clock"]) for e in resumed[7:]] == [
            ("moved", "YA-T", "resolve"),
            ("stopped", "YA-S", "resolve"),
        ]
        ids = [e["id"] for e in resumed[1:]]

    # nothing missed, nothing twice: every feed row of both assignments was sent exactly once
    rows = await pool.fetch(
        "SELECT txid::text || '-' || seq AS id FROM board_feed"
        " WHERE assignment_id = ANY($1::uuid[]) ORDER BY txid, seq",
        [assignment, other_a],
    )
    sent = [e["id"] for e in events[1:]] + ids
    assert sent == [r["id"] for r in rows]
    # a replay from the start without following ends once caught up, with the same ids
    replay = await client.get(
        "/boards/stream",
        headers=COMMAND,
        params={"department_id": department, "last_event_id": events[0]["id"], "follow": "false"},
    )
    replayed: list[dict] = []
    await _read_text(replay.text, replayed)
    assert [e["id"] for e in replayed[1:]] == sent


async def _read_text(text: str, events: list[dict]) -> None:
    class Lines:
        async def aiter_lines(self):
            for line in text.splitlines():
                yield line
            yield ""

    await _read(Lines(), events, [])  # type: ignore[arg-type]


async def test_the_stream_ends_when_its_token_expires(service):
    """A stream is authorised when it opens: it must not outlive the token (a revoked user
    would keep listening). It ends cleanly; the browser reconnects with a fresh token."""
    app = service.server.config.app
    started = time.monotonic()
    async with listening(service.client, headers=bearer(Role.DISTRICT, "YA", ttl=3)) as (
        events,
        _,
        reader,
    ):
        await arrived(events, 1, "ready")
        await asyncio.wait_for(reader, 15)  # ended by the server, heartbeats notwithstanding
    assert 1.5 < time.monotonic() - started < 12
    assert app.state.board_streams.open_streams == 0


async def test_shutting_the_server_down_ends_its_open_streams_cleanly(service):
    """Last in the module: it stops the module's server. (A second replica would do, but it
    would join the consumer group, and leaving the group half-rebalanced slows the next
    module's start on the shared broker.)"""
    app = service.server.config.app
    async with listening(service.client) as (events, _, reader):
        await arrived(events, 1, "ready")
        assert app.state.board_streams.open_streams == 1
        service.server.should_exit = True  # what SIGTERM does
        await asyncio.wait_for(reader, 10)  # the stream ended, not cut off at the timeout
    await asyncio.wait_for(asyncio.shield(service.serving), 30)  # the server stopped too
    assert app.state.board_streams.open_streams == 0
