"""Who is alive among the workers sharing a table of leased claims (the outbox relays,
notify's delivery workers).

A worker holds a session advisory lock (two-key form: ``SPACE``, ``hashtext`` of its id) on
a dedicated connection for as long as it runs. PostgreSQL drops the lock with the session,
so when the process dies — even when a restart follows at once — its claims are free on
the next round instead of after their lease. A frozen process, or a host gone without
closing its session, keeps the lock: the lease still decides there. A connection pooler in
front of PostgreSQL must give these connections a session (as LISTEN needs anyway).

A worker claims under ``claimant(id, held=...)``: its id while it holds its liveness, and
``~`` + its id while it does not (not started, or its connection is down) — such a claim
says nothing about liveness, so only its lease frees it; otherwise two workers without
their locks would take each other's rows over and over.

In SQL: put ``LIVE_CTE`` first in a statement's WITH list, then ``dead("t.claimed_by")``
is true for a claim whose worker's session is gone. ``pg_locks`` is read once per statement.
"""

from __future__ import annotations

import asyncio

import structlog

from shared import db
from shared.db import Conn

log = structlog.get_logger()

SPACE = 0x57484953  # "WHIS"

LIVE_CTE = f"""live AS MATERIALIZED (
    SELECT objid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 2
      AND classid = {SPACE}::int4::oid
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)"""


NO_LIVENESS = "~"


def claimant(worker_id: str, *, held: bool) -> str:
    """The name a worker's claims go under (see above)."""
    return worker_id if held else NO_LIVENESS + worker_id


def dead(column: str) -> str:
    """SQL: the claim in ``column`` was made with a liveness that is gone (``LIVE_CTE``)."""
    return (
        f"({column} NOT LIKE '{NO_LIVENESS}%'"
        f" AND hashtext({column})::oid NOT IN (SELECT objid FROM live))"
    )


def alive(column: str) -> str:
    """SQL: the claim in ``column`` may still be worked on: its worker holds its liveness,
    or it was made without one (then only the lease tells)."""
    return f"(NOT {dead(column)})"


async def hold(conn: Conn, worker_id: str) -> None:
    """Mark ``worker_id`` alive for as long as ``conn``'s session lasts."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", SPACE, worker_id):
        # Another live worker's id hashes alike (1 in 2^32): it keeps this one's claims
        # alive as well, which only means the lease decides, as it did before.
        log.warning("liveness_shared", worker_id=worker_id)


async def keep(
    dsn: str, worker_id: str, *, stopping: asyncio.Event, held: asyncio.Event, retry_interval: float
) -> None:
    """Hold ``worker_id``'s liveness on a dedicated connection until ``stopping`` is set (or
    the task is cancelled), reconnecting when it drops; ``held`` tells whether it is held."""

    async def setup(conn: Conn) -> None:
        await hold(conn, worker_id)

    await db.session(
        dsn,
        setup,
        name="liveness",
        fields={"worker_id": worker_id},
        stopping=stopping,
        retry_interval=retry_interval,
        connected=held.set,
        disconnected=held.clear,
    )
