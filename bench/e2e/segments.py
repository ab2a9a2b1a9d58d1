"""Each case's way through the system, read from the four services' databases.

Timestamps (all on the one machine's clock; PostgreSQL ``now()`` is the start of the
transaction that wrote the row, the services' ``datetime.now()`` is taken inside it):

- accepted   intake ``cases.reported_at`` (the report handler's now, in its transaction)
- whistle    intake ``outbox.created_at`` of the case's ``case.whistled`` event (the whistle
             transaction; the row is kept 72 h after it was sent)
- assignment dispatch ``assignments.dispatched_at`` (the routing consumer's transaction),
             the last of the case's departments
- clocks     tracking ``timers.created_at`` (clocks armed on ``case.dispatched``), the last
             assignment's
- inbox      notify ``inbox_messages.created_at`` of ``case.dispatched`` for a recipient of
             kind 'department' of that department, the last of the case's departments

A case is complete when every department the routing rules send it to has its assignment,
its clocks and its message in the department's inbox.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from bench.e2e.stats import summary

SEGMENTS = (
    ("accepted→whistle", "accepted", "whistle"),
    ("whistle→assignment", "whistle", "assignment"),
    ("whistle→clocks", "whistle", "clocks"),
    ("whistle→dept inbox", "whistle", "inbox"),
    ("assignment→clocks", "assignment", "clocks"),
    ("assignment→dept inbox", "assignment", "inbox"),
    ("accepted→dept inbox", "accepted", "inbox"),
)


@dataclass
class Trace:
    case_id: UUID
    departments: frozenset[str]
    accepted: datetime | None = None
    whistle: datetime | None = None
    assignment: datetime | None = None
    clocks: datetime | None = None
    inbox: datetime | None = None
    assigned: set[str] = field(default_factory=set)
    clocked: int = 0
    informed: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        return (
            self.departments <= self.assigned
            and self.clocked >= len(self.departments)
            and self.departments <= self.informed
        )


class Reader:
    """Connections to the four databases, and the queries over a list of case ids."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.conns: dict[str, asyncpg.Connection] = {}

    async def __aenter__(self) -> Reader:
        for s in ("intake", "dispatch", "tracking", "notify"):
            self.conns[s] = await asyncpg.connect(self.stack.dsn(s))
        return self

    async def __aexit__(self, *exc) -> None:
        for c in self.conns.values():
            await c.close()

    async def progress(self, ids: list[UUID]) -> tuple[int, int, int]:
        """(assignments, cases with clocks, department inbox messages) for ``ids``: cheap
        counts to see the backlog shrink."""
        a, c, n = await asyncio.gather(
            self.conns["dispatch"].fetchval(
                "SELECT count(*) FROM assignments WHERE case_id = ANY($1::uuid[])", ids
            ),
            self.conns["tracking"].fetchval(
                "SELECT count(DISTINCT assignment_id) FROM timers WHERE case_id = ANY($1::uuid[])",
                ids,
            ),
            self.conns["notify"].fetchval(
                "SELECT count(DISTINCT (m.case_id, r.department_id)) FROM inbox_messages m"
                " JOIN recipients r ON r.id = m.recipient_id AND r.kind = 'department'"
                " WHERE m.type = 'case.dispatched' AND m.case_id = ANY($1::uuid[])",
                ids,
            ),
        )
        return a, c, n

    async def traces(self, cases: dict[UUID, frozenset[str]]) -> list[Trace]:
        ids = list(cases)
        traces = {i: Trace(i, d) for i, d in cases.items()}
        intake, dispatch, tracking, notify = (
            self.conns[s] for s in ("intake", "dispatch", "tracking", "notify")
        )
        reported = await intake.fetch(
            "SELECT id, reported_at FROM cases WHERE id = ANY($1::uuid[])", ids
        )
        rows = await asyncio.gather(
            intake.fetch(
                "SELECT key::uuid AS case_id, min(created_at) AS at FROM outbox"
                " WHERE type = 'case.whistled' AND key = ANY($1::text[])"
                " GROUP BY key",
                [str(i) for i in ids],
            ),
            dispatch.fetch(
                "SELECT case_id, department_id, dispatched_at FROM assignments"
                " WHERE case_id = ANY($1::uuid[])",
                ids,
            ),
            tracking.fetch(
                "SELECT case_id, assignment_id, min(created_at) AS at FROM timers"
                " WHERE case_id = ANY($1::uuid[]) GROUP BY case_id, assignment_id",
                ids,
            ),
            notify.fetch(
                "SELECT m.case_id, r.department_id, min(m.created_at) AS at"
                " FROM inbox_messages m"
                " JOIN recipients r ON r.id = m.recipient_id AND r.kind = 'department'"
                " WHERE m.type = 'case.dispatched' AND m.case_id = ANY($1::uuid[])"
                " GROUP BY m.case_id, r.department_id",
                ids,
            ),
        )
        whistled, assigned, clocked, informed = rows
        for r in reported:
            traces[r["id"]].accepted = r["reported_at"]
        for r in whistled:
            traces[r["case_id"]].whistle = r["at"]
        for r in assigned:
            t = traces[r["case_id"]]
            t.assigned.add(r["department_id"])
            t.assignment = max(filter(None, (t.assignment, r["dispatched_at"])))
        for r in clocked:
            t = traces[r["case_id"]]
            t.clocked += 1
            t.clocks = max(filter(None, (t.clocks, r["at"])))
        for r in informed:
            t = traces[r["case_id"]]
            t.informed.add(r["department_id"])
            t.inbox = max(filter(None, (t.inbox, r["at"])))
        return list(traces.values())

    async def events_per_case(self, ids: list[UUID]) -> dict[str, float]:
        """Events each service published per case (its outbox rows keyed by the case)."""
        keys = [str(i) for i in ids]
        out = {}
        for s, conn in self.conns.items():
            n = await conn.fetchval("SELECT count(*) FROM outbox WHERE key = ANY($1::text[])", keys)
            out[s] = n / len(ids) if ids else 0.0
        return out

    async def commits(self) -> dict[str, int]:
        """xact_commit of every database (pg_stat_database: flushed by each backend at
        most once a second, and by idle ones within ~10 s), and the transaction-id counter
        (one per writing transaction, exact)."""
        conn = self.conns["intake"]
        rows = await conn.fetch(
            "SELECT datname, xact_commit FROM pg_stat_database WHERE datname LIKE 'whistle_%'"
        )
        out = {r["datname"].removeprefix("whistle_"): r["xact_commit"] for r in rows}
        # The next transaction id to be given out: reading it gives none out.
        out["xid"] = await conn.fetchval(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
        )
        return out


def segment_stats(traces: list[Trace]) -> dict[str, dict]:
    out = {}
    for name, a, b in SEGMENTS:
        ms = [
            (getattr(t, b) - getattr(t, a)).total_seconds() * 1000
            for t in traces
            if getattr(t, a) is not None and getattr(t, b) is not None
        ]
        out[name] = summary(ms)
    return out


async def wait_for_drain(
    reader: Reader, cases: dict[UUID, frozenset[str]], *, cap: float, stall: float, say
) -> tuple[bool, float]:
    """Wait until every case reached all its departments (assignments, clocks, inbox), or
    nothing moved for ``stall`` seconds, or ``cap`` seconds passed. (drained, seconds)."""
    ids = list(cases)
    want = sum(len(d) for d in cases.values())
    started = last_move = time.monotonic()
    best = (-1, -1, -1)
    next_say = started + 10
    while True:
        got = await reader.progress(ids)
        now = time.monotonic()
        if all(g >= want for g in got):
            return True, now - started
        if got != best:
            best, last_move = got, now
        if now - last_move >= stall or now - started >= cap:
            return False, now - started
        if now >= next_say:
            say(
                f"    draining: {got[0]}/{want} assignments, {got[1]}/{want} with clocks, "
                f"{got[2]}/{want} department inbox messages ({now - started:.0f} s)"
            )
            next_say = now + 10
        await asyncio.sleep(0.5)
