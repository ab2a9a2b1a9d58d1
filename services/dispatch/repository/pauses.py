"""Pause requests (挂账/缓办), the supervisors' decisions on them and how each pause ended."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.dispatch.domain import PauseEnd, PauseRequest, PauseState
from services.dispatch.repository.approvals import Requests
from shared.contract import PauseKind
from shared.db import Conn
from shared.dto import from_row


def _request(row: asyncpg.Record) -> PauseRequest:
    return from_row(PauseRequest, row, kind=PauseKind, state=PauseState, ended_how=PauseEnd)


REQUESTS = Requests(
    "pause_requests", ("kind",), ("ended_by", "ended_at", "ended_how", "end_note"), _request
)


async def running(conn: Conn, assignment_id: UUID) -> PauseRequest | None:
    """The assignment's approved pause still running, locked (it is about to end)."""
    row = await conn.fetchrow(
        f"SELECT {REQUESTS.columns} FROM pause_requests r WHERE r.assignment_id = $1"
        " AND r.state = 'approved' FOR UPDATE",
        assignment_id,
    )
    return _request(row) if row else None
