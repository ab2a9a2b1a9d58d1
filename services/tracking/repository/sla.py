"""SQL for the SLA data: the working calendar's revisions, policy versions, the clocks of
assignments and their approved extensions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.tracking.domain import Clock
from shared.db import Conn
from shared.dto import from_row

# Policy versions are added one at a time: this lock orders concurrent additions.
_POLICY_LOCK = 0x534C_4131  # "SLA1"


# --- the working calendar ------------------------------------------------------------------


async def current_calendar(conn: Conn) -> asyncpg.Record | None:
    """(revision, data, created_at, created_by) of the calendar in use, or None."""
    return await conn.fetchrow(
        "SELECT revision, data, created_at, created_by FROM sla_calendars"
        " ORDER BY revision DESC LIMIT 1"
    )


async def current_calendar_id(conn: Conn) -> tuple[int, datetime] | None:
    """(revision, created_at) of the calendar in use, without its data."""
    row = await conn.fetchrow(
        "SELECT revision, created_at FROM sla_calendars ORDER BY revision DESC LIMIT 1"
    )
    return None if row is None else (row["revision"], row["created_at"])


async def calendar_revision(conn: Conn, revision: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT revision, data, created_at, created_by FROM sla_calendars WHERE revision = $1",
        revision,
    )


async def add_calendar(conn: Conn, data: dict[str, Any], by: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO sla_calendars (data, created_by) VALUES ($1, $2)"
        " RETURNING revision, data, created_at, created_by",
        data,
        by,
    )
    assert row is not None  # RETURNING the row just written
    return row


# --- policy versions -------------------------------------------------------------------------


async def lock_policy_versions(conn: Conn) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _POLICY_LOCK)


async def policy_versions(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT version, effective_from, data, created_at, created_by FROM sla_policy_versions"
        " ORDER BY effective_from"
    )


async def policy_version(conn: Conn, version: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT version, effective_from, data, created_at, created_by FROM sla_policy_versions"
        " WHERE version = $1",
        version,
    )


async def policy_version_id_at(conn: Conn, at: datetime) -> tuple[int, datetime] | None:
    """(version, created_at) of the version in force at ``at``, without its data."""
    row = await conn.fetchrow(
        "SELECT version, created_at FROM sla_policy_versions"
        " WHERE effective_from <= $1 ORDER BY effective_from DESC LIMIT 1",
        at,
    )
    return None if row is None else (row["version"], row["created_at"])


async def add_policy_version(
    conn: Conn, version: int, effective_from: datetime, data: dict[str, Any], by: str
) -> bool:
    return bool(
        await conn.fetchval(
            "INSERT INTO sla_policy_versions (version, effective_from, data, created_by)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            version,
            effective_from,
            data,
            by,
        )
    )


# --- the pinned policy and the end of an assignment ------------------------------------------


async def pin_policy(conn: Conn, assignment_id: UUID, pinned: dict[str, Any]) -> None:
    """Pin once: a replayed dispatch never re-pins (a newer version may be in force by then)."""
    await conn.execute(
        "UPDATE assignments SET policy = $2 WHERE assignment_id = $1 AND policy IS NULL",
        assignment_id,
        pinned,
    )


async def assignment_sla(conn: Conn, assignment_id: UUID) -> asyncpg.Record | None:
    """(policy, dispatched_at, ended_at) of an assignment, locked (its clocks change next)."""
    return await conn.fetchrow(
        "SELECT policy, dispatched_at, ended_at FROM assignments WHERE assignment_id = $1"
        " FOR NO KEY UPDATE",
        assignment_id,
    )


async def end_assignment(conn: Conn, assignment_id: UUID, at: datetime, because: str) -> None:
    await conn.execute(
        "UPDATE assignments SET ended_at = $2, ended_by = $3"
        " WHERE assignment_id = $1 AND ended_at IS NULL",
        assignment_id,
        at,
        because,
    )


# --- clocks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockRow:
    assignment_id: UUID
    clock: Clock
    case_id: UUID
    started_at: datetime
    warn_at: datetime | None
    due_at: datetime
    extension_days: int = 0
    revision: int = 0
    state: str = "running"
    stopped_at: datetime | None = None
    stopped_by: str | None = None


_CLOCK_COLUMNS = (
    "assignment_id, clock, case_id, started_at, warn_at, due_at, extension_days,"
    " revision, state, stopped_at, stopped_by"
)


def _clock_row(r: asyncpg.Record) -> ClockRow:
    return from_row(ClockRow, r, clock=Clock)


async def start_clock(conn: Conn, c: ClockRow) -> bool:
    """Start a clock; False if the assignment has it already (a replayed dispatch)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO clocks (assignment_id, clock, case_id, started_at, warn_at, due_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
            c.assignment_id,
            c.clock.value,
            c.case_id,
            c.started_at,
            c.warn_at,
            c.due_at,
        )
    )


async def stop_clocks(
    conn: Conn, assignment_id: UUID, clocks: list[Clock], at: datetime, because: str
) -> list[Clock]:
    """Stop those of ``clocks`` still running (or paused); return the ones stopped now. A clock
    stopped already by a later fact (结案 heard before 办结: they come on two topics) is moved
    back to this earlier one, so the read model is the same in whatever order they arrive."""
    rows = await conn.fetch(
        "WITH old AS (SELECT assignment_id, clock, state FROM clocks"
        "  WHERE assignment_id = $1 AND clock = ANY($2::text[])"
        "  AND (state <> 'stopped' OR stopped_at > $3) FOR UPDATE)"
        " UPDATE clocks k SET state = 'stopped', stopped_at = $3, stopped_by = $4 FROM old"
        " WHERE k.assignment_id = old.assignment_id AND k.clock = old.clock"
        " RETURNING k.clock, old.state <> 'stopped' AS now",
        assignment_id,
        [c.value for c in clocks],
        at,
        because,
    )
    return [Clock(r["clock"]) for r in rows if r["now"]]


async def stop_case_clocks(
    conn: Conn, case_id: UUID, at: datetime, because: str
) -> list[asyncpg.Record]:
    """Stop every running clock of the case: (assignment_id, clock, department_id) of each
    stopped now; a clock stopped already by a later fact is moved back to this one."""
    rows = await conn.fetch(
        "WITH old AS (SELECT assignment_id, clock, state FROM clocks"
        "  WHERE case_id = $1 AND (state <> 'stopped' OR stopped_at > $2) FOR UPDATE)"
        " UPDATE clocks k SET state = 'stopped', stopped_at = $2, stopped_by = $3"
        " FROM old, assignments a WHERE k.assignment_id = old.assignment_id"
        " AND k.clock = old.clock AND a.assignment_id = k.assignment_id"
        " RETURNING k.assignment_id, k.clock, a.department_id, old.state <> 'stopped' AS now",
        case_id,
        at,
        because,
    )
    return [r for r in rows if r["now"]]


async def lock_clock(conn: Conn, assignment_id: UUID, clock: Clock) -> ClockRow | None:
    row = await conn.fetchrow(
        f"SELECT {_CLOCK_COLUMNS} FROM clocks WHERE assignment_id = $1 AND clock = $2 FOR UPDATE",
        assignment_id,
        clock.value,
    )
    return _clock_row(row) if row else None


async def move_clock(conn: Conn, c: ClockRow) -> None:
    """A new deadline for a clock (its revision already raised by the caller), running or
    paused (挂账/缓办) as ``c.state`` says."""
    await conn.execute(
        "UPDATE clocks SET warn_at = $3, due_at = $4, extension_days = $5, revision = $6,"
        " state = $7 WHERE assignment_id = $1 AND clock = $2",
        c.assignment_id,
        c.clock.value,
        c.warn_at,
        c.due_at,
        c.extension_days,
        c.revision,
        c.state,
    )


async def case_clocks(conn: Conn, case_id: UUID) -> list[ClockRow]:
    rows = await conn.fetch(
        f"SELECT {_CLOCK_COLUMNS} FROM clocks WHERE case_id = $1"
        " ORDER BY started_at, assignment_id, array_position("
        "ARRAY['sign_for', 'on_site', 'resolve'], clock)",
        case_id,
    )
    return [_clock_row(r) for r in rows]


# --- extensions ------------------------------------------------------------------------------


async def add_extension(
    conn: Conn, request_id: UUID, assignment_id: UUID, days: int, at: datetime
) -> bool:
    """Record an approved extension once; False if it was recorded already."""
    return bool(
        await conn.fetchval(
            "INSERT INTO extensions (request_id, assignment_id, days, decided_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            request_id,
            assignment_id,
            days,
            at,
        )
    )


async def extension_days(conn: Conn, assignment_id: UUID) -> list[int]:
    return [
        r["days"]
        for r in await conn.fetch(
            "SELECT days FROM extensions WHERE assignment_id = $1 ORDER BY decided_at",
            assignment_id,
        )
    ]
