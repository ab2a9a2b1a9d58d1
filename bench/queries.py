"""Board, inbox and KPI queries as cases grow (issue 14): 10,000, 100,000 and 1,000,000 cases
seeded set-based into tracking's, dispatch's and notify's databases on the real embedded
PostgreSQL (the real migrations), then the real handler functions the API calls timed at each
size — median and p95 — and, at the largest size, the plans PostgreSQL ran (auto_explain).

The district's history: half a year of cases over 4 streets × 4 communities × 4 grids, 20
departments, 12 categories and three priorities. Nearly all of it is closed (resolved, a few
rejected; 5 % extended, 5 % sent back once, 60 % rated); a fixed open set of 3,000 cases of
the last days stays the same at every size: 300 overdue at sign-for (a third of them
escalated), 300 warned before their sign-for deadline, 2,400 signed for and running to their
resolution deadline (some of those warned). Sizes grow by adding closed history, so a flat
query is one whose cost follows what is open (or what is asked for), not what was ever done.

Run with ``python -m bench.queries [--sizes 10000,100000,1000000] [--runs 15]``; ``make bench``
runs it after the other figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from cryptography.fernet import Fernet

from bench import embedded_postgres
from services.dispatch import handlers as dispatch_handlers
from services.dispatch.domain import AssignmentState
from services.notify import handlers as notify_handlers
from services.notify.sealing import SecretBox
from services.tracking.domain.board import Board
from services.tracking.demo import DEMO_THRESHOLDS
from services.tracking.handlers import kpi
from services.tracking.handlers.boards import BoardQuery, read_board
from services.tracking.handlers.integrity import integrity
from services.tracking.domain.integrity import Thresholds
from services.tracking.repository import kpi as kpi_repo
from services.tracking.domain.kpi import Period, group_kpis
from shared import db, migrations
from shared.auth import Principal, Role
from shared.contract import Priority
from shared.service import migration_sources

ROOT = Path(__file__).resolve().parent.parent
CN = ZoneInfo("Asia/Shanghai")
OPEN = 3000  # the open cases, the same at every size
SIZES = (10_000, 100_000, 1_000_000)

# --- seeding ------------------------------------------------------------------------------------
# Case i (1..N): cases 1..OPEN are the open set, the rest closed history. $1 = first i of the
# batch, $2 = last, $3 = now. A closed case's dispatch falls anywhere in the 181 days before
# the last ten (a hash of i spreads each batch over the whole half year), so all it did is past.
_CASE = """
  p AS (SELECT i,
         1 + i % 4 AS s, 1 + (i / 4) % 4 AS cm, 1 + (i / 16) % 4 AS g,
         'd' || (abs(hashint4(i + 7)) % 20) AS dept,
         'E0' || (1 + abs(hashint4(i + 11)) % 4) || '0' || (1 + abs(hashint4(i + 13)) % 3) AS cat,
         CASE i % 10 WHEN 0 THEN 'urgent' WHEN 1 THEN 'minor' ELSE 'normal' END AS prio,
         CASE WHEN i <= {open} THEN $3::timestamptz - i * interval '3 minutes'
              ELSE $3::timestamptz - interval '191 days'
                   + (abs(hashint4(i)) % 15638400) * interval '1 second' END AS t
       FROM generate_series($1::int, $2::int) i)
"""

_TRACKING = [
    """WITH {case}
    INSERT INTO cases (case_id, case_no, area_path, category, priority, status, updated_at)
    SELECT md5('c' || i)::uuid, 'YA-' || i, format('YA/YA0%s/YA0%s0%s/YA0%s0%s-0%s', s, s, cm, s, cm, g),
           cat, prio, CASE WHEN i > {open} THEN 'closed'
                           WHEN i % 10 < 2 THEN 'dispatched' ELSE 'signed_for' END, t
    FROM p""",
    # closed: 97 % resolved (signed for within 3 h, resolved within 6 days), 3 % rejected
    """WITH {case}
    INSERT INTO assignments (assignment_id, case_id, department_id, department_name, role,
                             state, dispatched_at, signed_for_at, resolved_at, ended_at, ended_by,
                             policy)
    SELECT md5('a' || i)::uuid, md5('c' || i)::uuid, dept, '部门' || dept, 'lead',
           CASE WHEN i <= {open} AND i % 10 < 2 THEN 'dispatched'
                WHEN i <= {open} OR i % 100 < 3 THEN 'signed_for' ELSE 'resolved' END,
           t, CASE WHEN i > {open} OR i % 10 >= 2 THEN t + (i % 180) * interval '1 minute' END,
           CASE WHEN i > {open} AND i % 100 >= 3 THEN t + (i % 144) * interval '1 hour' END,
           CASE WHEN i > {open} AND i % 100 < 3 THEN t + interval '4 hours' END,
           CASE WHEN i > {open} AND i % 100 < 3 THEN 'case.rejected' END, NULL
    FROM p""",
    # the clocks: stopped for the closed; for the open see the module docstring
    """WITH {case}
    INSERT INTO clocks (assignment_id, clock, case_id, started_at, warn_at, due_at, state,
                        stopped_at, stopped_by)
    SELECT md5('a' || i)::uuid, k.clock, md5('c' || i)::uuid, t, d.due - d.warn_before, d.due,
           CASE WHEN i > {open} THEN 'stopped'
                WHEN k.clock = 'sign_for' AND i % 10 >= 2 THEN 'stopped' ELSE 'running' END,
           CASE WHEN i > {open} THEN t + interval '1 hour' * (i % 144 + 1)
                WHEN k.clock = 'sign_for' AND i % 10 >= 2 THEN t + (i % 180) * interval '1 minute'
           END,
           CASE WHEN i > {open} AND i % 100 < 3 THEN 'case.rejected'
                WHEN i > {open} THEN CASE k.clock WHEN 'sign_for' THEN 'case.signed_for'
                                                  ELSE 'case.resolved' END
                WHEN k.clock = 'sign_for' AND i % 10 >= 2 THEN 'case.signed_for' END
    FROM p, (VALUES ('sign_for'), ('resolve')) AS k (clock),
    LATERAL (SELECT CASE
        WHEN i <= {open} AND k.clock = 'sign_for' AND i % 10 = 0 THEN $3::timestamptz - i * interval '1 minute'
        WHEN i <= {open} AND k.clock = 'sign_for' AND i % 10 = 1 THEN $3::timestamptz + interval '20 minutes'
        WHEN i <= {open} AND k.clock = 'resolve' AND i % 10 >= 2 THEN $3::timestamptz + (i % 72) * interval '1 hour'
        WHEN k.clock = 'sign_for' THEN t + interval '2 hours'
        ELSE t + interval '3 days' END AS due,
        CASE k.clock WHEN 'sign_for' THEN interval '30 minutes' ELSE interval '12 hours' END
            AS warn_before) d""",
    # timers of the open set: fired deadlines (and a third escalated) for the overdue, pending
    # deadlines for the rest
    """WITH {case}
    INSERT INTO timers (case_id, assignment_id, clock, due_at, state, fired_at, kind, step, level)
    SELECT md5('c' || i)::uuid, md5('a' || i)::uuid, k.clock, k.due_at,
           CASE WHEN k.due_at <= $3 THEN 'fired' ELSE 'pending' END,
           CASE WHEN k.due_at <= $3 THEN k.due_at END, 'deadline', 0, NULL
    FROM p JOIN clocks k ON k.assignment_id = md5('a' || i)::uuid AND k.state = 'running'
    WHERE i <= {open}
    UNION ALL
    SELECT md5('c' || i)::uuid, md5('a' || i)::uuid, 'sign_for', t + interval '4 hours',
           'fired', t + interval '4 hours', 'escalation', 1, 'street'
    FROM p WHERE i <= {open} AND i % 30 = 0""",
    """WITH {case}
    INSERT INTO extensions (request_id, assignment_id, days, decided_at)
    SELECT md5('x' || i)::uuid, md5('a' || i)::uuid, 2, t + interval '1 day'
    FROM p WHERE i > {open} AND i % 20 = 3""",
    """WITH {case}
    INSERT INTO case_events (event_id, case_id, type, version, occurred_at, producer, payload)
    SELECT md5('r' || i)::uuid, md5('c' || i)::uuid, 'case.rated', 1,
           t + interval '7 days', 'intake', jsonb_build_object('score', 1 + i % 5)
    FROM p WHERE i > {open} AND i % 10 < 6 AND i % 100 >= 3
    UNION ALL
    SELECT md5('w' || i)::uuid, md5('c' || i)::uuid, 'case.rework_requested', 1,
           t + interval '6 days 23 hours', 'intake',
           jsonb_build_object('departments', jsonb_build_array(dept))
    FROM p WHERE i > {open} AND i % 20 = 1""",
]

_DISPATCH_REFERENCE = """
INSERT INTO departments (id, name, kind)
SELECT 'd' || n, '部门' || n, 'functional' FROM generate_series(0, 19) n
"""

_DISPATCH = [
    """WITH {case}
    INSERT INTO assignments (id, case_id, case_no, department_id, role, state, reason, area_path,
                             category, priority, description, result, dispatched_at,
                             signed_for_at, resolved_at, updated_at, exit_reason, exited_at)
    SELECT md5('a' || i)::uuid, md5('c' || i)::uuid, 'YA-' || i, dept, 'lead',
           CASE WHEN i <= {open} AND i % 10 < 2 THEN 'dispatched'
                WHEN i <= {open} THEN 'signed_for'
                WHEN i % 100 < 3 THEN 'rejected' ELSE 'resolved' END,
           '按规则派单', format('YA/YA0%s/YA0%s0%s/YA0%s0%s-0%s', s, s, cm, s, cm, g), cat, prio,
           '井盖缺失，请尽快处理',
           CASE WHEN i > {open} AND i % 100 >= 3 THEN '已处理' END, t,
           CASE WHEN i > {open} OR i % 10 >= 2 THEN t + (i % 180) * interval '1 minute' END,
           CASE WHEN i > {open} AND i % 100 >= 3 THEN t + (i % 144) * interval '1 hour' END, t,
           CASE WHEN i > {open} AND i % 100 < 3 THEN '非本部门职责' END,
           CASE WHEN i > {open} AND i % 100 < 3 THEN t + interval '4 hours' END
    FROM p""",
    # tracking's announcements: running deadlines of the open set (stopped ones, the rest, are
    # in no index the inbox reads)
    """WITH {case}
    INSERT INTO assignment_clocks (assignment_id, clock, due_at, running, as_of)
    SELECT md5('a' || i)::uuid, k.clock,
           CASE WHEN k.clock = 'sign_for' AND i <= {open} AND i % 10 = 0
                    THEN $3::timestamptz - i * interval '1 minute'
                WHEN k.clock = 'sign_for' AND i <= {open} AND i % 10 = 1
                    THEN $3::timestamptz + interval '20 minutes'
                WHEN k.clock = 'resolve' AND i <= {open} AND i % 10 >= 2
                    THEN $3::timestamptz + (i % 72) * interval '1 hour'
                WHEN k.clock = 'sign_for' THEN t + interval '2 hours'
                ELSE t + interval '3 days' END,
           k.clock = 'resolve' OR i % 10 < 2, t
    FROM p, (VALUES ('sign_for'), ('resolve')) AS k (clock) WHERE i <= {open}""",
    """WITH {case}
    INSERT INTO assignment_urgings (assignment_id, count, last_urged_at, last_note)
    SELECT md5('a' || i)::uuid, 1, $3::timestamptz - interval '10 minutes', '请尽快办理'
    FROM p WHERE i <= {open} AND i % 10 = 0""",
]

_NOTIFY_REFERENCE = """
INSERT INTO recipients (id, name, kind, department_id)
SELECT 'dept-d' || n, '部门' || n || '值班室', 'department', 'd' || n
FROM generate_series(0, 19) n;
"""

# One message per case to its department's duty desk (the dispatch notice), read unless the
# case is open. Numbered here (seq = i: increasing per recipient); triggers are off while
# seeding.
_NOTIFY = [
    """WITH {case}
    INSERT INTO inbox_messages (recipient_id, event_id, case_id, type, title, body, title_en,
                                body_en, link, created_at, read_at, seq)
    SELECT 'dept-' || dept, md5('e' || i)::uuid, md5('c' || i)::uuid, 'case.dispatched',
           '新派单 YA-' || i, '井盖缺失，请尽快处理', 'New assignment YA-' || i,
           'Manhole cover missing', '/cases/' || md5('c' || i)::uuid, t,
           CASE WHEN i > {open} THEN t + interval '1 hour' END, i
    FROM p""",
]

_NOTIFY_AFTER = """
INSERT INTO inbox_sequences AS s (recipient_id, last_seq)
SELECT recipient_id, max(seq) FROM inbox_messages GROUP BY recipient_id
ON CONFLICT (recipient_id) DO UPDATE SET last_seq = excluded.last_seq;
"""


async def _seed(
    conn: asyncpg.Connection, statements: list[str], first: int, last: int, now: datetime
) -> None:
    for sql in statements:
        await conn.execute(sql.format(case=_CASE.format(open=OPEN), open=OPEN), first, last, now)


# --- the queries --------------------------------------------------------------------------------


@dataclass
class Query:
    group: str
    label: str
    run: Callable[[], Awaitable[Any]]
    figures: dict[int, tuple[float, float, int, str]] = field(default_factory=dict)


def _count(out: Any) -> str:
    if hasattr(out, "total"):  # a KPI table
        return f"{out.total.received}/{out.total.overdue_now}"
    if hasattr(out, "ranked"):
        return f"{len(out.ranked)}r"
    if hasattr(out, "pairs"):  # integrity: departments examined
        return f"{len(out.departments)}d"
    if isinstance(out, tuple):  # dispatch: (department, rows)
        return str(len(out[1]))
    return str(len(out))


async def _time(q: Query, size: int, runs: int, budget: float = 20.0) -> None:
    """``runs`` timings (fewer, at least one, if they take longer than ``budget`` seconds
    together)."""
    took: list[float] = []
    spent = 0.0
    out: Any = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = await q.run()
        took.append((time.perf_counter() - t0) * 1000)
        spent += took[-1] / 1000
        if spent > budget:
            break
    took.sort()
    p95 = took[min(len(took) - 1, round(0.95 * (len(took) - 1)))]
    q.figures[size] = (statistics.median(took), p95, len(took), _count(out))


def _queries(pools: dict[str, asyncpg.Pool], now: datetime) -> list[Query]:
    trk, dsp, ntf = pools["tracking"], pools["dispatch"], pools["notify"]
    district = Principal("bench", "区指挥中心", Role.DISTRICT, "YA")
    street = Principal("bench", "街道", Role.STREET, "YA/YA01")
    dept = Principal("bench", "部门", Role.DEPARTMENT, "YA", department_id="d3")
    box = SecretBox([Fernet.generate_key().decode()])
    today = now.astimezone(CN).date()
    half = Period(_local(today - timedelta(days=181)), _local(today + timedelta(days=1)))
    month_start = today.replace(day=1)
    last_month = (month_start - timedelta(days=1)).replace(day=1)
    month = Period(_local(last_month), _local(month_start))

    def board(which: Board, who: Principal, q: BoardQuery | None = None):
        return lambda: read_board(trk, who, which, q or BoardQuery(), now=now, limit=100, offset=0)

    def inbox(
        who: Principal, state: AssignmentState | None, sort: str, priority: Priority | None = None
    ):
        return lambda: dispatch_handlers.department_assignments(
            dsp, who, "d3", state, 50, 0, priority, sort
        )

    def messages(unread: bool | None):
        return lambda: notify_handlers.inbox(
            ntf, dept, "dept-d3", box, unread=unread, limit=50, offset=0
        )

    return [
        Query("board", "overdue, district", board(Board.OVERDUE, district)),
        Query(
            "board",
            "overdue, street YA01, urgent, E01",
            board(Board.OVERDUE, street, BoardQuery(category="E01", priority="urgent")),
        ),
        Query("board", "overdue, one department", board(Board.OVERDUE, dept)),
        Query("board", "near-overdue, district", board(Board.NEAR_OVERDUE, district)),
        Query(
            "board",
            "near-overdue, district, resolve clock",
            board(Board.NEAR_OVERDUE, district, BoardQuery(clock="resolve")),
        ),
        Query("inbox", "dept inbox, all, newest first", inbox(dept, None, "dispatched_at")),
        Query("inbox", "dept inbox, all, by deadline", inbox(dept, None, "deadline")),
        Query("inbox", "dept inbox, all, by priority", inbox(dept, None, "priority")),
        Query(
            "inbox", "dept 待报到, by deadline", inbox(dept, AssignmentState.DISPATCHED, "deadline")
        ),
        Query(
            "inbox", "dept 办理中, by priority", inbox(dept, AssignmentState.SIGNED_FOR, "priority")
        ),
        Query(
            "inbox",
            "dept 待报到 urgent, newest first",
            inbox(dept, AssignmentState.DISPATCHED, "dispatched_at", Priority.URGENT),
        ),
        Query(
            "inbox",
            "dept 已办结, newest first",
            inbox(dept, AssignmentState.RESOLVED, "dispatched_at"),
        ),
        Query(
            "inbox",
            "street reads dept's 办理中, by deadline",
            inbox(street, AssignmentState.SIGNED_FOR, "deadline"),
        ),
        Query("inbox", "notify: desk inbox, newest first", messages(None)),
        Query("inbox", "notify: desk inbox, unread", messages(True)),
        Query(
            "kpi",
            "district per department, half a year",
            lambda: kpi.department_kpis(trk, district, half, area=None, now=now),
        ),
        Query(
            "kpi",
            "district per community, last month",
            lambda: kpi.area_kpis(trk, district, month, area=None, level="community", now=now),
        ),
        Query(
            "kpi",
            "district per grid, half a year",
            lambda: kpi.area_kpis(trk, district, half, area=None, level="grid", now=now),
        ),
        Query(
            "kpi",
            "street YA01 per department, half a year",
            lambda: kpi.department_kpis(trk, street, half, area=None, now=now),
        ),
        Query(
            "kpi",
            "one department, half a year",
            lambda: kpi.department_kpis(trk, dept, half, area=None, now=now),
        ),
        Query(
            "kpi",
            "ranking + 红黑榜, departments, half a year",
            lambda: kpi.ranking(
                trk, district, half, unit="department", area=None, level=None, by=None, now=now
            ),
        ),
        Query(
            "kpi",
            "考核诚信 integrity checks, district, last month",
            lambda: integrity(trk, district, month, area=None, thresholds=Thresholds(), now=now),
        ),
        Query(
            "kpi",
            "考核诚信 integrity checks, street YA01, half a year",
            lambda: integrity(trk, street, half, area=None, thresholds=Thresholds(), now=now),
        ),
        Query("write", "kpi_refresh of one case (an event's cost)", lambda: _refresh(trk)),
    ]


_refreshed = iter(range(1, 10**9))


async def _refresh(pool: asyncpg.Pool) -> str:
    """The sums brought up to date for one case whose facts just changed (its rating), as the
    event handler does after recording an event; rolled back."""
    i = OPEN + 1 + next(_refreshed) * 7919 % 9000
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "INSERT INTO case_events (event_id, case_id, type, version, occurred_at,"
                " producer, payload) VALUES (gen_random_uuid(), md5('c' || $1::int)::uuid,"
                " 'case.rated', 1, now(), 'bench', '{\"score\": 1}')",
                i,
            )
            await kpi_repo.refresh(
                conn, [await conn.fetchval("SELECT md5('c' || $1::int)::uuid", i)]
            )
        finally:
            await tx.rollback()
    return "1"


def _local(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CN)


# --- plans --------------------------------------------------------------------------------------


async def _explain(dsns: dict[str, str], now: datetime) -> None:
    """Run each query once more on connections that log every plan (auto_explain, sent to the
    client as notices) and print the plans of its statements."""
    admin = {s: await db.connect_once(dsn) for s, dsn in dsns.items()}
    for conn in admin.values():
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(
            f"ALTER DATABASE {name} SET session_preload_libraries = 'auto_explain';"
            f" ALTER DATABASE {name} SET auto_explain.log_min_duration = 0;"
            f" ALTER DATABASE {name} SET auto_explain.log_analyze = on;"
            f" ALTER DATABASE {name} SET auto_explain.log_timing = off;"
            f" ALTER DATABASE {name} SET client_min_messages = log;"
        )
    plans: list[str] = []

    async def setup(conn: asyncpg.Connection) -> None:
        conn.add_log_listener(lambda _c, msg: plans.append(msg.message))

    # the pool drops the listener (with a warning) when a connection goes back
    warnings.filterwarnings(
        "ignore", ".*is being released to the pool but has 1 active log", asyncpg.InterfaceWarning
    )
    pools = {
        s: await asyncpg.create_pool(
            dsn, min_size=1, max_size=1, init=db._init_connection, setup=setup
        )
        for s, dsn in dsns.items()
    }
    try:
        for q in _queries(pools, now):
            plans.clear()
            await q.run()
            print(f"\n--- plan: {q.group} / {q.label}")
            for plan in plans:
                text = plan.split("\n", 1)[-1] if plan.startswith("duration") else plan
                lines = [ln for ln in text.splitlines() if ln.strip()]
                print("\n".join(ln[:160] for ln in lines[:90]))
                if len(lines) > 90:
                    print(f"  … {len(lines) - 90} more lines")
    finally:
        for pool in pools.values():
            await pool.close()
        for conn in admin.values():
            name = await conn.fetchval("SELECT current_database()")
            await conn.execute(f"ALTER DATABASE {name} RESET ALL")
            await conn.close()


# --- the run ------------------------------------------------------------------------------------


async def _prepare(dsns: dict[str, str]) -> None:
    for service, dsn in dsns.items():
        conn = await db.connect_once(dsn)
        try:
            await migrations.apply(
                conn, migration_sources(ROOT / "services" / service / "migrations")
            )
        finally:
            await conn.close()
    conn = await db.connect_once(dsns["dispatch"])
    await conn.execute(_DISPATCH_REFERENCE)
    await conn.close()
    conn = await db.connect_once(dsns["notify"])
    await conn.execute(_NOTIFY_REFERENCE)
    await conn.close()
    conn = await db.connect_once(dsns["tracking"])
    await kpi.seed_thresholds(conn, DEMO_THRESHOLDS, by="bench")
    await conn.close()


async def _grow(dsns: dict[str, str], first: int, last: int, now: datetime) -> None:
    """Seed cases first..last into every database (in parallel), then ANALYZE."""

    async def one(service: str, statements: list[str], after: str | None) -> None:
        conn = await db.connect_once(dsns[service])
        try:
            # no per-row triggers (the boards' feed of the seeded clocks, which no query here
            # reads; notify's numbering) nor foreign-key checks while seeding
            await conn.execute("SET session_replication_role = replica")
            await _seed(conn, statements, first, last, now)
            await conn.execute("RESET session_replication_role")
            if after:
                await conn.execute(after)
            await after_seed(conn, service)
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()

    await asyncio.gather(
        one("tracking", _TRACKING, None),
        one("dispatch", _DISPATCH, None),
        one("notify", _NOTIFY, _NOTIFY_AFTER),
    )


async def after_seed(conn: asyncpg.Connection, service: str) -> None:
    """What the code keeps beside the facts in the same transaction as them (a seed written
    straight into the tables has to build it): tracking's KPI sums."""
    if service == "tracking":
        t0 = time.perf_counter()
        await kpi_repo.rebuild(conn)
        print(
            f"queries  tracking: KPI sums rebuilt from the facts in"
            f" {time.perf_counter() - t0:.1f} s",
            flush=True,
        )


async def bench_queries(
    dsns: dict[str, str], sizes: tuple[int, ...], runs: int, explain: bool = True
) -> None:
    await _prepare(dsns)
    now = datetime.now(UTC).replace(microsecond=0)
    pools = {s: await db.create_pool(dsn, max_size=2) for s, dsn in dsns.items()}
    queries = _queries(pools, now)
    seeded = 0
    try:
        for size in sizes:
            t0 = time.perf_counter()
            await _grow(dsns, seeded + 1, size, now)
            seeded = size
            print(
                f"queries  seeded {size:,} cases in tracking, dispatch and notify"
                f" (+{time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
            if size == sizes[0]:
                await _check_sums(pools["tracking"], now)
            for q in queries:
                await _time(q, size, runs)
    finally:
        for pool in pools.values():
            await pool.close()
    _table(queries, sizes)
    if explain:
        await _explain(dsns, now)


async def _check_sums(pool: asyncpg.Pool, now: datetime) -> None:
    """The KPIs read from the kept sums are those computed from every fact (domain.kpi's
    definition): per department, over the seeded half year and a period with part-days."""
    district = Principal("bench", "区指挥中心", Role.DISTRICT, "YA")
    today = now.astimezone(CN).date()
    for period in (
        Period(_local(today - timedelta(days=200)), _local(today + timedelta(days=1))),
        Period(now - timedelta(days=47, hours=5), now - timedelta(days=11, hours=3)),
    ):
        table = await kpi.department_kpis(pool, district, period, area=None, now=now)
        async with pool.acquire() as conn:
            rows = await kpi_repo.assignment_facts(
                conn,
                start=period.start,
                end=period.end,
                now=now,
                area_roots=None,
                department_id=None,
            )
        want = group_kpis([r.facts for r in rows], period, now, lambda f: f.department_id)
        assert {u.key: u.kpi for u in table.units} == want, "KPI sums differ from the facts"
    print("queries  tracking: KPIs from the kept sums = KPIs from the facts", flush=True)


def _table(queries: list[Query], sizes: tuple[int, ...]) -> None:
    head = "".join(f" | {f'{s:,} cases':>22}" for s in sizes)
    print(f"\n{'query (median / p95 ms, rows)':<52}{head}")
    print("-" * (52 + 25 * len(sizes)))
    for q in queries:
        cells = ""
        for s in sizes:
            med, p95, _, rows = q.figures[s]
            cells += f" | {med:7.1f} / {p95:7.1f} {rows:>6}"
        print(f"{q.group + ': ' + q.label:<52}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-explain", action="store_true")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    names = {"tracking": "q_tracking", "dispatch": "q_dispatch", "notify": "q_notify"}
    with embedded_postgres(*names.values()) as pg:
        dsns = {s: pg.dsn(n) for s, n in names.items()}
        asyncio.run(bench_queries(dsns, sizes, args.runs, explain=not args.no_explain))


if __name__ == "__main__":
    main()
