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
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.tracking import handlers
from services.tracking.board import Board
from services.tracking.config import Settings
from services.tracking.demo import seed_demo
from services.tracking.handlers.boards import BoardQuery
from services.tracking.repository.boards import BoardFilter
from shared.auth import Forbidden, Principal, Role
from shared.errors import Conflict, NotFound
from shared.events import (
    CaseClosed,
    CaseDispatched,
    CaseProgressed,
    CaseRejected,
    CaseResolved,
    CaseSignedFor,
    Priority,
    new_event,
)
from tests.conftest import migrated_database

CN = ZoneInfo("Asia/Shanghai")


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """Day 0 is Monday 2026-03-02."""
    return datetime(2026, 3, 2 + day, hh, mm, tzinfo=CN)


MON = at(0, 9)
# 市容环境/乱堆物料, normal, 桃园社区 (YA/YA01/YA0101)
HERE = {"case_no": "YA-A", "area_path": "YA/YA01/YA0101/YA0101-01", "category": "E0101",
        "priority": Priority.NORMAL}
# 电梯困人, urgent, 锦绣社区 (YA/YA02/YA0201)
LIFT = {"case_no": "YA-L", "area_path": "YA/YA02/YA0201/YA0201-02", "category": "C0501",
        "priority": Priority.URGENT}
# 市容环境/楼道杂物, minor, 迎泽街道's second community (YA/YA01/YA0102)
STAIRS = {"case_no": "YA-M", "area_path": "YA/YA01/YA0102/YA0102-01", "category": "E0103",
          "priority": Priority.MINOR}

DISTRICT = Principal(subject="command", name="区指挥中心", role=Role.DISTRICT, area="YA")


def dispatched(case, assignment, when, facts=HERE, department="cg", role="lead"):
    return new_event(CaseDispatched(**facts, assignment_id=assignment, department_id=department,
                                    department_name=f"部门{department}", role=role, rule_id=1,
                                    reason="test", description="test"),
                     case_id=case, producer="dispatch", occurred_at=when)


def step(cls, case, assignment, when, facts=HERE, department="cg", **fields):
    return new_event(cls(**facts, assignment_id=assignment, department_id=department, **fields),
                     case_id=case, producer="dispatch", occurred_at=when)


def closed(case, when, facts=HERE):
    return new_event(CaseClosed(**facts, note="核查通过"), case_id=case, producer="intake",
                     occurred_at=when)


@pytest.fixture
async def pool(pg_server, pool_factory):
    dsn = await migrated_database(pg_server, "tracking")
    await seed_demo(Settings(environment="test", database_url=dsn))
    return await pool_factory(dsn)


async def record(pool, *events):
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await handlers.record_case_event(conn, event)


async def fire(pool, now):
    async with pool.acquire() as conn:
        while (await handlers.fire_due_timers(conn, now=now, limit=100)).claimed:
            pass


async def items(pool, now, which=Board.OVERDUE, who=DISTRICT, limit=100, offset=0, **query):
    return await handlers.read_board(pool, who, which, BoardQuery(**query), now=now,
                                     limit=limit, offset=offset)


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
        ("YA-L", "sign_for"), ("YA-L", "on_site"), ("YA-A", "sign_for")]
    assert await seen(pool, at(0, 21, 30)) == [
        ("YA-L", "sign_for"), ("YA-L", "on_site"), ("YA-A", "sign_for"), ("YA-L", "resolve")]

    # before the scheduler got to them: late, but no alert or escalation yet
    [first, *_] = await items(pool, at(0, 11, 30))
    assert (first.overdue_alerted_at, first.escalation_level, first.urge_count) == (None, None, 0)
    assert first.late_by(at(0, 11, 30)) == timedelta(hours=2, minutes=15)
    # the escalation level each clock reached, as the ladder fired
    await fire(pool, at(0, 11, 30))
    levels = {(i.case_no, i.clock.value): (i.escalation_level, i.escalation_step)
              for i in await items(pool, at(0, 11, 30))}
    assert levels == {("YA-L", "sign_for"): ("district", 2),   # 09:15 +0, +30, +120 min
                      ("YA-L", "on_site"): ("district", 2),    # 09:30 … 11:30
                      ("YA-A", "sign_for"): ("community", 0)}  # 11:00 +0
    [lift_sign_for, *_] = await items(pool, at(0, 11, 30))
    assert lift_sign_for.overdue_alerted_at == at(0, 11, 30)  # when the scheduler fired it

    # doing the step takes a clock off the board; closing the case takes them all
    await record(pool, step(CaseSignedFor, here, here_a, at(0, 11, 40)),
                 step(CaseProgressed, lift, lift_a, at(0, 11, 41), LIFT, "dt", note="已到现场"))
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
        await record(pool, dispatched(case, assignment, MON + timedelta(minutes=minutes),
                                      {**HERE, "case_no": no}))
    # sign-for due 11:00, 11:10, 11:05; warned at 80 %: 10:36, 10:46, 10:42
    assert await seen(pool, at(0, 10, 35), Board.NEAR_OVERDUE) == []
    assert await seen(pool, at(0, 10, 40), Board.NEAR_OVERDUE) == [("YA-1", "sign_for")]
    near = await items(pool, at(0, 10, 50), Board.NEAR_OVERDUE)
    assert [(i.case_no, i.clock.value) for i in near] == [
        ("YA-1", "sign_for"), ("YA-3", "sign_for"), ("YA-2", "sign_for")]
    assert [i.left(at(0, 10, 50)) for i in near] == [
        timedelta(minutes=10), timedelta(minutes=15), timedelta(minutes=20)]
    # once due it moves to the overdue board; signed for, it leaves both
    assert await seen(pool, at(0, 11, 2), Board.NEAR_OVERDUE) == [
        ("YA-3", "sign_for"), ("YA-2", "sign_for")]
    assert await seen(pool, at(0, 11, 2)) == [("YA-1", "sign_for")]
    case, assignment = cases["YA-3"]
    await record(pool, step(CaseSignedFor, case, assignment, at(0, 11, 3),
                            {**HERE, "case_no": "YA-3"}))
    assert await seen(pool, at(0, 11, 4), Board.NEAR_OVERDUE) == [("YA-2", "sign_for")]


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
    assert everything == [("YA-L", "sign_for"), ("YA-L", "on_site"), ("YA-A", "sign_for"),
                          ("YA-L", "resolve"), ("YA-M", "sign_for")]
    # equally late: the most urgent first (urgent < normal < minor), at one deadline
    cases = {
        # area subtree, by whole path segments
        (("area", "YA/YA01"),): [("YA-A", "sign_for"), ("YA-M", "sign_for")],
        (("area", "YA/YA01/YA0101"),): [("YA-A", "sign_for")],
        (("area", "YA/YA0"),): [],
        (("area", "YA/YA02/YA0201/YA0201-02"),): [
            ("YA-L", "sign_for"), ("YA-L", "on_site"), ("YA-L", "resolve")],
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
        (("clock", "sign_for"),): [("YA-L", "sign_for"), ("YA-A", "sign_for"), ("YA-M", "sign_for")],
        (("area", "YA/YA01"), ("clock", "sign_for"), ("priority", "normal"),
         ("category", "E01"), ("department_id", "cg")): [("YA-A", "sign_for")],
        (("area", "YA/YA01"), ("priority", "urgent")): [],
    }
    for query, expected in cases.items():
        assert await seen(pool, now, **dict(query)) == expected, query
    # pages agree with the whole board
    pages = [await items(pool, now, limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [(i.case_no, i.clock.value) for page in pages for i in page] == everything
    assert [len(p) for p in pages] == [2, 2, 1, 0]


async def test_each_reader_sees_only_their_part_and_a_filter_outside_it_is_refused(pool,
                                                                                    three_cases):
    now = three_cases
    community = Principal("taoyuan", "桃园社区", Role.COMMUNITY, "YA/YA01/YA0101")
    street = Principal("yingze", "迎泽街道", Role.STREET, "YA/YA01")
    supervisor = Principal("sup-ya02", "督办", Role.SUPERVISOR, "YA/YA02")
    cg = Principal("cg-duty", "城管值班", Role.DEPARTMENT, "YA", department_id="cg")
    for who, expected in ((community, {"YA-A"}), (street, {"YA-A", "YA-M"}),
                          (supervisor, {"YA-L"}), (cg, {"YA-A"}),
                          (DISTRICT, {"YA-A", "YA-M", "YA-L"})):
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
    rows = await pool.fetch("SELECT payload FROM outbox WHERE type = 'case.urged' AND key = $1"
                            " ORDER BY id", str(case))
    return [(r["payload"]["payload"]["department_id"], r["payload"]["payload"]["count"])
            for r in rows]


async def test_urging_numbers_each_assignment_and_shows_on_the_board(pool):
    case, lead, co = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(case, lead, MON), dispatched(case, co, MON, department="zj",
                                                               role="co"))
    now = at(0, 11, 30)
    first = await handlers.urge_case(pool, case, SUPERVISOR, note="请尽快报到",
                                     department_id=None, now=now)
    assert [(e.payload.department_id, e.payload.count) for e in first] == [("cg", 1), ("zj", 1)]
    await handlers.urge_case(pool, case, SUPERVISOR, note="再催", department_id="cg", now=now)
    assert await urged(pool, case) == [("cg", 1), ("zj", 1), ("cg", 2)]
    board = {i.department_id: (i.urge_count, i.last_urged_at) for i in await items(pool, now)}
    assert board == {"cg": (2, now), "zj": (1, now)}
    # on the timeline too, by the supervisor who urged
    rows = await pool.fetch("SELECT actor, payload FROM case_events WHERE case_id = $1"
                            " AND type = 'case.urged' ORDER BY seq", case)
    assert [(r["actor"]["subject"], r["payload"]["note"]) for r in rows] == [
        ("sup-yingze", "请尽快报到"), ("sup-yingze", "请尽快报到"), ("sup-yingze", "再催")]

    # urgings of one case count in turn, however many arrive at once
    await asyncio.gather(*(handlers.urge_case(pool, case, SUPERVISOR, note="并发",
                                              department_id="zj", now=now) for _ in range(5)))
    assert sorted(c for d, c in await urged(pool, case) if d == "zj") == [1, 2, 3, 4, 5, 6]

    # the department named must be on the case and still handling it; a closed case is done
    with pytest.raises(NotFound):
        await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id="gd", now=now)
    await record(pool, step(CaseSignedFor, case, lead, at(0, 12)),
                 step(CaseResolved, case, lead, at(0, 12, 5), result="已清运",
                      case_resolved=False))
    with pytest.raises(Conflict) as err:
        await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id="cg", now=now)
    assert err.value.code == "no_open_assignment"
    only_zj = await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id=None,
                                       now=now)
    assert [(e.payload.department_id, e.payload.count) for e in only_zj] == [("zj", 7)]
    await record(pool, closed(case, at(0, 13)))
    with pytest.raises(Conflict) as err:
        await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id=None, now=now)
    assert err.value.code == "case_closed"
    with pytest.raises(Forbidden):
        outside = Principal("sup-ya02", "督办", Role.SUPERVISOR, "YA/YA02")
        await handlers.urge_case(pool, case, outside, note="x", department_id=None, now=now)
    with pytest.raises(NotFound):
        await handlers.urge_case(pool, uuid.uuid4(), SUPERVISOR, note="x", department_id=None,
                                 now=now)


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
    assert sorted(got[2:]) == [("started", "YA-L", "on_site"), ("started", "YA-L", "resolve"),
                               ("started", "YA-L", "sign_for")]

    # T1 takes its sequence number first but commits last
    slow = await pool.acquire()
    tx = slow.transaction()
    await tx.start()
    await slow.execute("UPDATE clocks SET due_at = due_at + interval '1 hour'"
                       " WHERE assignment_id = $1 AND clock = 'resolve'", one_a)
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
