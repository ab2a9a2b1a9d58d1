"""The promise, checked from the four databases (asyncpg, read only): for every accepted
case, one case per Idempotency-Key (intake), exactly one assignment per routed department
(dispatch), its clocks with their timers (tracking), exactly one delivery per recipient ×
channel of each dispatch (notify); every outbox sent, every consumer group caught up.

``converge`` polls until all of it holds (bounded) and returns the figures; on timeout it
fails with what is still missing or doubled, case by case."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import asyncpg

from tests.faults.load import Case

# The clocks tracking runs for a normal-priority assignment under the demo SLA policies.
CLOCKS = frozenset({"sign_for", "resolve"})
SERVICES = ("intake", "dispatch", "tracking", "notify")

# (attribute, column title) of a row of the results table.
ROW_COLUMNS = [
    ("scenario", "scenario"),
    ("faults", "faults"),
    ("accepted", "cases accepted"),
    ("assignments", "assignments"),
    ("clocks", "clocks"),
    ("deliveries", "deliveries"),
    ("duplicates", "duplicates"),
    ("dead_letters", "dead letters"),
    ("parked", "parked"),
    ("converge", "converged in"),
    ("result", "result"),
]


@dataclass
class Row:
    scenario: str
    faults: str = ""
    accepted: int = 0
    assignments: int = 0
    clocks: int = 0
    deliveries: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    parked: int = 0
    converge: str = "-"
    result: str = "FAILED"
    notes: str = ""


@dataclass
class Snapshot:
    problems: list[str] = field(default_factory=list)
    assignments: int = 0
    clocks: int = 0
    timers: int = 0
    deliveries: int = 0
    duplicates: int = 0
    parked: int = 0
    outbox_parked: int = 0


async def _fetch(dsn: str, sql: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def parked_ids(stack) -> dict[str, int]:
    """The highest parked_events id of each service (a baseline: later rows are new)."""
    out = {}
    for s in SERVICES:
        rows = await _fetch(stack.dsn(s), "SELECT coalesce(max(id), 0) AS m FROM parked_events")
        out[s] = rows[0]["m"]
    return out


async def snapshot(
    stack, cases: list[Case], *, parked_since: dict[str, int] | None = None, lag: bool = True
) -> Snapshot:
    snap = Snapshot()
    problems = snap.problems
    accepted = [c for c in cases if c.case_id is not None]
    ids = [c.case_id for c in accepted]
    keys = [c.key for c in cases]

    # intake: one case per Idempotency-Key, whistled ones past 'reported'
    rows = await _fetch(
        stack.dsn("intake"),
        "SELECT id::text, split_part(description, ' ', 3) AS key, status FROM cases"
        " WHERE description LIKE '压测 fault-load %' AND split_part(description, ' ', 3) = ANY($1)",
        keys,
    )
    per_key = Counter(r["key"] for r in rows)
    status = {r["id"]: r["status"] for r in rows}
    for c in cases:
        n = per_key.get(c.key, 0)
        if n > 1:
            snap.duplicates += n - 1
            problems.append(f"intake: {n} cases for Idempotency-Key {c.key}")
        elif n == 0 and c.case_id is not None:
            problems.append(f"intake: accepted case {c.case_id} ({c.key}) not found")
        elif c.case_id is None and n == 1 and c.error is None:
            problems.append(f"intake: case for {c.key} exists but the load never saw it accepted")
    for c in accepted:
        if c.whistled and status.get(c.case_id) == "reported":
            problems.append(f"intake: case {c.case_id} whistled (2xx) but still 'reported'")

    # dispatch: exactly one assignment per routed department
    rows = await _fetch(
        stack.dsn("dispatch"),
        "SELECT id::text, case_id::text, department_id FROM assignments"
        " WHERE case_id = ANY($1::uuid[])",
        ids,
    )
    assigned: dict[str, Counter[str]] = defaultdict(Counter)
    assignment_ids: dict[tuple[str, str], str] = {}
    for r in rows:
        assigned[r["case_id"]][r["department_id"]] += 1
        assignment_ids[(r["case_id"], r["department_id"])] = r["id"]
    snap.assignments = len(rows)
    for c in accepted:
        got = assigned.get(c.case_id, Counter())
        want = c.departments if c.whistled else frozenset()
        for d in sorted(want - set(got)):
            problems.append(f"dispatch: case {c.case_id} has no assignment for {d}")
        for d, n in sorted(got.items()):
            if n > 1:
                snap.duplicates += n - 1
                problems.append(f"dispatch: case {c.case_id} has {n} assignments for {d}")
            if d not in want:
                problems.append(f"dispatch: case {c.case_id} assigned to unexpected {d}")

    # tracking: the same assignments, each with its clocks and a timer per clock
    rows = await _fetch(
        stack.dsn("tracking"),
        "SELECT a.assignment_id::text, a.case_id::text, a.department_id,"
        "  coalesce((SELECT array_agg(clock) FROM clocks k"
        "            WHERE k.assignment_id = a.assignment_id), '{}') AS clocks,"
        "  coalesce((SELECT array_agg(DISTINCT clock) FROM timers t"
        "            WHERE t.assignment_id = a.assignment_id), '{}') AS timed,"
        "  (SELECT count(*) FROM timers t WHERE t.assignment_id = a.assignment_id) AS timers"
        " FROM assignments a WHERE a.case_id = ANY($1::uuid[])",
        ids,
    )
    tracked = {r["assignment_id"]: r for r in rows}
    for (case_id, dept), aid in sorted(assignment_ids.items()):
        r = tracked.get(aid)
        if r is None:
            problems.append(f"tracking: no assignment {aid} (case {case_id}, {dept})")
            continue
        clocks = Counter(r["clocks"])
        snap.clocks += len(r["clocks"])
        snap.timers += r["timers"]
        if set(clocks) != CLOCKS or max(clocks.values()) > 1:
            problems.append(
                f"tracking: assignment {aid} (case {case_id}, {dept}) has clocks "
                f"{sorted(r['clocks'])}, wanted {sorted(CLOCKS)}"
            )
        if not set(r["timed"]) >= CLOCKS:
            problems.append(
                f"tracking: assignment {aid} (case {case_id}) has timers only for "
                f"{sorted(r['timed'])}"
            )
    extra = set(tracked) - set(assignment_ids.values())
    for aid in sorted(extra):
        problems.append(f"tracking: assignment {aid} unknown to dispatch")

    # notify: exactly one delivery per recipient × channel of each dispatch (the duty desk)
    rows = await _fetch(
        stack.dsn("notify"),
        "SELECT case_id::text, recipient_id, channel, count(*) AS n,"
        "  count(DISTINCT event_id) AS events FROM deliveries"
        " WHERE case_id = ANY($1::uuid[]) AND type = 'case.dispatched'"
        " GROUP BY 1, 2, 3",
        ids,
    )
    delivered = {(r["case_id"], r["recipient_id"], r["channel"]): r for r in rows}
    snap.deliveries = sum(r["n"] for r in rows)
    for case_id, dept in sorted(assignment_ids):
        r = delivered.get((case_id, f"duty-{dept}", "inbox"))
        if r is None:
            problems.append(f"notify: no inbox delivery to duty-{dept} for case {case_id}")
        elif r["n"] != 1:
            snap.duplicates += r["n"] - 1
            problems.append(
                f"notify: {r['n']} inbox deliveries to duty-{dept} for case "
                f"{case_id} ({r['events']} events)"
            )

    # outboxes: everything sent; parked rows and parked events counted
    for s in SERVICES:
        unsent, parked_rows = (
            await _fetch(
                stack.dsn(s),
                "SELECT count(*) FILTER (WHERE sent_at IS NULL) AS unsent,"
                " count(*) FILTER (WHERE parked_at IS NOT NULL AND sent_at IS NULL) AS parked"
                " FROM outbox",
            )
        )[0]
        snap.outbox_parked += parked_rows
        if unsent:
            problems.append(f"{s}: {unsent} outbox rows unsent ({parked_rows} parked)")
        if parked_since is not None:
            n = (
                await _fetch(
                    stack.dsn(s),
                    "SELECT count(*) AS n FROM parked_events WHERE id > $1",
                    parked_since[s],
                )
            )[0]["n"]
            snap.parked += n
    if lag:
        for where, n in sorted((await stack.backlog()).items()):
            problems.append(f"lag: {where}: {n}")
    return snap


async def converge(
    stack, cases: list[Case], *, timeout: float = 120.0, parked_since: dict[str, int] | None = None
) -> tuple[Snapshot, float, str]:
    """Poll until the invariants hold; return the last snapshot, the seconds it took and
    the failure: empty when they hold, else the differences after ``timeout``."""
    started = time.monotonic()
    while True:
        try:
            snap = await snapshot(stack, cases, parked_since=parked_since)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            snap = Snapshot(problems=[f"unreachable: {exc!r}"])
        waited = time.monotonic() - started
        if not snap.problems:
            return snap, waited, ""
        if waited > timeout:
            return snap, waited, explain(snap, timeout)
        await asyncio.sleep(1.0)


def explain(snap: Snapshot, timeout: float) -> str:
    kinds = Counter(p.split(":", 1)[0] for p in snap.problems)
    head = ", ".join(f"{k}: {n}" for k, n in kinds.most_common())
    shown = "\n  ".join(snap.problems[:40])
    more = f"\n  … and {len(snap.problems) - 40} more" if len(snap.problems) > 40 else ""
    return (
        f"not converged after {timeout:.0f}s ({len(snap.problems)} problems; {head}):"
        f"\n  {shown}{more}"
    )
