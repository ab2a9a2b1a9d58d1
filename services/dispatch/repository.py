"""Dispatch's SQL: one function per query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.dispatch.domain import (
    Assignment,
    AssignmentState,
    Contact,
    Department,
    Role,
    RoutingRule,
)


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    parent_code: str | None


@dataclass(frozen=True)
class WaitingCase:
    """A whistled case waiting for manual dispatch (人工派单)."""

    case_id: UUID
    case_no: str
    area_path: str
    category: str
    priority: str
    description: str
    departments: list[str]
    note: str | None
    reason: str
    whistled_at: datetime
    queued_at: datetime


# --- area scope ------------------------------------------------------------------------


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def area_scope(roots: tuple[str, ...] | None) -> tuple[list[str] | None, list[str] | None]:
    """Parameters for ``_in_areas``: the roots and their ``root/%`` LIKE patterns (with the
    LIKE wildcards of the codes escaped); (None, None) means no area restriction."""
    if roots is None:
        return None, None
    return list(roots), [_like_escape(r) + "/%" for r in roots]


def _in_areas(column: str, roots: int, patterns: int) -> str:
    """SQL: ``column`` is one of the roots or lies below one (whole path segments only)."""
    return (f"(${roots}::text[] IS NULL OR {column} = ANY(${roots}::text[])"
            f" OR {column} LIKE ANY(${patterns}::text[]))")


# --- reference data --------------------------------------------------------------------


async def list_categories(conn: asyncpg.Connection) -> list[Category]:
    rows = await conn.fetch("SELECT code, name, parent_code FROM categories ORDER BY code")
    return [Category(**dict(r)) for r in rows]


async def category_exists(conn: asyncpg.Connection, code: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM categories WHERE code = $1", code))


_DEPARTMENT_COLUMNS = "id, name, kind, areas, contacts"


def _department(row: asyncpg.Record) -> Department:
    return Department(
        id=row["id"], name=row["name"], kind=row["kind"], areas=tuple(row["areas"]),
        contacts=tuple(Contact(c["name"], c["phone"], c.get("role")) for c in row["contacts"]),
    )


def _contacts_json(d: Department) -> list[dict[str, str]]:
    return [{"name": c.name, "phone": c.phone, **({"role": c.role} if c.role else {})}
            for c in d.contacts]


async def list_departments(conn: asyncpg.Connection) -> list[Department]:
    rows = await conn.fetch(f"SELECT {_DEPARTMENT_COLUMNS} FROM departments ORDER BY id")
    return [_department(r) for r in rows]


async def get_department(conn: asyncpg.Connection, department_id: str) -> Department | None:
    row = await conn.fetchrow(
        f"SELECT {_DEPARTMENT_COLUMNS} FROM departments WHERE id = $1", department_id)
    return _department(row) if row else None


async def put_department(conn: asyncpg.Connection, d: Department) -> bool:
    """Create or replace one department; True when it was created."""
    return await conn.fetchval(
        "INSERT INTO departments (id, name, kind, areas, contacts) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
        " areas = EXCLUDED.areas, contacts = EXCLUDED.contacts, updated_at = now()"
        " RETURNING xmax = 0",
        d.id, d.name, d.kind, list(d.areas), _contacts_json(d),
    )


_RULE_COLUMNS = "id, category_code, area_prefix, department_id"


async def list_rules(conn: asyncpg.Connection, category: str | None = None) -> list[RoutingRule]:
    rows = await conn.fetch(
        f"SELECT {_RULE_COLUMNS} FROM routing_rules"
        " WHERE $1::text IS NULL OR category_code = $1 ORDER BY category_code, area_prefix, id",
        category,
    )
    return [RoutingRule(**dict(r)) for r in rows]


async def find_rule(conn: asyncpg.Connection, category: str, area_prefix: str) -> RoutingRule | None:
    row = await conn.fetchrow(
        f"SELECT {_RULE_COLUMNS} FROM routing_rules WHERE category_code = $1 AND area_prefix = $2",
        category, area_prefix,
    )
    return RoutingRule(**dict(row)) if row else None


async def insert_rule(
    conn: asyncpg.Connection, category: str, area_prefix: str, department_id: str
) -> RoutingRule | None:
    """Add a rule; None when (category, area prefix) already has one."""
    row = await conn.fetchrow(
        "INSERT INTO routing_rules (category_code, area_prefix, department_id)"
        " VALUES ($1, $2, $3) ON CONFLICT (category_code, area_prefix) DO NOTHING"
        f" RETURNING {_RULE_COLUMNS}",
        category, area_prefix, department_id,
    )
    return RoutingRule(**dict(row)) if row else None


# --- assignments -----------------------------------------------------------------------

_ASSIGNMENT_COLUMNS = (
    "a.id, a.case_id, a.case_no, a.department_id, d.name AS department_name, a.role, a.state,"
    " a.rule_id, a.reason, a.area_path, a.category, a.priority, a.description, a.note,"
    " a.result, a.dispatched_at, a.signed_for_at, a.resolved_at, a.updated_at,"
    " a.exit_reason, a.exited_at, a.transferred_to"
)


def _assignment(r: asyncpg.Record) -> Assignment:
    data = dict(r)
    data["role"] = Role(data["role"])
    data["state"] = AssignmentState(data["state"])
    return Assignment(**data)


async def insert_assignment(conn: asyncpg.Connection, a: Assignment) -> bool:
    """Insert unless the case is already open at that department; True when inserted."""
    return bool(await conn.fetchval(
        "INSERT INTO assignments (id, case_id, case_no, department_id, role, state, rule_id,"
        " reason, area_path, category, priority, description, note, result, dispatched_at,"
        " signed_for_at, resolved_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        " ON CONFLICT (case_id, department_id) WHERE state IN ('dispatched', 'signed_for')"
        " DO NOTHING RETURNING true",
        a.id, a.case_id, a.case_no, a.department_id, a.role.value, a.state.value, a.rule_id,
        a.reason, a.area_path, a.category, a.priority, a.description, a.note, a.result,
        a.dispatched_at, a.signed_for_at, a.resolved_at, a.updated_at,
    ))


async def latest_resolved(
    conn: asyncpg.Connection, case_id: UUID, department_id: str
) -> Assignment | None:
    """The department's most recent resolved assignment of the case (the one a rework redoes)."""
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments a"
        " JOIN departments d ON d.id = a.department_id"
        " WHERE a.case_id = $1 AND a.department_id = $2 AND a.state = 'resolved'"
        " ORDER BY a.resolved_at DESC LIMIT 1 FOR UPDATE OF a",
        case_id, department_id,
    )
    return _assignment(row) if row else None


async def resolved_departments(conn: asyncpg.Connection, case_id: UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT department_id FROM assignments WHERE case_id = $1 AND state = 'resolved'"
        " ORDER BY department_id", case_id,
    )
    return [r["department_id"] for r in rows]


async def lock_case_assignments(conn: asyncpg.Connection, case_id: UUID) -> None:
    await conn.execute(
        "SELECT id FROM assignments WHERE case_id = $1 ORDER BY id FOR UPDATE", case_id
    )


async def work_left(conn: asyncpg.Connection, case_id: UUID) -> bool:
    """Something of the case is still to do: an open assignment, or the case waits for
    manual dispatch (e.g. its lead pushed it back and no candidate was left)."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM assignments WHERE case_id = $1"
        "               AND state IN ('dispatched', 'signed_for'))"
        " OR EXISTS (SELECT 1 FROM manual_dispatch WHERE case_id = $1 AND cleared_at IS NULL)",
        case_id,
    ))


async def mark_rework(conn: asyncpg.Connection, assignment_id: UUID, rework_of: UUID) -> None:
    await conn.execute("UPDATE assignments SET rework_of = $2 WHERE id = $1",
                       assignment_id, rework_of)


async def get_assignment(
    conn: asyncpg.Connection, assignment_id: UUID, *, lock: bool = False
) -> Assignment | None:
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments a"
        " JOIN departments d ON d.id = a.department_id WHERE a.id = $1"
        + (" FOR UPDATE OF a" if lock else ""),
        assignment_id,
    )
    return _assignment(row) if row else None


async def update_assignment(conn: asyncpg.Connection, a: Assignment) -> None:
    """Write back what the state machine may change."""
    await conn.execute(
        "UPDATE assignments SET state = $2, result = $3, signed_for_at = $4, resolved_at = $5,"
        " updated_at = $6, exit_reason = $7, exited_at = $8, transferred_to = $9 WHERE id = $1",
        a.id, a.state.value, a.result, a.signed_for_at, a.resolved_at, a.updated_at,
        a.exit_reason, a.exited_at, a.transferred_to,
    )


async def rejected_departments(conn: asyncpg.Connection, case_id: UUID) -> list[str]:
    """Departments that pushed the case back (退单): never chosen again when re-routing."""
    rows = await conn.fetch(
        "SELECT DISTINCT department_id FROM assignments WHERE case_id = $1 AND state = 'rejected'"
        " ORDER BY department_id", case_id,
    )
    return [r["department_id"] for r in rows]


async def has_open_assignment(conn: asyncpg.Connection, case_id: UUID, department_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM assignments WHERE case_id = $1 AND department_id = $2"
        " AND state IN ('dispatched', 'signed_for')", case_id, department_id,
    ))


@dataclass(frozen=True)
class Note:
    """A progress note (办理进展) of an assignment."""

    id: int
    note: str
    actor_subject: str
    actor_name: str | None
    created_at: datetime


async def add_note(conn: asyncpg.Connection, assignment_id: UUID, note: str, actor_subject: str,
                   actor_name: str | None, at: datetime) -> Note:
    row = await conn.fetchrow(
        "INSERT INTO assignment_notes (assignment_id, note, actor_subject, actor_name, created_at)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id, note, actor_subject, actor_name, created_at",
        assignment_id, note, actor_subject, actor_name, at,
    )
    return Note(**dict(row))


async def list_notes(conn: asyncpg.Connection, assignment_id: UUID) -> list[Note]:
    """Oldest first (newest last)."""
    rows = await conn.fetch(
        "SELECT id, note, actor_subject, actor_name, created_at FROM assignment_notes"
        " WHERE assignment_id = $1 ORDER BY created_at, id", assignment_id,
    )
    return [Note(**dict(r)) for r in rows]


# Inbox orders. dispatch does not own the clocks (tracking does), and the sign-for deadline is
# one fixed period after dispatch, so "deadline" is dispatched_at, the earliest (most urgent)
# first; "priority" is urgent → normal → minor, then the earliest dispatched first.
INBOX_ORDER = {
    "dispatched_at": "a.dispatched_at DESC, a.id",
    "deadline": "a.dispatched_at ASC, a.id",
    "priority": ("CASE a.priority WHEN 'urgent' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END,"
                 " a.dispatched_at ASC, a.id"),
}


async def list_assignments(
    conn: asyncpg.Connection, department_id: str, state: str | None,
    areas: tuple[str, ...] | None, limit: int, offset: int,
    priority: str | None = None, sort: str = "dispatched_at",
) -> list[Assignment]:
    """A department's assignments; with ``areas``, only those inside one of the subtrees.
    ``sort`` is a key of ``INBOX_ORDER`` (never user text in the SQL)."""
    order = INBOX_ORDER[sort]
    rows = await conn.fetch(
        f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments a"
        " JOIN departments d ON d.id = a.department_id"
        " WHERE a.department_id = $1 AND ($2::text IS NULL OR a.state = $2)"
        f" AND {_in_areas('a.area_path', 5, 6)} AND ($7::text IS NULL OR a.priority = $7)"
        f" ORDER BY {order} LIMIT $3 OFFSET $4",
        department_id, state, limit, offset, *area_scope(areas), priority,
    )
    return [_assignment(r) for r in rows]


# --- manual dispatch queue -------------------------------------------------------------


async def queue_for_manual_dispatch(conn: asyncpg.Connection, w: WaitingCase) -> None:
    """Put the case in the queue (again, with the latest whistle's facts if it was there)."""
    await conn.execute(
        "INSERT INTO manual_dispatch (case_id, case_no, area_path, category, priority,"
        " description, departments, note, reason, whistled_at, queued_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (case_id) DO UPDATE SET case_no = EXCLUDED.case_no,"
        " area_path = EXCLUDED.area_path, category = EXCLUDED.category,"
        " priority = EXCLUDED.priority, description = EXCLUDED.description,"
        " departments = EXCLUDED.departments, note = EXCLUDED.note, reason = EXCLUDED.reason,"
        " whistled_at = EXCLUDED.whistled_at, queued_at = EXCLUDED.queued_at, cleared_at = NULL",
        w.case_id, w.case_no, w.area_path, w.category, w.priority, w.description,
        w.departments, w.note, w.reason, w.whistled_at, w.queued_at,
    )


async def clear_manual_dispatch(conn: asyncpg.Connection, case_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE manual_dispatch SET cleared_at = $2 WHERE case_id = $1 AND cleared_at IS NULL",
        case_id, at,
    )


async def list_waiting(
    conn: asyncpg.Connection, areas: tuple[str, ...] | None, limit: int, offset: int
) -> list[WaitingCase]:
    """Cases waiting for manual dispatch; with ``areas``, only those inside the subtrees."""
    rows = await conn.fetch(
        "SELECT case_id, case_no, area_path, category, priority, description, departments,"
        " note, reason, whistled_at, queued_at FROM manual_dispatch WHERE cleared_at IS NULL"
        f" AND {_in_areas('area_path', 3, 4)}"
        " ORDER BY queued_at, case_id LIMIT $1 OFFSET $2",
        limit, offset, *area_scope(areas),
    )
    return [WaitingCase(**{**dict(r), "departments": list(r["departments"])}) for r in rows]


# --- demo data (upserts) ---------------------------------------------------------------


async def upsert_departments(conn: asyncpg.Connection, rows: list[Department]) -> None:
    """The demo seed: create or replace, leaving rows that already match untouched."""
    await conn.executemany(
        "INSERT INTO departments (id, name, kind, areas, contacts) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
        " areas = EXCLUDED.areas, contacts = EXCLUDED.contacts, updated_at = now()"
        " WHERE (departments.name, departments.kind, departments.areas, departments.contacts)"
        " IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.areas, EXCLUDED.contacts)",
        [(d.id, d.name, d.kind, list(d.areas), _contacts_json(d)) for d in rows],
    )


async def upsert_categories(
    conn: asyncpg.Connection, rows: list[tuple[str, str, str | None]]
) -> None:
    """Parents must come before their children in ``rows``."""
    await conn.executemany(
        "INSERT INTO categories (code, name, parent_code) VALUES ($1, $2, $3)"
        " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
        " parent_code = EXCLUDED.parent_code",
        rows,
    )


async def upsert_rules(conn: asyncpg.Connection, rows: list[tuple[str, str, str]]) -> None:
    await conn.executemany(
        "INSERT INTO routing_rules (category_code, area_prefix, department_id)"
        " VALUES ($1, $2, $3) ON CONFLICT (category_code, area_prefix)"
        " DO UPDATE SET department_id = EXCLUDED.department_id",
        rows,
    )
