"""Extension requests (延期申请) and the supervisors' decisions on them."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.dispatch.domain import ExtensionRequest, ExtensionState
from services.dispatch.repository.scope import _in_areas, area_scope

_COLUMNS = (
    "e.id, e.assignment_id, e.case_id, e.department_id, e.days, e.reason, e.state,"
    " e.requested_by, e.requested_at, e.decided_by, e.decided_at, e.granted_days, e.comment"
)


def _request(row: asyncpg.Record) -> ExtensionRequest:
    return ExtensionRequest(**{**dict(row), "state": ExtensionState(row["state"])})


async def insert(conn: asyncpg.Connection, e: ExtensionRequest) -> bool:
    """False when the assignment already has a pending request (a concurrent one won)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO extension_requests (id, assignment_id, case_id, department_id, days,"
            " reason, state, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
            " $9) ON CONFLICT (assignment_id) WHERE state = 'pending' DO NOTHING RETURNING true",
            e.id,
            e.assignment_id,
            e.case_id,
            e.department_id,
            e.days,
            e.reason,
            e.state.value,
            e.requested_by,
            e.requested_at,
        )
    )


async def has_pending(conn: asyncpg.Connection, assignment_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM extension_requests WHERE assignment_id = $1 AND state = 'pending'",
            assignment_id,
        )
    )


async def get(
    conn: asyncpg.Connection, request_id: UUID, *, lock: bool = False
) -> ExtensionRequest | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM extension_requests e WHERE e.id = $1"
        + (" FOR UPDATE" if lock else ""),
        request_id,
    )
    return _request(row) if row else None


async def decide(conn: asyncpg.Connection, e: ExtensionRequest) -> None:
    await conn.execute(
        "UPDATE extension_requests SET state = $2, decided_by = $3, decided_at = $4,"
        " granted_days = $5, comment = $6 WHERE id = $1",
        e.id,
        e.state.value,
        e.decided_by,
        e.decided_at,
        e.granted_days,
        e.comment,
    )


async def of_assignment(conn: asyncpg.Connection, assignment_id: UUID) -> list[ExtensionRequest]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM extension_requests e WHERE e.assignment_id = $1"
        " ORDER BY e.requested_at, e.id",
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
) -> list[ExtensionRequest]:
    """Oldest first; with ``areas``, only cases inside the subtrees; with ``department_id``,
    only that department's requests."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM extension_requests e"
        " JOIN assignments a ON a.id = e.assignment_id"
        " WHERE ($1::text IS NULL OR e.state = $1) AND ($2::text IS NULL OR e.department_id = $2)"
        f" AND {_in_areas('a.area_path', 5, 6)}"
        " ORDER BY e.requested_at, e.id LIMIT $3 OFFSET $4",
        state,
        department_id,
        limit,
        offset,
        *area_scope(areas),
    )
    return [_request(r) for r in rows]
