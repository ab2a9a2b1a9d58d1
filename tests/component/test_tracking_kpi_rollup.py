"""Tracking's kept KPI sums (migration 0008) against the figures computed from the facts.

A random mix of case events — dispatches (lead and co), sign-fors on time and late,
rejections, transfers, extensions, pauses and resumes, resolutions, rework, ratings (some
rated twice), closings, merges, a case whose area is corrected, events out of order and
delivered twice — is recorded through the real event handler, one transaction each as the
consumer does it, on real PostgreSQL. Then every KPI table the API serves (per department, per
area at each level, for whole months, for periods with part-days at both ends, scoped to a
street and to a department) must equal the fact-based computation (``domain.kpi`` over
``repository.kpi.assignment_facts``, the definition the sums stand for), and the sums kept
event by event must equal the sums rebuilt from the facts afresh.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.tracking import consumers
from services.tracking.config import Settings
from services.tracking.demo import seed_demo
from services.tracking.domain.kpi import Period, group_kpis
from services.tracking.handlers import kpi
from services.tracking.repository import kpi as kpi_repo
from shared import db, deferred
from shared.auth import Principal, Role
from shared.contract import (
    CaseClosed,
    CaseDispatched,
    CaseExtensionDecided,
    CaseMerged,
    CasePauseDecided,
    CasePhotoAdded,
    CaseRated,
    CaseRejected,
    CaseResolved,
    CaseResumed,
    CaseReworkRequested,
    CaseSignedFor,
    CaseTransferred,
    PauseKind,
    Priority,
    new_event,
)
from tests.conftest import migrated_database

CN = ZoneInfo("Asia/Shanghai")
DEPARTMENTS = {"cg": "城管局", "zj": "住建局", "xf": "消防大队", "sw": "水务局"}
GRIDS = [f"YA/YA0{s}/YA0{s}0{c}/YA0{s}0{c}-0{g}" for s in (1, 2) for c in (1, 2) for g in (1, 2)]
START = datetime(2026, 3, 20, 8, tzinfo=CN)  # cases around the end of March and into April


class Story:
    """One case's events in the order they happened (the handler may hear them otherwise)."""

    def __init__(self, rnd: random.Random, n: int) -> None:
        self.rnd = rnd
        self.id = uuid.uuid4()
        self.facts = {
            "case_no": f"YA-R{n:04d}",
            "area_path": rnd.choice(GRIDS),
            "category": rnd.choice(["E0101", "C0501"]),
            "priority": rnd.choice(list(Priority)),
        }
        self.at = START + timedelta(hours=rnd.uniform(0, 24 * 14))
        self.events: list = []

    def later(self, hours: float = 6) -> datetime:
        self.at += timedelta(hours=self.rnd.uniform(0.1, hours))
        return self.at

    def add(self, producer: str, payload) -> None:
        self.events.append(
            new_event(payload, case_id=self.id, producer=producer, occurred_at=self.later())
        )

    def act(self, cls, a: uuid.UUID, dept: str, **fields) -> None:
        self.add("dispatch", cls(**self.facts, assignment_id=a, department_id=dept, **fields))

    def dispatch(self, dept: str, role: str = "lead", **fields) -> uuid.UUID:
        a = uuid.uuid4()
        self.add(
            "dispatch",
            CaseDispatched(
                **self.facts,
                assignment_id=a,
                department_id=dept,
                department_name=DEPARTMENTS[dept],
                role=role,
                rule_id=1,
                reason="test",
                description="楼道堆物",
                **fields,
            ),
        )
        return a

    def handle(self, dept: str, role: str = "lead", **fields) -> None:
        """One department's part, from dispatch to wherever it stops."""
        rnd = self.rnd
        a = self.dispatch(dept, role, **fields)
        fate = rnd.random()
        if fate < 0.1:
            self.act(CaseRejected, a, dept, reason="不属于本部门")
            self.handle(rnd.choice([d for d in DEPARTMENTS if d != dept]))
            return
        if fate < 0.18:
            to = rnd.choice([d for d in DEPARTMENTS if d != dept])
            self.act(CaseTransferred, a, dept, to_department_id=to, reason="转办")
            self.handle(to, basis="transfer")
            return
        if fate < 0.28:
            return  # never signed for
        self.act(CaseSignedFor, a, dept)
        if rnd.random() < 0.25:
            self.act(
                CaseExtensionDecided,
                a,
                dept,
                request_id=uuid.uuid4(),
                approved=rnd.random() < 0.7,
                days=rnd.choice([1, 2]),
            )
        if rnd.random() < 0.2:
            pause = uuid.uuid4()
            self.act(
                CasePauseDecided,
                a,
                dept,
                request_id=pause,
                kind=PauseKind.HANG,
                reason="待表决",
                approved=True,
            )
            if rnd.random() < 0.6:
                self.act(CaseResumed, a, dept, request_id=pause)
        if rnd.random() < 0.2:
            return  # never resolved
        self.act(CaseResolved, a, dept, result="已处理", case_resolved=role == "lead")
        if role == "lead" and rnd.random() < 0.2:
            self.add(
                "intake",
                CaseReworkRequested(
                    **self.facts, reason="未整改到位", departments=rnd.choice([[dept], []])
                ),
            )
            self.handle(dept, basis="rework", rework=True)

    def finish(self) -> None:
        rnd = self.rnd
        for _ in range(rnd.choice([0, 1, 1, 2])):
            self.add("intake", CaseRated(**self.facts, score=rnd.randint(1, 5), channel="link"))
        if rnd.random() < 0.15:  # the area was corrected: facts come from the newest event,
            self.facts = {**self.facts, "area_path": rnd.choice(GRIDS)}  # here a photo's
            self.add("intake", CasePhotoAdded(**self.facts, photo_id=uuid.uuid4(), kind="after"))
        ending = rnd.random()
        if ending < 0.5:
            self.add("intake", CaseClosed(**self.facts, note="核查通过"))
        elif ending < 0.6:
            self.add(
                "intake",
                CaseMerged(**self.facts, primary_case_id=uuid.uuid4(), primary_case_no="YA-P0001"),
            )


def stories(seed: int, count: int) -> list[Story]:
    rnd = random.Random(seed)
    out = []
    for n in range(count):
        s = Story(rnd, n)
        s.handle(rnd.choice(list(DEPARTMENTS)))
        if rnd.random() < 0.2:
            s.handle(rnd.choice(list(DEPARTMENTS)), role="co")
        s.finish()
        out.append(s)
    return out


def delivery_order(rnd: random.Random, all_stories: list[Story]) -> list:
    """Each case's events mostly in order, some swapped with the next, some twice; cases
    interleaved."""
    queues = []
    for s in all_stories:
        events = list(s.events)
        for i in range(len(events) - 1):
            if rnd.random() < 0.08:
                events[i], events[i + 1] = events[i + 1], events[i]
        events += [e for e in events if rnd.random() < 0.05]
        queues.append(events)
    out = []
    while queues:
        q = rnd.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


PERIODS = [
    Period(datetime(2026, 3, 1, tzinfo=CN), datetime(2026, 4, 1, tzinfo=CN)),  # a month
    Period(datetime(2026, 4, 1, tzinfo=CN), datetime(2026, 5, 1, tzinfo=CN)),
    Period(datetime(2026, 3, 1, tzinfo=CN), datetime(2026, 5, 1, tzinfo=CN)),  # two
    Period(datetime(2026, 3, 27, tzinfo=CN), datetime(2026, 4, 3, tzinfo=CN)),  # days
    # part-days at both ends, across the month's end, in another zone
    Period(
        datetime(2026, 3, 26, 13, 17, tzinfo=CN),
        datetime(2026, 4, 4, 1, 30, tzinfo=ZoneInfo("UTC")),
    ),
    Period(datetime(2026, 3, 28, 9, tzinfo=CN), datetime(2026, 3, 28, 15, tzinfo=CN)),
    # most of two months: each month's sum less the days outside the period
    Period(datetime(2026, 3, 27, tzinfo=CN), datetime(2026, 4, 29, tzinfo=CN)),
    Period(datetime(2026, 3, 26, 10, tzinfo=CN), datetime(2026, 4, 28, 18, tzinfo=CN)),
]
WHO = [
    Principal("t", "区", Role.DISTRICT, "YA"),
    Principal("t", "街道", Role.STREET, "YA/YA02"),
    Principal("t", "部门", Role.DEPARTMENT, "YA", department_id="zj"),
]


async def by_facts(pool, who: Principal, period: Period, now: datetime, key) -> dict:
    """The figures as domain.kpi defines them, from every fact of the period."""
    async with pool.acquire() as conn:
        rows = await kpi_repo.assignment_facts(
            conn,
            start=period.start,
            end=period.end,
            now=now,
            area_roots=None if who.role is Role.DEPARTMENT else who.areas,
            department_id=who.department_id,
        )
    return {
        str(k): v
        for k, v in group_kpis(
            [r.facts for r in rows], period, now, lambda f: key(f.department_id, f.area_path)
        ).items()
    }


async def kept_sums(conn) -> list:
    return (
        [
            tuple(r)
            for r in await conn.fetch(
                "SELECT day, department_id, area_path, received, signed_for_on_time, resolved,"
                " resolved_on_time, reworked, rejections, extensions, rated, satisfied, score_total,"
                " handling FROM kpi_daily WHERE received <> 0 ORDER BY 1, 2, 3"
            )
        ]
        + [
            tuple(r)
            for r in await conn.fetch(
                "SELECT month, department_id, area_path, received, resolved, rated, score_total,"
                " handling FROM kpi_monthly WHERE received <> 0 ORDER BY 1, 2, 3"
            )
        ]
        + [
            tuple(r)
            for r in await conn.fetch(
                "SELECT assignment_id, day, area_path, open, received, signed_for_on_time, resolved,"
                " resolved_on_time, reworked, rejections, extensions, rated, satisfied,"
                " score_total, handling FROM kpi_assignments ORDER BY 1"
            )
        ]
    )


@pytest.mark.parametrize("seed", [14, 2026])
async def test_kept_sums_equal_the_figures_from_the_facts(pg_server, pool_factory, seed):
    dsn = await migrated_database(pg_server, "tracking")
    await seed_demo(Settings(environment="test", database_url=dsn, log_json=False))
    rnd = random.Random(seed)
    all_stories = stories(seed, 120)
    events = delivery_order(rnd, all_stories)
    pool = await pool_factory(dsn)
    async with pool.acquire() as conn:
        for e in events:  # one transaction per event, as the consumer records it
            async with conn.transaction():
                await consumers.record(conn, e)
        assert await conn.fetchval("SELECT count(*) FROM kpi_assignments") > 150
        moved = await conn.fetchval(
            "SELECT count(DISTINCT k.case_id) FROM kpi_assignments k JOIN cases c USING (case_id)"
            " JOIN case_events e ON e.case_id = c.case_id AND e.type = 'case.dispatched'"
            " WHERE e.payload->>'area_path' <> c.area_path"
        )
        assert moved > 0  # some cases' area changed after their dispatch
        kinds = {r[0] for r in await conn.fetch("SELECT DISTINCT type FROM case_events")}
        assert {
            "case.rejected",
            "case.transferred",
            "case.pause_decided",
            "case.resumed",
            "case.rework_requested",
            "case.rated",
            "case.closed",
            "case.merged",
            "case.extension_decided",
        } <= kinds

    now = datetime.now(CN)
    assert any(sign < 0 for _, _, sign in kpi.split_period(PERIODS[-1], now.date()).days)
    compared = 0
    for who in WHO:
        for period in PERIODS:
            table = await kpi.department_kpis(pool, who, period, area=None, now=now)
            want = await by_facts(pool, who, period, now, lambda d, _: d)
            assert {u.key: u.kpi for u in table.units} == want, (who.role, period)
            assert [u.key for u in table.units] == sorted(want)
            names = {u.key: u.name for u in table.units}
            assert all(names[k] == DEPARTMENTS[k] for k in names)
            for level, depth in kpi.LEVELS.items():
                if who.role is Role.STREET and depth < 2:
                    continue
                table = await kpi.area_kpis(pool, who, period, area=None, level=level, now=now)
                want = await by_facts(
                    pool, who, period, now, lambda _, p, n=depth: "/".join(p.split("/")[:n])
                )
                assert {u.key: u.kpi for u in table.units} == want, (who.role, period, level)
                compared += len(want)
    assert compared > 100

    # The sums kept event by event are those rebuilt from the facts afresh (the deltas not
    # folded yet folded in first; folds ran along the way).
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM kpi_daily") > 0
        async with conn.transaction():
            await kpi_repo.fold(conn)
        assert await conn.fetchval("SELECT count(*) FROM kpi_deltas") == 0
        kept = await kept_sums(conn)
        async with conn.transaction():
            await kpi_repo.rebuild(conn)
        assert await kept_sums(conn) == kept


async def test_concurrent_batches_keep_the_sums_right(pg_server, pool_factory):
    """Four consumers at once, each recording its own cases' events in batches of up to 20
    events per transaction (as the batching consumer does): deltas from all of them, folds by
    whichever gets the lock, and the sums equal those rebuilt from the facts."""
    dsn = await migrated_database(pg_server, "tracking")
    await seed_demo(Settings(environment="test", database_url=dsn, log_json=False))
    all_stories = stories(7, 160)
    pool = await pool_factory(dsn)

    async def consume(mine: list[Story], seed: int) -> None:
        events = delivery_order(random.Random(seed), mine)
        r = random.Random(seed)
        async with pool.acquire() as conn:
            while events:
                size = r.randint(1, 20)
                batch, events = events[:size], events[size:]
                async with conn.transaction(), deferred.batch(conn):  # as the consumer
                    for e in batch:
                        await consumers.record(conn, e)

    await asyncio.gather(*(consume(all_stories[i::4], i) for i in range(4)))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM kpi_daily") > 0  # folds ran
        async with conn.transaction():
            await kpi_repo.fold(conn)
        kept = await kept_sums(conn)
        async with conn.transaction():
            await kpi_repo.rebuild(conn)
        assert await kept_sums(conn) == kept


async def test_overdue_now_is_read_from_the_open_assignments_only(pg_server, pool_factory):
    """A case nobody signed for is overdue now; once resolved and closed it leaves the open
    set and the figures."""
    dsn = await migrated_database(pg_server, "tracking")
    await seed_demo(Settings(environment="test", database_url=dsn, log_json=False))
    s = Story(random.Random(1), 1)
    s.at = datetime(2026, 3, 10, 9, tzinfo=CN)
    a = s.dispatch("cg")
    pool = await pool_factory(dsn)
    month = Period(datetime(2026, 3, 1, tzinfo=CN), datetime(2026, 4, 1, tzinfo=CN))
    who = Principal("t", "区", Role.DISTRICT, "YA")

    async def record(*events) -> None:
        async with pool.acquire() as conn:
            for e in events:
                async with conn.transaction():
                    await consumers.record(conn, e)

    await record(*s.events)
    table = await kpi.department_kpis(pool, who, month, area=None, now=datetime.now(CN))
    assert (table.total.received, table.total.overdue_now) == (1, 1)
    assert await db_open(dsn) == [True]
    s.events.clear()
    s.act(CaseSignedFor, a, "cg")
    s.act(CaseResolved, a, "cg", result="已处理")
    s.add("intake", CaseClosed(**s.facts, note="核查通过"))
    await record(*s.events)
    table = await kpi.department_kpis(pool, who, month, area=None, now=datetime.now(CN))
    assert (table.total.received, table.total.resolved, table.total.overdue_now) == (1, 1, 0)
    assert await db_open(dsn) == [False]


async def db_open(dsn: str) -> list[bool]:
    conn = await db.connect_once(dsn)
    try:
        return [r[0] for r in await conn.fetch("SELECT open FROM kpi_assignments")]
    finally:
        await conn.close()
