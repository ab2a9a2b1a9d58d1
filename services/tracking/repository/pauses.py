"""SQL for approved pauses (挂账/缓办), keyed by dispatch's request id, and the clocks that
stand still while one runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.tracking.domain import Clock
from services.tracking.repository.sla import _CLOCK_COLUMNS, ClockRow, _clock_row
from shared.db import Conn
from shared.dto import from_row


@dataclass(frozen=True)
class PauseRow:
    request_id: UUID
    assignment_id: UUID
    case_id: UUID
    kind: str | None  # hang (挂账) or defer (缓办); None: only the resume heard yet
    reason: str | None
    started_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None  # case.resumed, or the event that stopped the clocks


_COLUMNS = "request_id, assignment_id, case_id, kind, reason, started_at, ended_at, ended_by"


def _row(r: asyncpg.Record | None) -> PauseRow | None:
    return from_row(PauseRow, r) if r else None


async def record_start(
    conn: Conn,
    request_id: UUID,
    assignment_id: UUID,
    case_id: UUID,
    kind: str,
    reason: str,
    at: datetime,
) -> PauseRow | None:
    """Record an approved pause's start, once: the row when this call recorded it (its end
    is already there if the resume came first), None for a decision heard before."""
    return _row(
        await conn.fetchrow(
            "INSERT INTO pauses (request_id, assignment_id, case_id, kind, reason, started_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_id) DO UPDATE"
            " SET kind = EXCLUDED.kind, reason = EXCLUDED.reason, started_at = EXCLUDED.started_at"
            f" WHERE pauses.started_at IS NULL RETURNING {_COLUMNS}",
            request_id,
            assignment_id,
            case_id,
            kind,
            reason,
            at,
        )
    )


async def record_end(
    conn: Conn,
    request_id: UUID,
    assignment_id: UUID,
    case_id: UUID,
    at: datetime,
    because: str,
) -> PauseRow | None:
    """Record a pause's end, once: the row when this call ended it (``started_at`` None if
    its decision has not been heard yet), None when it had ended already."""
    return _row(
        await conn.fetchrow(
            "INSERT INTO pauses (request_id, assignment_id, case_id, ended_at, ended_by)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO UPDATE"
            " SET ended_at = greatest(EXCLUDED.ended_at, pauses.started_at),"
            " ended_by = EXCLUDED.ended_by"
            f" WHERE pauses.ended_at IS NULL RETURNING {_COLUMNS}",
            request_id,
            assignment_id,
            case_id,
            at,
            because,
        )
    )


async def end_running(
    conn: Conn,
    at: datetime,
    because: str,
    *,
    assignment_id: UUID | None = None,
    case_id: UUID | None = None,
) -> int:
    """The clocks stopped (办结, 转办, 结案…) while a pause ran: it ends with them."""
    status = await conn.execute(
        "UPDATE pauses SET ended_at = greatest($1, started_at), ended_by = $2"
        " WHERE ended_at IS NULL AND started_at IS NOT NULL"
        " AND (assignment_id = $3 OR case_id = $4)",
        at,
        because,
        assignment_id,
        case_id,
    )
    return int(status.split()[-1])


async def of_assignment(conn: Conn, assignment_id: UUID) -> list[PauseRow]:
    """The assignment's pauses that started (an approval heard), oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM pauses WHERE assignment_id = $1 AND started_at IS NOT NULL"
        " ORDER BY started_at, request_id",
        assignment_id,
    )
    return [PauseRow(**dict(r)) for r in rows]


async def of_case(conn: Conn, case_id: UUID) -> list[PauseRow]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM pauses WHERE case_id = $1 AND started_at IS NOT NULL"
        " ORDER BY started_at, request_id",
        case_id,
    )
    return [PauseRow(**dict(r)) for r in rows]


async def pause_clocks(conn: Conn, assignment_id: UUID) -> list[Clock]:
    """The running clocks of the assignment stand still; the ones that did."""
    rows = await conn.fetch(
        "UPDATE clocks SET state = 'paused' WHERE assignment_id = $1 AND state = 'running'"
        " RETURNING clock",
        assignment_id,
    )
    return [Clock(r["clock"]) for r in rows]


async def lock_clocks(conn: Conn, assignment_id: UUID, states: tuple[str, ...]) -> list[ClockRow]:
    """The assignment's clocks in those states, locked (their deadlines move next)."""
    rows = await conn.fetch(
        f"SELECT {_CLOCK_COLUMNS} FROM clocks WHERE assignment_id = $1"
        " AND state = ANY($2::text[]) ORDER BY clock FOR UPDATE",
        assignment_id,
        list(states),
    )
    return [_clock_row(r) for r in rows]
