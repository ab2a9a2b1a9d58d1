"""Timer scheduler figures (issue 6): a tick's cost follows what is due, not what is open.

Tracking's database is filled with open cases whose clocks run (each assignment with a
warning, a deadline and three escalation timers pending in the future) — 1,000, then
10,000, then 100,000 of them — plus 200 timers that are due. One tick claims and fires a
batch of 50 due timers (claim with ``FOR UPDATE SKIP LOCKED``, settle, write the alerts to
the outbox and the timeline) in one transaction; the figures are the median tick time and
the plan of the claim query, on the real embedded PostgreSQL.

Run with ``python -m bench.timers`` (``make bench`` runs it).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from services.tracking.handlers import fire_due_timers
from services.tracking.repository.timers import _CLAIM_DUE
from services.tracking.sla.demo import demo_policy_versions
from services.tracking.sla.policy import pin_policy
from services.tracking.sla.policy_data import pinned_to_data
from bench import embedded_postgres
from shared import db, migrations
from shared.service import migration_sources

ROOT = Path(__file__).resolve().parent.parent
OPEN_SIZES = (1_000, 10_000, 100_000)
DUE = 200
BATCH = 50
# (kind, step, level, seconds from the deadline)
STAGES = (("warning", 0, None, -360), ("deadline", 0, None, 0),
          ("escalation", 0, "community", 0), ("escalation", 1, "street", 3600),
          ("escalation", 2, "district", 7200))



async def _add_cases(conn, first: int, count: int, due_at: datetime,
                     policy: dict[str, Any]) -> None:
    """``count`` open cases, one dispatched assignment each, its sign-for clock running and
    its five timers pending around ``due_at`` (the deadline)."""
    await conn.execute(
        """
        WITH n AS (SELECT g, md5('case' || g)::uuid AS case_id, md5('asg' || g)::uuid AS aid
                   FROM generate_series($1::int, $1::int + $2::int - 1) AS g),
        c AS (INSERT INTO cases (case_id, case_no, area_path, category, priority, status,
                                 updated_at)
              SELECT case_id, 'YA-B-' || g, 'YA/YA0' || (g % 4 + 1) || '/YA0' || (g % 4 + 1)
                     || '01/YA0' || (g % 4 + 1) || '01-0' || (g % 4 + 1), 'E0101', 'normal',
                     'dispatched', $3 FROM n),
        a AS (INSERT INTO assignments (assignment_id, case_id, department_id, department_name,
                                       role, state, dispatched_at, policy)
              SELECT aid, case_id, 'cg', '城管', 'lead', 'dispatched', $3, $5::jsonb FROM n),
        k AS (INSERT INTO clocks (assignment_id, clock, case_id, started_at, warn_at, due_at)
              SELECT aid, 'sign_for', case_id, $3::timestamptz,
                     $4::timestamptz - interval '6 minutes', $4::timestamptz FROM n)
        INSERT INTO timers (case_id, assignment_id, clock, due_at, kind, step, level)
        SELECT n.case_id, n.aid, 'sign_for', $4::timestamptz + s.offset_s * interval '1 second',
               s.kind, s.step, s.level
        FROM n CROSS JOIN (SELECT * FROM jsonb_to_recordset($6::jsonb)
                           AS x(kind text, step int, level text, offset_s int)) s
        """,
        first, count, due_at - timedelta(minutes=30), due_at, policy,
        [{"kind": k, "step": s, "level": lv, "offset_s": o} for k, s, lv, o in STAGES],
    )


async def bench_ticks(dsn: str) -> None:
    conn = await db.connect_once(dsn)
    await migrations.apply(conn, migration_sources(ROOT / "services" / "tracking" / "migrations"))
    await conn.close()
    pool = await db.create_pool(dsn, max_size=4)
    now = datetime.now(UTC)
    version = demo_policy_versions()[-1]
    policy = pinned_to_data(pin_policy([version], "E0101", "normal", version.effective_from))
    try:
        opened = 0
        for size in OPEN_SIZES:
            async with pool.acquire() as conn:
                # Open cases whose timers are all in the future (a week from now).
                await _add_cases(conn, 1_000_000 + opened, size - opened,
                                 now + timedelta(days=7), policy)
                opened = size
                # Cases whose sign-for deadline passed hours ago: DUE timers due now.
                await conn.execute("UPDATE timers SET state = 'cancelled' WHERE state = "
                                   "'pending' AND due_at <= $1", now)
                await _add_cases(conn, 10_000_000 + size, DUE // len(STAGES), now - timedelta(hours=5),
                                 policy)
                await conn.execute("ANALYZE")
                pending = await conn.fetchval("SELECT count(*) FROM timers WHERE state = "
                                              "'pending'")
                due = await conn.fetchval("SELECT count(*) FROM timers WHERE state = "
                                          "'pending' AND due_at <= $1", now)
                plan = await conn.fetch("EXPLAIN " + _CLAIM_DUE, now, BATCH)
            ticks, fired = [], 0
            while True:
                async with pool.acquire() as conn:
                    t0 = time.perf_counter()
                    tick = await fire_due_timers(conn, now=now, limit=BATCH)
                    took = time.perf_counter() - t0
                if not tick.claimed:
                    break
                ticks.append(took * 1000)
                fired += tick.fired
            uses_index = any("timers_due" in r[0] for r in plan)
            print(f"timer ticks   {size:>7} open cases ({pending:>6} pending timers, {due} due): "
                  f"{len(ticks)} ticks of ≤{BATCH}, median {statistics.median(ticks):6.1f} ms, "
                  f"max {max(ticks):6.1f} ms, {fired} alerts; claim uses the partial due "
                  f"index: {'yes' if uses_index else 'NO'}")
    finally:
        await pool.close()


def main() -> None:
    # one log line per fired timer would drown the figures
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with embedded_postgres("timers") as pg:
        asyncio.run(bench_ticks(pg.dsn("timers")))


if __name__ == "__main__":
    main()
