"""Who is alive among the workers sharing a table of leased claims (the outbox relays,
notify's delivery workers).

A worker holds a session advisory lock (two-key form: ``SPACE``, ``hashtext`` of its id) on
a dedicated connection for as long as it runs. PostgreSQL drops the lock with the session,
so when the process dies — even when a restart follows at once — its claims are free on
the next round instead of after their lease. A frozen process, or a host gone without
closing its session, keeps the lock: the lease still decides there. A connection pooler in
front of PostgreSQL must give these connections a session (as LISTEN needs anyway).

Claims name their worker in one of two ways, chosen by the claim statement itself
(``claim_name``): ``+`` + its id while its lock shows in ``pg_locks`` — a claim that dies
with the worker's session — and the bare id otherwise (not started, its connection down,
or a worker of a release before this one): such a claim says nothing about liveness, and
only its lease frees it. So a worker never loses a claim to its own lost connection in a
loop, and a rolling upgrade does not make the old workers' claims look dead.

In SQL: put ``LIVE_CTE`` first in a statement's WITH list; ``claim_name("$n")`` is the
name to claim under, ``mine(col, "$n")`` matches this worker's claims either way, and
``dead(col)`` is true for a claim whose worker's session is gone. ``pg_locks`` is read once
per statement.
"""

from __future__ import annotations

import asyncio
import contextlib

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


TRACKED = "+"


def claim_name(worker_id: str) -> str:
    """SQL: the name to claim under, for the worker id in parameter ``worker_id``."""
    return (
        f"(CASE WHEN hashtext({worker_id}::text)::oid IN (SELECT objid FROM live)"
        f" THEN '{TRACKED}' || {worker_id}::text ELSE {worker_id}::text END)"
    )


def mine(column: str, worker_id: str) -> str:
    """SQL: the claim in ``column`` is the worker's in parameter ``worker_id``."""
    return f"({column} IN ({worker_id}::text, '{TRACKED}' || {worker_id}::text))"


def dead(column: str) -> str:
    """SQL: the claim in ``column`` was made with a liveness that is gone."""
    return (
        f"({column} LIKE '{TRACKED}%'"
        f" AND hashtext(substr({column}, 2))::oid NOT IN (SELECT objid FROM live))"
    )


def alive(column: str) -> str:
    """SQL: the claim in ``column`` may still be worked on: its worker holds its liveness,
    or it was made without one (then only the lease tells)."""
    return f"(NOT {dead(column)})"


async def hold(conn: Conn, worker_id: str) -> bool:
    """Mark ``worker_id`` alive for as long as ``conn``'s session lasts; False if another
    session holds the lock already (this worker's own, not yet gone at the server, or an id
    hashing alike, 1 in 2^32): the claims then name it as tracked while that session lasts,
    and are taken over once when it ends."""
    held = bool(
        await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", SPACE, worker_id)
    )
    if not held:
        log.warning("liveness_held_elsewhere", worker_id=worker_id)
    return held


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


async def first_held(held: asyncio.Event, within: float) -> None:
    """Wait (at most ``within`` seconds) until the liveness is first held, so a worker does not
    start claiming under a lease-only name; a database away for longer is the worker's own
    error path."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await held.wait()
