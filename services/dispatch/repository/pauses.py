"""Pause requests (挂账/缓办), the supervisors' decisions on them and how each pause ended."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.dispatch.domain import PauseEnd, PauseRequest, PauseState
from services.dispatch.repository.scope import _in_areas, area_scope
from shared.contract import PauseKind

_COLUMNS = (
    "p.id, p.assignment_id, p.case_id, p.department_id, p.kind, p.reason, p.state,"
    " p.requested_by, p.requested_at, p.decided_by, p.decided_at, p.comment, p.ended_by,"
    " p.ended_at, p.ended_how, p.end_note"
)


def _request(row: asyncpg.Record) -> PauseRequest:
    return PauseRequest(
        **{
            **dict(row),
            "kind": PauseKind(row["kind"]),
            "state": PauseState(row["state"]),
            "ended_how": PauseEnd(row["ended_how"]) if row["ended_how"] else None,
        }
    )


async def insert(conn: asyncpg.Connection, p: PauseRequest) -> bool:
    """False when the assignment already has a pending request (a concurrent one won)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO pause_requests (id, assignment_id, case_id, department_id, kind, reason,"
            " state, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (assignment_id) WHERE state = 'pending' DO NOTHING RETURNING true",
            p.id,
            p.assignment_id,
            p.case_id,
            p.department_id,
            p.kind.value,
            p.reason,
            p.state.value,
            p.requested_by,
            p.requested_at,
        )
    )


async def has_pending(conn: asyncpg.Connection, assignment_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM pause_requests WHERE assignment_id = $1 AND state = 'pending'",
            assignment_id,
        )
    )


async def get(
    conn: asyncpg.Connection, request_id: UUID, *, lock: bool = False
) -> PauseRequest | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM pause_requests p WHERE p.id = $1"
        + (" FOR UPDATE" if lock else ""),
        request_id,
    )
    return _request(row) if row else None


async def running(conn: asyncpg.Connection, assignment_id: UUID) -> PauseRequest | None:
    """The assignment's approved pause still running, locked (it is about to end)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM pause_requests p WHERE p.assignment_id = $1"
        " AND p.state = 'approved' FOR UPDATE",
        assignment_id,
    )
    return _request(row) if row else None


async def save(conn: asyncpg.Connection, p: PauseRequest) -> None:
    """Write back a decision or an end."""
    await conn.execute(
        "UPDATE pause_requests SET state = $2, decided_by = $3, decided_at = $4, comment = $5,"
        " ended_by = $6, ended_at = $7, ended_how = $8, end_note = $9 WHERE id = $1",
        p.id,
        p.state.value,
        p.decided_by,
        p.decided_at,
        p.comment,
        p.ended_by,
        p.ended_at,
        p.ended_how.value if p.ended_how else None,
        p.end_note,
    )


async def of_assignment(conn: asyncpg.Connection, assignment_id: UUID) -> list[PauseRequest]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM pause_requests p WHERE p.assignment_id = $1"
        " ORDER BY p.requested_at, p.id",
        assignment_id,
    )
    return [_request(r) for r in rows]


async def listing(
    conn: asyncpg.Connection,
    *,
    state: str | None,
    department_id: str | None,
    areas: tuple[str, ...] | None,
    limit: int,
    offset: int,
) -> list[PauseRequest]:
    """Oldest first; with ``areas``, only cases inside the subtrees; with ``department_id``,
    only that department's requests."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM pause_requests p"
        " JOIN assignments a ON a.id = p.assignment_id"
        " WHERE ($1::text IS NULL OR p.state = $1) AND ($2::text IS NULL OR p.department_id = $2)"
        f" AND {_in_areas('a.area_path', 5, 6)}"
        " ORDER BY p.requested_at, p.id LIMIT $3 OFFSET $4",
        state,
        department_id,
        limit,
        offset,
        *area_scope(areas),
    )
    return [_request(r) for r in rows]
