"""SQL for the timeline, the case read model and assignments: one function per query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.tracking.domain import AssignmentState, CaseStatus, CaseView
from shared.contract import Envelope, EventPayload
from shared.db import Conn
from shared.dto import from_row

# --- timeline ---------------------------------------------------------------------------


_APPEND_EVENT = (
    "INSERT INTO case_events (event_id, case_id, type, version, occurred_at, producer,"
    " correlation_id, causation_id, actor, payload)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id) DO NOTHING"
)


def _event_row(event: Envelope[EventPayload]) -> tuple[Any, ...]:
    return (
        event.event_id,
        event.case_id,
        event.type,
        event.version,
        event.occurred_at,
        event.producer,
        event.correlation_id,
        event.causation_id,
        event.actor.model_dump(mode="json") if event.actor else None,
        event.payload.model_dump(mode="json"),
    )


async def append_event(conn: Conn, event: Envelope[EventPayload]) -> bool:
    """Add an event to its case's timeline; False if it was there already."""
    return bool(await conn.fetchval(_APPEND_EVENT + " RETURNING true", *_event_row(event)))


async def append_events(conn: Conn, events: list[Envelope[EventPayload]]) -> None:
    """Add events to their cases' timelines in one round trip (one already there is skipped)."""
    if events:
        await conn.executemany(_APPEND_EVENT, [_event_row(e) for e in events])


async def timeline(conn: Conn, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT event_id, type, version, occurred_at, producer, correlation_id, causation_id,"
        " actor, payload, recorded_at FROM case_events WHERE case_id = $1"
        " ORDER BY occurred_at, seq",
        case_id,
    )


# --- the case read model ------------------------------------------------------------------

_CASE_COLUMNS = "case_no, area_path, category, priority, status, updated_at"


def case_view(r: asyncpg.Record) -> CaseView:
    return from_row(CaseView, r, status=CaseStatus)


async def insert_case(conn: Conn, case_id: UUID, view: CaseView) -> bool:
    """Create the case from its first event; False if it exists (then lock and merge)."""
    return bool(
        await conn.fetchval(
            f"INSERT INTO cases (case_id, {_CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (case_id) DO NOTHING RETURNING true",
            case_id,
            *_case_values(view),
        )
    )


async def get_case(conn: Conn, case_id: UUID, *, lock: bool = False) -> CaseView | None:
    row = await conn.fetchrow(
        f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = $1"
        + (" FOR NO KEY UPDATE" if lock else ""),
        case_id,
    )
    return case_view(row) if row else None


async def update_case(conn: Conn, case_id: UUID, view: CaseView) -> None:
    await conn.execute(
        "UPDATE cases SET case_no = $2, area_path = $3, category = $4, priority = $5,"
        " status = $6, updated_at = $7 WHERE case_id = $1",
        case_id,
        *_case_values(view),
    )


def _case_values(view: CaseView) -> tuple[str, str, str, str, str, datetime]:
    """The view's values in the order of ``_CASE_COLUMNS``."""
    return (
        view.case_no,
        view.area_path,
        view.category,
        view.priority,
        view.status.value,
        view.updated_at,
    )


# --- assignments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentRow:
    assignment_id: UUID
    case_id: UUID
    department_id: str
    department_name: str | None
    role: str | None
    state: AssignmentState
    dispatched_at: datetime | None = None
    signed_for_at: datetime | None = None
    resolved_at: datetime | None = None


_ASSIGNMENT_COLUMNS = (
    "assignment_id, case_id, department_id, department_name, role, state,"
    " dispatched_at, signed_for_at, resolved_at"
)


async def insert_assignment(conn: Conn, a: AssignmentRow) -> bool:
    """Create the assignment from the first event about it; False if it exists."""
    return bool(
        await conn.fetchval(
            f"INSERT INTO assignments ({_ASSIGNMENT_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (assignment_id) DO NOTHING RETURNING true",
            a.assignment_id,
            a.case_id,
            a.department_id,
            a.department_name,
            a.role,
            a.state.value,
            a.dispatched_at,
            a.signed_for_at,
            a.resolved_at,
        )
    )


async def lock_assignment_state(conn: Conn, assignment_id: UUID) -> AssignmentState:
    state = await conn.fetchval(
        "SELECT state FROM assignments WHERE assignment_id = $1 FOR NO KEY UPDATE", assignment_id
    )
    return AssignmentState(state)


async def update_assignment(conn: Conn, a: AssignmentRow) -> None:
    """Move to ``a.state`` and fill in what this event knows (never erasing what is known)."""
    await conn.execute(
        "UPDATE assignments SET state = $2,"
        " department_name = COALESCE($3, department_name), role = COALESCE($4, role),"
        " dispatched_at = COALESCE($5, dispatched_at),"
        " signed_for_at = COALESCE($6, signed_for_at),"
        " resolved_at = COALESCE($7, resolved_at)"
        " WHERE assignment_id = $1",
        a.assignment_id,
        a.state.value,
        a.department_name,
        a.role,
        a.dispatched_at,
        a.signed_for_at,
        a.resolved_at,
    )


async def case_assignments(conn: Conn, case_id: UUID) -> list[AssignmentRow]:
    rows = await conn.fetch(
        f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE case_id = $1"
        " ORDER BY dispatched_at NULLS LAST, assignment_id",
        case_id,
    )
    return [from_row(AssignmentRow, r, state=AssignmentState) for r in rows]
