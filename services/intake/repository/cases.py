"""Intake's SQL: one function per query."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.domain import CaseStatus
from shared.contract import CaseSource
from shared.db import Conn
from shared.dto import from_row


@dataclass(frozen=True)
class CaseRow:
    id: UUID
    case_no: str
    grid_code: str
    area_path: str
    category: str
    description: str
    priority: str
    lat: float | None
    lon: float | None
    address: str | None
    reporter: str
    reported_by: str
    status: CaseStatus
    status_at: datetime
    departments: list[str]
    reported_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    source: CaseSource = CaseSource.GRID_PATROL  # 案件来源
    # the client's own point when it declared GCJ-02 or BD-09 ({"coord_system", "lat", "lon"})
    position_sent: dict[str, Any] | None = None
    deadline_at: datetime | None = None  # the nearest open deadline (tracking's clocks)
    overdue: bool = False
    # the departments handling it now (dispatched to it, not rejected or transferred away)
    assigned_departments: list[str] = field(default_factory=list)
    # when it will actually be resolved (预计办结时间): tracking's forecast, with its range
    expected_resolution_at: datetime | None = None
    expected_earliest: datetime | None = None
    expected_latest: datetime | None = None
    expected_basis: str | None = None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> CaseRow:
        return from_row(
            cls,
            r,
            status=CaseStatus,
            source=CaseSource,
            departments=list,
            assigned_departments=list,
        )


_CASE_COLUMNS = (
    "id, case_no, grid_code, area_path, category, description, priority, lat, lon, address,"
    " reporter, reported_by, status, status_at, departments, reported_at, updated_at, closed_at,"
    " deadline_at, overdue, source, position_sent"
)
# what is read back: the columns a case is written with, and those its events keep current
_CASE_READ = (
    _CASE_COLUMNS + ", assigned_departments,"
    " expected_resolution_at, expected_earliest, expected_latest, expected_basis"
)


async def grid_path(conn: Conn, grid_code: str) -> str | None:
    return await conn.fetchval(
        "SELECT path FROM areas WHERE code = $1 AND level = 'grid'", grid_code
    )


async def category_exists(conn: Conn, code: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM categories WHERE code = $1", code))


async def category_count(conn: Conn) -> int:
    return await conn.fetchval("SELECT count(*) FROM categories")


async def replace_categories(conn: Conn, rows: list[tuple[str, str, str | None]]) -> None:
    await conn.execute("DELETE FROM categories WHERE code <> ALL($1::text[])", [r[0] for r in rows])
    await conn.executemany(
        "INSERT INTO categories (code, name, parent_code) VALUES ($1, $2, $3)"
        " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
        " parent_code = EXCLUDED.parent_code, synced_at = now()",
        rows,
    )


async def reports_since(conn: Conn, subject: str, since: datetime) -> int:
    """How many cases ``subject`` reported since ``since``; serialised per subject so that
    concurrent reports cannot both slip under the limit."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('report:' || $1))", subject)
    return await conn.fetchval(
        "SELECT count(*) FROM cases WHERE reported_by = $1 AND reported_at > $2", subject, since
    )


async def next_case_seq(conn: Conn) -> int:
    return await conn.fetchval("SELECT nextval('case_no_seq')")


async def claim_idempotency_key(
    conn: Conn, subject: str, key: str, request_hash: str, case_id: UUID
) -> tuple[str, UUID] | None:
    """Claim the caller's key for a new case; if claimed before, return (hash, case id)."""
    claimed = await conn.fetchval(
        "INSERT INTO idempotency_keys (subject, key, request_hash, case_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (subject, key) DO NOTHING RETURNING true",
        subject,
        key,
        request_hash,
        case_id,
    )
    if claimed:
        return None
    row = await conn.fetchrow(
        "SELECT request_hash, case_id FROM idempotency_keys WHERE subject = $1 AND key = $2",
        subject,
        key,
    )
    assert row is not None  # the key is there: the INSERT above found it taken
    return row["request_hash"], row["case_id"]


async def insert_case(conn: Conn, case: CaseRow) -> None:
    await conn.execute(
        f"INSERT INTO cases ({_CASE_COLUMNS}) VALUES"
        " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
        " $19, $20, $21, $22)",
        case.id,
        case.case_no,
        case.grid_code,
        case.area_path,
        case.category,
        case.description,
        case.priority,
        case.lat,
        case.lon,
        case.address,
        case.reporter,
        case.reported_by,
        case.status.value,
        case.status_at,
        case.departments,
        case.reported_at,
        case.updated_at,
        case.closed_at,
        case.deadline_at,
        case.overdue,
        case.source.value,
        case.position_sent,
    )


async def get_case(conn: Conn, case_id: UUID, *, lock: bool = False) -> CaseRow | None:
    sql = f"SELECT {_CASE_READ} FROM cases WHERE id = $1" + (" FOR UPDATE" if lock else "")
    row = await conn.fetchrow(sql, case_id)
    return CaseRow.from_record(row) if row else None


def in_areas(column: str, roots: str) -> str:
    """SQL: the area path ``column`` lies under any of ``roots`` (a text[] parameter),
    whole path segments only."""
    return (
        f"EXISTS (SELECT 1 FROM unnest({roots}::text[]) AS r(root)"
        f" WHERE {column} = r.root OR starts_with({column}, r.root || '/'))"
    )


async def list_cases(
    conn: Conn,
    *,
    roots: list[str],
    status: str | None,
    category: str | None,
    overdue: bool | None,
    text: str | None,
    limit: int,
    offset: int,
    source: str | None = None,
) -> list[CaseRow]:
    """Cases whose area lies in any of ``roots`` (whole path segments), newest first;
    ``category`` a 小类 or a 大类 with its 小类, ``text`` a part of the case number, the
    description or the address."""
    rows = await conn.fetch(
        f"SELECT {_CASE_READ} FROM cases WHERE {in_areas('area_path', '$1')}"
        "   AND ($2::text IS NULL OR status = $2)"
        "   AND ($3::text IS NULL OR category = $3"
        "        OR category IN (SELECT code FROM categories WHERE parent_code = $3))"
        "   AND ($4::boolean IS NULL OR overdue = $4)"
        "   AND ($5::text IS NULL OR strpos(lower(case_no), lower($5)) > 0"
        "        OR strpos(description, $5) > 0 OR strpos(coalesce(address, ''), $5) > 0)"
        "   AND ($8::text IS NULL OR source = $8)"
        " ORDER BY reported_at DESC, case_no DESC LIMIT $6 OFFSET $7",
        roots,
        status,
        category,
        overdue,
        text,
        limit,
        offset,
        source,
    )
    return [CaseRow.from_record(r) for r in rows]


async def update_status(
    conn: Conn,
    case_id: UUID,
    status: CaseStatus,
    at: datetime,
    *,
    departments: list[str] | None = None,
    priority: str | None = None,
) -> CaseRow:
    """Move the case to ``status``; returns it as it now is."""
    row = await conn.fetchrow(
        "UPDATE cases SET status = $2, status_at = $3, updated_at = greatest(updated_at, $3),"
        " departments = COALESCE($4, departments), priority = COALESCE($5, priority),"
        " closed_at = CASE WHEN $2 = 'closed' THEN $3 ELSE closed_at END"
        f" WHERE id = $1 RETURNING {_CASE_READ}",
        case_id,
        status.value,
        at,
        departments,
        priority,
    )
    assert row is not None, f"case {case_id} is gone"  # callers hold the case locked
    return CaseRow.from_record(row)


async def remove_assigned_department(conn: Conn, case_id: UUID, dept: str) -> None:
    await conn.execute(
        "UPDATE cases SET assigned_departments = array_remove(assigned_departments, $2)"
        " WHERE id = $1",
        case_id,
        dept,
    )


async def add_assigned_department(conn: Conn, case_id: UUID, dept: str) -> None:
    await conn.execute(
        "UPDATE cases SET assigned_departments = array_append(assigned_departments, $2)"
        " WHERE id = $1 AND NOT $2 = ANY(assigned_departments)",
        case_id,
        dept,
    )


async def upsert_areas(conn: Conn, rows: list[tuple[str, str, str, str | None, str]]) -> None:
    await conn.executemany(
        "INSERT INTO areas (code, name, level, parent_code, path) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,"
        " parent_code = EXCLUDED.parent_code, path = EXCLUDED.path",
        rows,
    )


async def list_areas(conn: Conn, parent: str | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT code, name, level, parent_code, path FROM areas"
        " WHERE parent_code IS NOT DISTINCT FROM $1 ORDER BY code",
        parent,
    )


async def subtree_areas(conn: Conn, root: str) -> list[asyncpg.Record]:
    """Every area at or below ``root`` (whole path segments), with its boundary."""
    return await conn.fetch(
        "SELECT code, name, level, parent_code, path, boundary FROM areas"
        " WHERE path = $1 OR path LIKE replace(replace(replace($1, '\\', '\\\\'), '%', '\\%'),"
        " '_', '\\_') || '/%' ORDER BY path",
        root,
    )


async def upsert_clock(
    conn: Conn,
    case_id: UUID,
    assignment_id: UUID,
    clock: str,
    department_id: str,
    due_at: datetime | None,
    state: str,
    at: datetime,
) -> None:
    """Record a clock's state; a late event (older than what we have) changes nothing. The
    case's deadline follows through ``refresh_deadlines``."""
    await conn.execute(
        "INSERT INTO case_clocks (case_id, assignment_id, clock, department_id, due_at, state,"
        " updated_at) VALUES ($1, $2, $3, $4, coalesce($5::timestamptz, $7), $6, $7)"
        " ON CONFLICT (assignment_id, clock) DO UPDATE SET state = EXCLUDED.state,"
        " due_at = coalesce($5::timestamptz, case_clocks.due_at), updated_at = EXCLUDED.updated_at"
        " WHERE case_clocks.updated_at <= EXCLUDED.updated_at",
        case_id,
        assignment_id,
        clock,
        department_id,
        due_at,
        state,
        at,
    )


async def case_known(conn: Conn, case_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM cases WHERE id = $1", case_id))


async def refresh_deadlines(conn: Conn, case_ids: list[UUID]) -> None:
    """Bring the cases' nearest open deadline and overdue flag up to date with their clocks
    (each case once, in one order)."""
    await conn.execute(
        "UPDATE cases c SET deadline_at = d.deadline_at, overdue = d.overdue"
        " FROM (SELECT u.id,"
        "   (SELECT min(k.due_at) FROM case_clocks k WHERE k.case_id = u.id"
        "    AND k.state IN ('running', 'overdue')) AS deadline_at,"
        "   EXISTS (SELECT 1 FROM case_clocks k WHERE k.case_id = u.id"
        "           AND k.state = 'overdue') AS overdue"
        "  FROM unnest($1::uuid[]) AS u(id)) d"
        " WHERE c.id = d.id",
        sorted(set(case_ids)),
    )
