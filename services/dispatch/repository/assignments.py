"""Assignments (one department's part in one case), their progress notes, the inbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.dispatch.domain import Assignment, AssignmentState
from services.dispatch.repository.scope import area_scope
from shared.contract import AssignmentRole, Clock, DispatchBasis, PauseKind, PhotoKind
from shared.db import Conn
from shared.dto import from_row


_ASSIGNMENT_COLUMNS = (
    "a.id, a.case_id, a.case_no, a.department_id, d.name AS department_name, a.role, a.state,"
    " a.rule_id, a.reason, a.area_path, a.category, a.priority, a.description, a.note,"
    " a.result, a.dispatched_at, a.signed_for_at, a.resolved_at, a.updated_at,"
    " a.exit_reason, a.exited_at, a.transferred_to, a.basis, a.photo_ids,"
    # the approved pause (挂账/缓办) running now, if any (at most one: a unique index)
    " (SELECT p.kind FROM pause_requests p WHERE p.assignment_id = a.id"
    "  AND p.state = 'approved') AS pause_kind,"
    " (SELECT p.decided_at FROM pause_requests p WHERE p.assignment_id = a.id"
    "  AND p.state = 'approved') AS paused_since,"
    # the earliest deadline running now, as tracking announced it, and the urgings (督办)
    " k.due_at AS deadline, k.clock AS deadline_clock,"
    " coalesce(u.count, 0) AS urge_count, u.last_urged_at"
)
# What _ASSIGNMENT_COLUMNS reads from.
_ASSIGNMENT_FROM = (
    " FROM assignments a JOIN departments d ON d.id = a.department_id"
    " LEFT JOIN LATERAL (SELECT c.due_at, c.clock FROM assignment_clocks c"
    "  WHERE c.assignment_id = a.id AND c.running AND a.state <> 'resolved'"
    "  AND a.exited_at IS NULL ORDER BY c.due_at LIMIT 1) k ON true"
    " LEFT JOIN assignment_urgings u ON u.assignment_id = a.id"
)


def _assignment(r: asyncpg.Record) -> Assignment:
    return from_row(
        Assignment,
        r,
        role=AssignmentRole,
        state=AssignmentState,
        basis=DispatchBasis,
        pause_kind=PauseKind,
        deadline_clock=Clock,
        photo_ids=tuple,
    )


async def insert_assignment(conn: Conn, a: Assignment) -> bool:
    """Insert unless the case is already open at that department; True when inserted."""
    return bool(
        await conn.fetchval(
            "INSERT INTO assignments (id, case_id, case_no, department_id, role, state, rule_id,"
            " reason, area_path, category, priority, description, note, result, dispatched_at,"
            " signed_for_at, resolved_at, updated_at, basis) VALUES ($1, $2, $3, $4, $5, $6, $7,"
            " $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
            " ON CONFLICT (case_id, department_id) WHERE state IN ('dispatched', 'signed_for')"
            " DO NOTHING RETURNING true",
            a.id,
            a.case_id,
            a.case_no,
            a.department_id,
            a.role.value,
            a.state.value,
            a.rule_id,
            a.reason,
            a.area_path,
            a.category,
            a.priority,
            a.description,
            a.note,
            a.result,
            a.dispatched_at,
            a.signed_for_at,
            a.resolved_at,
            a.updated_at,
            a.basis.value,
        )
    )


async def latest_resolved(conn: Conn, case_id: UUID, department_id: str) -> Assignment | None:
    """The department's most recent resolved assignment of the case (the one a rework redoes)."""
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT_COLUMNS}{_ASSIGNMENT_FROM}"
        " WHERE a.case_id = $1 AND a.department_id = $2 AND a.state = 'resolved'"
        " ORDER BY a.resolved_at DESC LIMIT 1 FOR UPDATE OF a",
        case_id,
        department_id,
    )
    return _assignment(row) if row else None


async def resolved_departments(conn: Conn, case_id: UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT department_id FROM assignments WHERE case_id = $1 AND state = 'resolved'"
        " ORDER BY department_id",
        case_id,
    )
    return [r["department_id"] for r in rows]


async def lock_case_assignments(conn: Conn, case_id: UUID) -> None:
    await conn.execute(
        "SELECT id FROM assignments WHERE case_id = $1 ORDER BY id FOR UPDATE", case_id
    )


async def work_left(conn: Conn, case_id: UUID) -> bool:
    """Something of the case is still to do: an open assignment, or the case waits for
    manual dispatch (e.g. its lead pushed it back and no candidate was left)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM assignments WHERE case_id = $1"
            "               AND state IN ('dispatched', 'signed_for'))"
            " OR EXISTS (SELECT 1 FROM manual_dispatch WHERE case_id = $1 AND cleared_at IS NULL)",
            case_id,
        )
    )


async def mark_rework(conn: Conn, assignment_id: UUID, rework_of: UUID) -> None:
    await conn.execute(
        "UPDATE assignments SET rework_of = $2 WHERE id = $1", assignment_id, rework_of
    )


async def get_assignment(
    conn: Conn, assignment_id: UUID, *, lock: bool = False
) -> Assignment | None:
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT_COLUMNS}{_ASSIGNMENT_FROM} WHERE a.id = $1"
        + (" FOR UPDATE OF a" if lock else ""),
        assignment_id,
    )
    return _assignment(row) if row else None


async def update_assignment(conn: Conn, a: Assignment) -> None:
    """Write back what the state machine may change."""
    await conn.execute(
        "UPDATE assignments SET state = $2, result = $3, signed_for_at = $4, resolved_at = $5,"
        " updated_at = $6, exit_reason = $7, exited_at = $8, transferred_to = $9,"
        " photo_ids = $10 WHERE id = $1",
        a.id,
        a.state.value,
        a.result,
        a.signed_for_at,
        a.resolved_at,
        a.updated_at,
        a.exit_reason,
        a.exited_at,
        a.transferred_to,
        list(a.photo_ids),
    )


async def rejected_departments(conn: Conn, case_id: UUID) -> list[str]:
    """Departments that pushed the case back (退单): never chosen again when re-routing."""
    rows = await conn.fetch(
        "SELECT DISTINCT department_id FROM assignments WHERE case_id = $1 AND state = 'rejected'"
        " ORDER BY department_id",
        case_id,
    )
    return [r["department_id"] for r in rows]


@dataclass(frozen=True)
class Note:
    """A progress note (办理进展) of an assignment."""

    id: int
    note: str
    actor_subject: str
    actor_name: str | None
    created_at: datetime


async def add_note(
    conn: Conn,
    assignment_id: UUID,
    note: str,
    actor_subject: str,
    actor_name: str | None,
    at: datetime,
) -> Note:
    row = await conn.fetchrow(
        "INSERT INTO assignment_notes (assignment_id, note, actor_subject, actor_name, created_at)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id, note, actor_subject, actor_name, created_at",
        assignment_id,
        note,
        actor_subject,
        actor_name,
        at,
    )
    assert row is not None  # RETURNING the row just written
    return Note(**dict(row))


async def list_notes(conn: Conn, assignment_id: UUID) -> list[Note]:
    """Oldest first (newest last)."""
    rows = await conn.fetch(
        "SELECT id, note, actor_subject, actor_name, created_at FROM assignment_notes"
        " WHERE assignment_id = $1 ORDER BY created_at, id",
        assignment_id,
    )
    return [Note(**dict(r)) for r in rows]


# Inbox orders. "deadline": the earliest deadline running now first (tracking's, as announced),
# then those without one (paused, done, or not yet heard of) by dispatch time; "priority" is
# urgent → normal → minor, then the earliest dispatched first.
INBOX_ORDER = {
    "dispatched_at": "a.dispatched_at DESC, a.id",
    "deadline": "k.due_at ASC NULLS LAST, a.dispatched_at ASC, a.id",
    "priority": (
        "CASE a.priority WHEN 'urgent' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END,"
        " a.dispatched_at ASC, a.id"
    ),
}
_STATES = tuple(s.value for s in AssignmentState)
_PRIORITIES = ("urgent", "normal", "minor")
_OPEN = ("dispatched", "signed_for")  # a running deadline: not resolved, not exited (0003)
# How each order reads one (state, priority) slice, in the inbox index's order (0008).
_SLICE_ORDER = {
    "dispatched_at": "a.dispatched_at DESC, a.id",
    "deadline": "a.dispatched_at, a.id",
    "priority": "a.dispatched_at, a.id",
}
_PICK_ORDER = {
    "dispatched_at": "dispatched_at DESC, id",
    "deadline": "due ASC NULLS LAST, dispatched_at ASC, id",
    "priority": (
        "CASE priority WHEN 'urgent' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END, dispatched_at ASC, id"
    ),
}
_EARLIEST_RUNNING = (
    "SELECT c.due_at FROM assignment_clocks c WHERE c.assignment_id = a.id"
    " AND c.running ORDER BY c.due_at LIMIT 1"
)


async def list_assignments(
    conn: Conn,
    department_id: str,
    state: str | None,
    areas: tuple[str, ...] | None,
    limit: int,
    offset: int,
    priority: str | None = None,
    sort: str = "dispatched_at",
    case_no: str | None = None,
) -> list[Assignment]:
    """A department's assignments; with ``areas``, only those inside one of the subtrees;
    with ``case_no``, only that case's (index by department and case number).
    ``sort`` is a key of ``INBOX_ORDER`` (never user text in the SQL).

    A page costs what it shows, not what the department ever had: the inbox index (department,
    state, priority, dispatched_at) is read one (state, priority) slice at a time, each slice
    in the page's order and only as far as the page can reach (offset + limit rows), and the
    slices are merged; for "deadline", the assignments with a running deadline (the open ones,
    few) are read apart and put first. Only the page's rows get their columns."""
    if state not in (None, *_STATES) or priority not in (None, *_PRIORITIES):
        raise ValueError(f"unknown state {state!r} or priority {priority!r}")  # never in SQL
    args: list[object] = [department_id, offset + limit]
    where = "a.department_id = $1"
    if areas is not None:
        roots, patterns = area_scope(areas)
        args += [roots, patterns]
        where += " AND (a.area_path = ANY($3::text[]) OR a.area_path LIKE ANY($4::text[]))"
    if case_no is not None:
        args.append(case_no)
        where += f" AND a.case_no = ${len(args)}"
    parts = []
    for st in (state,) if state else _STATES:
        for pr in (priority,) if priority else _PRIORITIES:
            cond = f"{where} AND a.state = '{st}' AND a.priority = '{pr}'"
            if sort == "deadline" and st in _OPEN:  # those with no running deadline only
                cond += (
                    " AND NOT (a.exited_at IS NULL AND EXISTS (SELECT 1 FROM"
                    " assignment_clocks c WHERE c.assignment_id = a.id AND c.running))"
                )
            parts.append(
                f"(SELECT a.id, a.priority, a.dispatched_at, NULL::timestamptz AS due"
                f" FROM assignments a WHERE {cond}"
                f" ORDER BY {_SLICE_ORDER[sort]} LIMIT $2)"
            )
    if sort == "deadline" and (state is None or state in _OPEN):
        states = ", ".join(f"'{s}'" for s in ((state,) if state else _OPEN))
        prio = f" AND a.priority = '{priority}'" if priority else ""
        parts.append(
            f"(SELECT a.id, a.priority, a.dispatched_at, k.due_at AS due"
            f" FROM assignments a JOIN LATERAL ({_EARLIEST_RUNNING}) k ON true"
            f" WHERE {where} AND a.state IN ({states}){prio} AND a.exited_at IS NULL"
            f" ORDER BY k.due_at, a.dispatched_at, a.id LIMIT $2)"
        )
    args += [limit, offset]
    n = len(args)
    rows = await conn.fetch(
        f"WITH pick AS ({' UNION ALL '.join(parts)}),"
        f" page AS (SELECT id FROM pick ORDER BY {_PICK_ORDER[sort]} LIMIT ${n - 1} OFFSET ${n})"
        f" SELECT {_ASSIGNMENT_COLUMNS}{_ASSIGNMENT_FROM} WHERE a.id IN (SELECT id FROM page)"
        f" ORDER BY {INBOX_ORDER[sort]}",
        *args,
    )
    return [_assignment(r) for r in rows]


async def open_departments(conn: Conn, case_id: UUID) -> dict[str, AssignmentRole]:
    """Departments with an open assignment of the case, and their role in it."""
    rows = await conn.fetch(
        "SELECT department_id, role FROM assignments WHERE case_id = $1"
        " AND state IN ('dispatched', 'signed_for') ORDER BY department_id",
        case_id,
    )
    return {r["department_id"]: AssignmentRole(r["role"]) for r in rows}


async def resolved_lead(conn: Conn, case_id: UUID) -> Assignment | None:
    """The lead's latest resolved assignment of the case, if the lead has resolved it."""
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT_COLUMNS}{_ASSIGNMENT_FROM}"
        " WHERE a.case_id = $1 AND a.role = 'lead' AND a.state = 'resolved'"
        " ORDER BY a.resolved_at DESC LIMIT 1",
        case_id,
    )
    return _assignment(row) if row else None


# --- the whistle's named departments, the departments' photos ---------------------------


async def remember_whistle(conn: Conn, case_id: UUID, departments: list[str], at: datetime) -> None:
    """The latest whistle wins (a re-whistle at a higher level names departments anew)."""
    await conn.execute(
        "INSERT INTO case_whistles (case_id, departments, whistled_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (case_id) DO UPDATE SET departments = EXCLUDED.departments,"
        " whistled_at = EXCLUDED.whistled_at WHERE case_whistles.whistled_at <= $3",
        case_id,
        departments,
        at,
    )


async def named_departments(conn: Conn, case_id: UUID) -> list[str]:
    found = await conn.fetchval("SELECT departments FROM case_whistles WHERE case_id = $1", case_id)
    return list(found or [])


async def add_photo(
    conn: Conn,
    photo_id: UUID,
    case_id: UUID,
    kind: PhotoKind,
    department_id: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO case_photos (photo_id, case_id, kind, department_id, added_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (photo_id) DO NOTHING",
        photo_id,
        case_id,
        kind.value,
        department_id,
        at,
    )


async def department_after_photos(conn: Conn, case_id: UUID, department_id: str) -> set[UUID]:
    rows = await conn.fetch(
        "SELECT photo_id FROM case_photos WHERE case_id = $1 AND department_id = $2"
        " AND kind = 'after'",
        case_id,
        department_id,
    )
    return {r["photo_id"] for r in rows}
