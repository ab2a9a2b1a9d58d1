"""KPI query figures (issue 6): per department, per street and the ranking over 20,000 cases
on the real embedded PostgreSQL — since issue 14 read from the sums kept per day and month
(migration 0008) plus the facts of what is still open; ``bench/queries.py`` grows the cases to
1,000,000. "The facts query alone" is the fact-based computation the sums stand for.

Run with ``python -m bench.kpi`` (``make bench`` runs it after the relay figures).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from services.tracking.demo import DEMO_THRESHOLDS
from services.tracking.handlers import kpi
from services.tracking.repository import kpi as kpi_repo
from services.tracking.domain.kpi import Period
from bench import embedded_postgres
from shared import db, migrations
from shared.auth import Principal, Role
from shared.service import migration_sources

ROOT = Path(__file__).resolve().parent.parent
CN = ZoneInfo("Asia/Shanghai")
CASES = 20_000

# Half a year of cases over 4 streets × 4 communities × 4 grids and 20 departments: signed for
# within 0–3 h (sign-for due after 2 h), most resolved within 0–6 days (due after 3), 5 %
# rejected, 5 % with an extension, 5 % sent back once, 60 % rated.
_FILL = f"""
INSERT INTO cases (case_id, case_no, area_path, category, priority, status, updated_at)
SELECT md5('c' || i)::uuid, 'YA-' || i,
       format('YA/YA0%s/YA0%s0%s/YA0%s0%s-0%s', s, s, c, s, c, g), 'E0101', 'normal',
       'dispatched', now()
FROM generate_series(1, {CASES}) i,
     LATERAL (SELECT 1 + i % 4 AS s, 1 + (i / 4) % 4 AS c, 1 + (i / 16) % 4 AS g) p;

INSERT INTO assignments (assignment_id, case_id, department_id, department_name, role, state,
                         dispatched_at, signed_for_at, resolved_at, ended_at, ended_by)
SELECT md5('a' || i)::uuid, md5('c' || i)::uuid, 'd' || (i % 20), '部门' || (i % 20), 'lead',
       CASE WHEN i % 10 < 7 THEN 'resolved' ELSE 'signed_for' END, t,
       t + (i % 180) * interval '1 minute',
       CASE WHEN i % 10 < 7 THEN t + (i % 144) * interval '1 hour' END,
       CASE WHEN i % 20 = 0 THEN t + interval '30 minutes' END,
       CASE WHEN i % 20 = 0 THEN 'case.rejected' END
FROM generate_series(1, {CASES}) i,
     LATERAL (SELECT timestamptz '2026-01-01 00:00+08' + (i % 181) * interval '1 day'
                     + (i % 9) * interval '1 hour' AS t) d;

INSERT INTO clocks (assignment_id, clock, case_id, started_at, due_at, state)
SELECT assignment_id, k.clock, case_id, dispatched_at,
       dispatched_at + CASE k.clock WHEN 'sign_for' THEN interval '2 hours'
                                    ELSE interval '3 days' END, 'stopped'
FROM assignments, (VALUES ('sign_for'), ('resolve')) AS k (clock);

INSERT INTO extensions (request_id, assignment_id, days, decided_at)
SELECT md5('x' || i)::uuid, md5('a' || i)::uuid, 2, now()
FROM generate_series(1, {CASES}) i WHERE i % 20 = 3;

INSERT INTO case_events (event_id, case_id, type, version, occurred_at, producer, payload)
SELECT md5('r' || i)::uuid, md5('c' || i)::uuid, 'case.rated', 1,
       timestamptz '2026-07-01 00:00+08', 'intake',
       jsonb_build_object('score', 1 + i % 5)
FROM generate_series(1, {CASES}) i WHERE i % 10 < 6
UNION ALL
SELECT md5('w' || i)::uuid, md5('c' || i)::uuid, 'case.rework_requested', 1,
       timestamptz '2026-07-01 00:00+08', 'intake', jsonb_build_object('departments', '[]'::jsonb)
FROM generate_series(1, {CASES}) i WHERE i % 20 = 1;
ANALYZE;
"""


async def _timed(label: str, run, repeat: int = 5) -> None:
    took = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = await run()
        took.append((time.perf_counter() - t0) * 1000)
    print(
        f"kpi  {label:<44} {out:>7}  median {statistics.median(took):7.1f} ms,"
        f" max {max(took):7.1f} ms"
    )


async def bench_kpi(dsn: str) -> None:
    conn = await db.connect_once(dsn)
    await migrations.apply(conn, migration_sources(ROOT / "services" / "tracking" / "migrations"))
    t0 = time.perf_counter()
    await conn.execute(_FILL)
    await kpi.seed_thresholds(conn, DEMO_THRESHOLDS, by="bench")
    print(
        f"kpi  filled {CASES} cases with assignments, clocks, extensions, ratings"
        f" in {time.perf_counter() - t0:.1f} s"
    )
    t0 = time.perf_counter()
    await kpi_repo.rebuild(conn)  # the event handler keeps the sums; a direct fill builds them
    print(f"kpi  KPI sums built from the facts in {time.perf_counter() - t0:.1f} s")
    await conn.close()
    pool = await db.create_pool(dsn, max_size=4)
    district = Principal("bench", "区指挥中心", Role.DISTRICT, "YA")
    street = Principal("bench", "街道", Role.STREET, "YA/YA01")
    dept = Principal("bench", "部门", Role.DEPARTMENT, "YA", department_id="d3")
    now = datetime(2026, 11, 1, tzinfo=CN)
    half = Period(datetime(2026, 1, 1, tzinfo=CN), datetime(2026, 7, 1, tzinfo=CN))
    month = Period(datetime(2026, 3, 1, tzinfo=CN), datetime(2026, 4, 1, tzinfo=CN))
    try:
        for label, period in (("half a year", half), ("one month", month)):
            await _timed(
                f"district, per department, {label}",
                lambda p=period: _run(kpi.department_kpis(pool, district, p, area=None, now=now)),
            )
            await _timed(
                f"district, per community, {label}",
                lambda p=period: _run(
                    kpi.area_kpis(pool, district, p, area=None, level="community", now=now)
                ),
            )

        async def facts_only() -> str:  # the SQL alone, without the figures
            async with pool.acquire() as conn:
                rows = await kpi_repo.assignment_facts(
                    conn,
                    start=half.start,
                    end=half.end,
                    now=now,
                    area_roots=("YA",),
                    department_id=None,
                )
            return str(len(rows))

        await _timed("the facts query alone, half a year", facts_only)
        await _timed(
            "street YA01, per department, half a year",
            lambda: _run(kpi.department_kpis(pool, street, half, area=None, now=now)),
        )
        await _timed(
            "one department, half a year",
            lambda: _run(kpi.department_kpis(pool, dept, half, area=None, now=now)),
        )
        await _timed(
            "ranking + 红黑榜, departments, half a year",
            lambda: _rank(
                kpi.ranking(
                    pool, district, half, unit="department", area=None, level=None, by=None, now=now
                )
            ),
        )
    finally:
        await pool.close()


async def _run(call) -> str:
    table = await call
    return f"{table.total.received}"


async def _rank(call) -> str:
    r = await call
    return f"{len(r.ranked)}r/{len(r.listed.red)}+{len(r.listed.black)}"


def main() -> None:
    with embedded_postgres("bench_kpi") as pg:
        asyncio.run(bench_kpi(pg.dsn("bench_kpi")))


if __name__ == "__main__":
    main()
