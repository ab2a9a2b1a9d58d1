"""Tracking's SQL: one function per query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.tracking.domain import (
    AssignmentState,
    CaseStatus,
    CaseView,
    Clock,
    OverdueEntry,
    TimerState,
)
from shared.events import Envelope

# --- timeline ---------------------------------------------------------------------------


async def append_event(conn: asyncpg.Connection, event: Envelope[Any]) -> bool:
    """Add an event to its case's timeline; False if it was there already."""
    return bool(await conn.fetchval(
        "INSERT INTO case_events (event_id, case_id, type, version, occurred_at, producer,"
        " correlation_id, causation_id, actor, payload)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING true",
        event.event_id, event.case_id, event.type, event.version, event.occurred_at,
        event.producer, event.correlation_id, event.causation_id,
        event.actor.model_dump(mode="json") if event.actor else None,
        event.payload.model_dump(mode="json"),
    ))


async def timeline(conn: asyncpg.Connection, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT event_id, type, version, occurred_at, producer, correlation_id, causation_id,"
        " actor, payload, recorded_at FROM case_events WHERE case_id = $1"
        " ORDER BY occurred_at, seq",
        case_id,
    )


# --- the case read model ------------------------------------------------------------------

_CASE_COLUMNS = "case_no, area_path, category, priority, status, updated_at"


def _case_view(r: asyncpg.Record) -> CaseView:
    return CaseView(case_no=r["case_no"], area_path=r["area_path"], category=r["category"],
                    priority=r["priority"], status=CaseStatus(r["status"]),
                    updated_at=r["updated_at"])


async def insert_case(conn: asyncpg.Connection, case_id: UUID, view: CaseView) -> bool:
    """Create the case from its first event; False if it exists (then lock and merge)."""
    return bool(await conn.fetchval(
        f"INSERT INTO cases (case_id, {_CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (case_id) DO NOTHING RETURNING true",
        case_id, view.case_no, view.area_path, view.category, view.priority,
        view.status.value, view.updated_at,
    ))


async def get_case(conn: asyncpg.Connection, case_id: UUID, *, lock: bool = False) -> CaseView | None:
    row = await conn.fetchrow(
        f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = $1" + (" FOR UPDATE" if lock else ""),
        case_id,
    )
    return _case_view(row) if row else None


async def update_case(conn: asyncpg.Connection, case_id: UUID, view: CaseView) -> None:
    await conn.execute(
        "UPDATE cases SET case_no = $2, area_path = $3, category = $4, priority = $5,"
        " status = $6, updated_at = $7 WHERE case_id = $1",
        case_id, view.case_no, view.area_path, view.category, view.priority,
        view.status.value, view.updated_at,
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


async def insert_assignment(conn: asyncpg.Connection, a: AssignmentRow) -> bool:
    """Create the assignment from the first event about it; False if it exists."""
    return bool(await conn.fetchval(
        f"INSERT INTO assignments ({_ASSIGNMENT_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (assignment_id) DO NOTHING RETURNING true",
        a.assignment_id, a.case_id, a.department_id, a.department_name, a.role, a.state.value,
        a.dispatched_at, a.signed_for_at, a.resolved_at,
    ))


async def lock_assignment_state(conn: asyncpg.Connection, assignment_id: UUID) -> AssignmentState:
    state = await conn.fetchval(
        "SELECT state FROM assignments WHERE assignment_id = $1 FOR UPDATE", assignment_id
    )
    return AssignmentState(state)


async def update_assignment(conn: asyncpg.Connection, a: AssignmentRow) -> None:
    """Move to ``a.state`` and fill in what this event knows (never erasing what is known)."""
    await conn.execute(
        "UPDATE assignments SET state = $2,"
        " department_name = COALESCE($3, department_name), role = COALESCE($4, role),"
        " dispatched_at = COALESCE($5, dispatched_at),"
        " signed_for_at = COALESCE($6, signed_for_at),"
        " resolved_at = COALESCE($7, resolved_at)"
        " WHERE assignment_id = $1",
        a.assignment_id, a.state.value, a.department_name, a.role,
        a.dispatched_at, a.signed_for_at, a.resolved_at,
    )


async def case_assignments(conn: asyncpg.Connection, case_id: UUID) -> list[AssignmentRow]:
    rows = await conn.fetch(
        f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE case_id = $1"
        " ORDER BY dispatched_at NULLS LAST, assignment_id",
        case_id,
    )
    return [AssignmentRow(**{**dict(r), "state": AssignmentState(r["state"])}) for r in rows]


# --- durable timers -----------------------------------------------------------------------


async def schedule_timer(
    conn: asyncpg.Connection, *, case_id: UUID, assignment_id: UUID, clock: Clock,
    due_at: datetime, correlation_id: str | None, causation_id: UUID | None,
) -> bool:
    """One timer per (assignment, clock): a replayed dispatch does not start a second one."""
    return bool(await conn.fetchval(
        "INSERT INTO timers (case_id, assignment_id, clock, due_at, correlation_id, causation_id)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (assignment_id, clock) DO NOTHING RETURNING true",
        case_id, assignment_id, clock.value, due_at, correlation_id, causation_id,
    ))


async def cancel_assignment_timer(
    conn: asyncpg.Connection, assignment_id: UUID, clock: Clock, at: datetime
) -> int:
    """Stop a pending clock. A timer the scheduler holds is waited for, then left as fired."""
    status = await conn.execute(
        "UPDATE timers SET state = 'cancelled', cancelled_at = $3"
        " WHERE assignment_id = $1 AND clock = $2 AND state = 'pending'",
        assignment_id, clock.value, at,
    )
    return int(status.split()[-1])


async def cancel_case_timers(
    conn: asyncpg.Connection, case_id: UUID, at: datetime
) -> list[asyncpg.Record]:
    """Stop every pending clock of the case; return (assignment_id, clock) of those stopped."""
    return await conn.fetch(
        "UPDATE timers t SET state = 'cancelled', cancelled_at = $2 FROM assignments a"
        " WHERE t.case_id = $1 AND t.state = 'pending' AND a.assignment_id = t.assignment_id"
        " RETURNING t.assignment_id, t.clock, a.department_id",
        case_id, at,
    )


@dataclass(frozen=True)
class DueTimer:
    """A claimed due timer with what its alert needs to say."""

    id: int
    case_id: UUID
    assignment_id: UUID
    clock: Clock
    due_at: datetime
    correlation_id: str | None
    causation_id: UUID | None
    department_id: str
    department_name: str | None
    assignment_state: AssignmentState
    case: CaseView


# Rows stay locked until the caller's transaction ends; another replica skips them.
_CLAIM_DUE = """
SELECT t.id, t.case_id, t.assignment_id, t.clock, t.due_at, t.correlation_id, t.causation_id,
       a.department_id, a.department_name, a.state AS assignment_state,
       c.case_no, c.area_path, c.category, c.priority, c.status, c.updated_at
FROM timers t
JOIN assignments a ON a.assignment_id = t.assignment_id
JOIN cases c ON c.case_id = t.case_id
WHERE t.state = 'pending' AND t.due_at <= $1
ORDER BY t.due_at
LIMIT $2
FOR UPDATE OF t SKIP LOCKED
"""


async def claim_due_timers(conn: asyncpg.Connection, now: datetime, limit: int) -> list[DueTimer]:
    if not conn.is_in_transaction():
        raise RuntimeError("claim due timers inside the transaction that settles them")
    rows = await conn.fetch(_CLAIM_DUE, now, limit)
    return [
        DueTimer(
            id=r["id"], case_id=r["case_id"], assignment_id=r["assignment_id"],
            clock=Clock(r["clock"]), due_at=r["due_at"], correlation_id=r["correlation_id"],
            causation_id=r["causation_id"], department_id=r["department_id"],
            department_name=r["department_name"],
            assignment_state=AssignmentState(r["assignment_state"]), case=_case_view(r),
        )
        for r in rows
    ]


async def settle_timers(
    conn: asyncpg.Connection, ids: list[int], state: TimerState, at: datetime
) -> None:
    if not ids:
        return
    column = "fired_at" if state is TimerState.FIRED else "cancelled_at"
    await conn.execute(
        f"UPDATE timers SET state = $2, {column} = $3 WHERE id = ANY($1::bigint[])",
        ids, state.value, at,
    )


async def timers_due(conn: asyncpg.Connection, now: datetime) -> tuple[int, datetime | None]:
    """(pending timers already due, the next due time): both served by the partial index."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM timers WHERE state = 'pending' AND due_at <= $1) AS due,"
        " (SELECT min(due_at) FROM timers WHERE state = 'pending') AS next_due",
        now,
    )
    return row["due"], row["next_due"]


# --- the overdue board ----------------------------------------------------------------------

_BOARD = """
SELECT t.id AS timer_id, t.case_id, t.assignment_id, t.clock, t.due_at, t.fired_at,
       a.department_id, a.department_name,
       c.case_no, c.area_path, c.category, c.priority, c.status
FROM assignments a
JOIN timers t ON t.assignment_id = a.assignment_id
JOIN cases c ON c.case_id = a.case_id
WHERE a.state = 'dispatched' AND t.clock = 'sign_for' AND t.state = 'fired'
  AND c.status <> 'closed'
  AND ($1::text[] IS NULL OR EXISTS (
        SELECT 1 FROM unnest($1::text[]) AS root
        WHERE c.area_path = root OR starts_with(c.area_path, root || '/')))
  AND ($2::text IS NULL OR a.department_id = $2)
ORDER BY t.due_at, array_position(ARRAY['urgent', 'normal', 'minor'], c.priority), t.id
LIMIT $3 OFFSET $4
"""


async def overdue_board(
    conn: asyncpg.Connection, *, area_roots: tuple[str, ...] | None, department_id: str | None,
    limit: int, offset: int,
) -> list[OverdueEntry]:
    """Overdue sign-fors under any of ``area_roots`` (None: anywhere; empty: nowhere)."""
    rows = await conn.fetch(
        _BOARD, None if area_roots is None else list(area_roots), department_id, limit, offset,
    )
    return [
        OverdueEntry(**{**dict(r), "status": CaseStatus(r["status"]), "clock": Clock(r["clock"])})
        for r in rows
    ]
