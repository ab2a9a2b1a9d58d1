"""Timer scheduler figures (issue 6): a tick's cost follows what is due, not what is open.

Tracking's database is filled with open cases whose clocks run (each assignment with a
warning, a deadline and three escalation timers pending in the future) — 1,000, then
10,000, then 100,000 of them — plus 200 timers that are due. One tick claims and fires a
batch of 50 due timers (claim with ``FOR UPDATE SKIP LOCKED``, settle, write the alerts to
the outbox and the timeline) in one transaction; the figures are the median tick time and
the plan of the claim query, on the real embedded PostgreSQL.

Then the alert lag (issue 14: an overdue alert fires ≤1 s after its deadline, p99, with
1,000,000 open timers): 200,000 open cases × 5 pending timers are seeded set-based (due a week
ahead; vacuumed and checkpointed, a steady state), and the real ``TimerScheduler`` runs in the
background as tracking wires it, with its default settings. Deadlines come due meanwhile,
each on its own open case, armed through ``repository.schedule_timer`` (the call the
consumers' ``start_clocks`` makes, NOTIFY included): a steady stream of 20/s for 40 s, one per
transaction (half armed 10 s ahead, half only 0.05–1 s before they are due, within one poll
interval); a burst of 2,000 due at one instant in its middle (armed beforehand in one
transaction); then 4/s armed 0.05–1 s ahead with nothing else due, when a scheduler that only
polled would sleep through. The lag of an alert is the commit time of its outbox row
(``pg_xact_commit_timestamp``: the moment the relay can see it) minus its timer's ``due_at``;
both clocks are this machine's. The machine is shared: other load shows in the figures.

Run with ``python -m bench.timers`` (``make bench`` runs it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from services.tracking import repository
from services.tracking.config import Settings
from services.tracking.domain import Clock, TimerKind
from services.tracking.handlers import fire_due_timers
from services.tracking.repository.timers import _CLAIM_DUE
from services.tracking.scheduler import TimerScheduler
from services.tracking.demo import demo_policy_versions
from services.tracking.domain.policy import pin_policy
from services.tracking.domain.policy_data import pinned_to_data
from bench import embedded_postgres
from shared import db, migrations
from shared.service import migration_sources

ROOT = Path(__file__).resolve().parent.parent
OPEN_SIZES = (1_000, 10_000, 100_000)
DUE = 200
BATCH = 50
# (kind, step, level, seconds from the deadline)
STAGES = (
    ("warning", 0, None, -360),
    ("deadline", 0, None, 0),
    ("escalation", 0, "community", 0),
    ("escalation", 1, "street", 3600),
    ("escalation", 2, "district", 7200),
)
LAG_OPEN_CASES = 200_000  # × 5 stages = 1,000,000 open timers
AHEAD = 10.0  # seconds: armed long before due (as a dispatch arms a 30-minute deadline)
LATE = (0.05, 1.0)  # seconds: armed just before due, within one poll interval
# (group, how many, first due (s after the start), timers per second, armed how long before)
LAG_GROUPS = (
    ("steady 20/s, armed 10 s ahead", 400, 0.0, 10, AHEAD),
    ("steady 20/s, armed 0.05-1 s ahead", 400, 0.05, 10, LATE),
    ("burst of 2000 due at one instant", 2_000, 20.0, None, AHEAD),
    ("alone 4/s, armed 0.05-1 s ahead", 60, 42.0, 4, LATE),
)


async def _add_cases(
    conn, first: int, count: int, due_at: datetime, policy: dict[str, Any]
) -> None:
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
        first,
        count,
        due_at - timedelta(minutes=30),
        due_at,
        policy,
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
                await _add_cases(
                    conn, 1_000_000 + opened, size - opened, now + timedelta(days=7), policy
                )
                opened = size
                # Cases whose sign-for deadline passed hours ago: DUE timers due now.
                await conn.execute(
                    "UPDATE timers SET state = 'cancelled' WHERE state = "
                    "'pending' AND due_at <= $1",
                    now,
                )
                await _add_cases(
                    conn, 10_000_000 + size, DUE // len(STAGES), now - timedelta(hours=5), policy
                )
                await conn.execute("ANALYZE")
                pending = await conn.fetchval("SELECT count(*) FROM timers WHERE state = 'pending'")
                due = await conn.fetchval(
                    "SELECT count(*) FROM timers WHERE state = 'pending' AND due_at <= $1", now
                )
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
            print(
                f"timer ticks   {size:>7} open cases ({pending:>6} pending timers, {due} due): "
                f"{len(ticks)} ticks of ≤{BATCH}, median {statistics.median(ticks):6.1f} ms, "
                f"max {max(ticks):6.1f} ms, {fired} alerts; claim uses the partial due "
                f"index: {'yes' if uses_index else 'NO'}"
            )
    finally:
        await pool.close()


async def _add_targets(
    conn, first: int, due_ats: list[datetime], dispatched_at: datetime, policy: dict[str, Any]
) -> list[tuple[Any, Any]]:
    """One open case per ``due_ats`` entry, its assignment dispatched and its sign-for clock
    running with that deadline, no timer yet: (case_id, assignment_id) of each."""
    rows = await conn.fetch(
        """
        WITH n AS (SELECT g, md5('lag' || g)::uuid AS case_id, md5('lagasg' || g)::uuid AS aid,
                          d AS due_at
                   FROM unnest($1::int[], $2::timestamptz[]) AS u(g, d)),
        c AS (INSERT INTO cases (case_id, case_no, area_path, category, priority, status,
                                 updated_at)
              SELECT case_id, 'YA-L-' || g, 'YA/YA01/YA0101/YA0101-01', 'E0101', 'normal',
                     'dispatched', $3 FROM n),
        a AS (INSERT INTO assignments (assignment_id, case_id, department_id, department_name,
                                       role, state, dispatched_at, policy)
              SELECT aid, case_id, 'cg', '城管', 'lead', 'dispatched', $3, $4::jsonb FROM n)
        INSERT INTO clocks (assignment_id, clock, case_id, started_at, warn_at, due_at)
        SELECT aid, 'sign_for', case_id, $3, due_at - interval '6 minutes', due_at FROM n
        RETURNING case_id, assignment_id
        """,
        list(range(first, first + len(due_ats))),
        due_ats,
        dispatched_at,
        policy,
    )
    return [(r["case_id"], r["assignment_id"]) for r in rows]


async def _arm(conn, *timers: tuple[tuple[Any, Any], datetime]) -> datetime:
    """Arm deadline timers the way a dispatch does, in one transaction; when it committed."""
    async with conn.transaction():
        for (case_id, assignment_id), due_at in timers:
            await repository.schedule_timer(
                conn,
                case_id=case_id,
                assignment_id=assignment_id,
                clock=Clock.SIGN_FOR,
                due_at=due_at,
                correlation_id=None,
                causation_id=None,
                kind=TimerKind.DEADLINE,
            )
    return datetime.now(UTC)


async def _arm_on_schedule(pool, plan: list[tuple[float, tuple[Any, Any], datetime]]) -> int:
    """Arm each timer at its time (monotonic seconds); how many were armed only after they
    were due (the bench fell behind: their lag counts from their due time all the same)."""
    behind = 0
    for at, target, due_at in sorted(plan, key=lambda p: p[0]):
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        async with pool.acquire() as conn:
            behind += await _arm(conn, (target, due_at)) > due_at
    return behind


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _lag_line(name: str, lags: list[float], expected: int) -> str:
    if not lags:
        return f"alert lag     {name:<34} no alert of {expected} fired"
    ms = [x * 1000 for x in lags]
    return (
        f"alert lag     {name:<34} n={len(ms):>4}/{expected:<4} p50 {_pct(ms, 50):5.0f} ms,"
        f" p95 {_pct(ms, 95):5.0f} ms, p99 {_pct(ms, 99):5.0f} ms, max {max(ms):5.0f} ms"
    )


async def _seed_open_timers(conn, policy: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    # Consistent by construction: no per-row triggers (foreign-key checks, the boards' feed of
    # started clocks, which the timers do not read) — 4x faster.
    await conn.execute("SET session_replication_role = replica")
    await _add_cases(conn, 0, LAG_OPEN_CASES, datetime.now(UTC) + timedelta(days=7), policy)
    await conn.execute("RESET session_replication_role")
    seeded = time.perf_counter() - t0
    # A steady state, not the aftermath of a bulk load: vacuumed, analysed, checkpointed.
    await conn.execute("VACUUM ANALYZE")
    await conn.execute("CHECKPOINT")
    settled = time.perf_counter() - t0 - seeded
    sizes = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE state = 'pending') AS pending,"
        " pg_size_pretty(pg_table_size('timers')) AS heap,"
        " pg_size_pretty(pg_indexes_size('timers')) AS indexes,"
        " pg_size_pretty(pg_relation_size('timers_due')) AS due_index FROM timers"
    )
    print(
        f"alert lag     seeded {LAG_OPEN_CASES} open cases with {sizes['pending']} pending "
        f"timers in {seeded:.1f} s (+ VACUUM ANALYZE, CHECKPOINT {settled:.1f} s); timers "
        f"table {sizes['heap']}, its indexes {sizes['indexes']} (the partial due index "
        f"{sizes['due_index']})"
    )


async def _claim_plan(conn, batch: int) -> list[str]:
    """The claim's plan over the open timers with a batch of them due (rolled back)."""
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(
            "UPDATE timers SET due_at = now() - interval '1 minute' WHERE id IN"
            " (SELECT id FROM timers WHERE state = 'pending' LIMIT $1)",
            batch,
        )
        rows = await conn.fetch(
            "EXPLAIN (ANALYZE, COSTS OFF) " + _CLAIM_DUE, datetime.now(UTC), batch
        )
    finally:
        await tx.rollback()
    return [r[0] for r in rows]


async def bench_alert_lag(dsn: str) -> None:
    conn = await db.connect_once(dsn)
    await migrations.apply(conn, migration_sources(ROOT / "services" / "tracking" / "migrations"))
    version = demo_policy_versions()[-1]
    policy = pinned_to_data(pin_policy([version], "E0101", "normal", version.effective_from))
    await _seed_open_timers(conn, policy)

    # The timers to come due: each its own open case (the outbox key tells its alert).
    rng = random.Random(14)
    start = time.monotonic() + 3.0  # "0 s": the first steady timer is due then
    wall = datetime.now(UTC) + timedelta(seconds=start - time.monotonic())
    planned: list[tuple[str, float, float]] = []  # (group, due, armed) in seconds from start
    for name, count, first, rate, lead in LAG_GROUPS:
        for i in range(count):
            due = first + (i / rate if rate else 0.0)
            ahead = rng.uniform(*lead) if isinstance(lead, tuple) else lead
            planned.append((name, due, due - ahead))
    targets = await _add_targets(
        conn,
        0,
        [wall + timedelta(seconds=d) for _, d, _ in planned],
        wall - timedelta(minutes=30),
        policy,
    )
    # The burst is armed at once (one transaction, ahead of time), the others one by one.
    burst = LAG_GROUPS[2][0]
    stream, ahead = [], []
    for (name, due, armed), target in zip(planned, targets, strict=True):
        if name == burst:
            ahead.append((target, wall + timedelta(seconds=due)))
        else:
            stream.append((start + armed, target, wall + timedelta(seconds=due)))
    await _arm(conn, *ahead)
    await conn.close()

    # Who fires: the real scheduler, as tracking's main wires it, with the default settings.
    poll = Settings.model_fields["timer_poll_interval_seconds"].default
    batch = Settings.model_fields["timer_batch_size"].default
    parallel = Settings.model_fields["timer_parallel_batches"].default
    pool = await db.create_pool(dsn, max_size=10)  # tracking's own (the default size)
    arming = await db.create_pool(dsn, max_size=1)  # the consumers arming timers
    scheduler = TimerScheduler(
        lambda: pool, poll_interval=poll, batch_size=batch, parallel=parallel, listen_dsn=dsn
    )
    ids = [t[0] for t in targets]
    scheduler.start()
    try:
        behind = await _arm_on_schedule(arming, stream)
        for _ in range(75):  # the last ones fire, or 15 s pass
            if not await pool.fetchval(
                "SELECT count(*) FROM timers WHERE state = 'pending' AND case_id = ANY($1)", ids
            ):
                break
            await asyncio.sleep(0.2)
    finally:
        await scheduler.stop()
        await arming.close()
    async with pool.acquire() as c:
        rows = await c.fetch(
            "SELECT t.case_id, extract(epoch FROM pg_xact_commit_timestamp(o.xmin) - t.due_at)"
            " AS lag FROM timers t JOIN outbox o ON o.key = t.case_id::text"
            " AND o.type = 'case.overdue' WHERE t.case_id = ANY($1::uuid[])",
            ids,
        )
        lag = {r["case_id"]: float(r["lag"]) for r in rows}
        pending = await c.fetchval("SELECT count(*) FROM timers WHERE state = 'pending'")
        plan = await _claim_plan(c, batch)
    await pool.close()
    load = os.getloadavg()[0]
    print(
        f"alert lag     the real TimerScheduler (poll interval {poll} s, batches of {batch}, "
        f"{parallel} at a time) with {pending} timers open; lag = the alert's commit - its "
        f"due time (load average {load:.1f} over the minute of the run):"
    )
    for name, *_ in LAG_GROUPS:
        mine = [
            target[0]
            for (group, _, _), target in zip(planned, targets, strict=True)
            if group == name
        ]
        print(_lag_line(name, [lag[c] for c in mine if c in lag], len(mine)))
    if behind:
        print(
            f"alert lag     WARNING: {behind} timers were armed only after they were due "
            "(the bench fell behind)"
        )
    print("alert lag     the claim's plan (1M pending, a batch due):")
    for line in plan:
        print("                " + line)


def _track_commit_timestamps(pg) -> None:
    """The alert's moment is its commit: PostgreSQL keeps commit times only when asked."""
    psql = [pg._bin("psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-tAc"]
    subprocess.run(
        [*psql, "ALTER SYSTEM SET track_commit_timestamp = on"], check=True, capture_output=True
    )
    pg.stop()
    pg.start()


def main() -> None:
    # one log line per fired timer would drown the figures
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with embedded_postgres("timers") as pg:
        asyncio.run(bench_ticks(pg.dsn("timers")))
    with embedded_postgres("timer_lag") as pg:
        _track_commit_timestamps(pg)
        asyncio.run(bench_alert_lag(pg.dsn("timer_lag")))


if __name__ == "__main__":
    main()
