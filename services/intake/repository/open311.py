"""Open311's reads over intake's tables: one function per query, domain objects out."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.intake.domain.open311 import CaseView, Category, RequestQuery
from services.intake.repository import in_areas
from shared.db import Conn

# A case with its category's name and its community's name (the path's third segment:
# district/street/community/grid).
_VIEW = (
    "SELECT c.id, c.case_no, c.area_path, c.category, cat.name AS category_name,"
    " c.description, c.priority, c.lat, c.lon, c.address, c.status,"
    " array(SELECT DISTINCT d FROM unnest(c.departments || c.assigned_departments) AS d"
    "       ORDER BY d) AS departments,"
    " community.name AS community_name, c.reported_at, c.updated_at, c.closed_at,"
    " c.deadline_at,"
    # the forecast, never a past time for a case still open (a resolution is a fact)
    " CASE WHEN c.expected_basis = 'resolved' OR c.expected_resolution_at > now()"
    "  THEN c.expected_resolution_at END AS expected_resolution_at,"
    # a resident's report not taken on (不予受理): the reason he reads
    " rr.reason AS dismissed_reason, rr.note AS dismissed_note, dup.case_no AS duplicate_case_no"
    " FROM cases c"
    " LEFT JOIN categories cat ON cat.code = c.category"
    " LEFT JOIN resident_reports rr ON rr.case_id = c.id AND rr.state = 'dismissed'"
    " LEFT JOIN cases dup ON dup.id = rr.duplicate_of"
    " LEFT JOIN areas community ON community.code = split_part(c.area_path, '/', 3)"
    "  AND community.level = 'community'"
)


def _view(row: asyncpg.Record) -> CaseView:
    data = dict(row)
    data["departments"] = list(data["departments"])
    return CaseView(**data)


async def categories(conn: Conn) -> list[Category]:
    rows = await conn.fetch("SELECT code, name, parent_code FROM categories ORDER BY code")
    return [Category(**dict(r)) for r in rows]


async def find_case(conn: Conn, ref: UUID | str) -> CaseView | None:
    """By our UUID or by case number."""
    if isinstance(ref, UUID):
        row = await conn.fetchrow(_VIEW + " WHERE c.id = $1", ref)
    else:
        row = await conn.fetchrow(_VIEW + " WHERE c.case_no = $1", ref)
    return _view(row) if row else None


async def find_by_receipt(conn: Conn, receipt: str) -> CaseView | None:
    """The case a resident's receipt names (his own report)."""
    row = await conn.fetchrow(
        _VIEW + " WHERE c.id = (SELECT case_id FROM resident_reports WHERE receipt = $1)", receipt
    )
    return _view(row) if row else None


async def list_cases(conn: Conn, roots: list[str], q: RequestQuery) -> list[CaseView]:
    """Cases under any of ``roots`` (whole path segments) matching ``q``, newest first."""
    by_id = bool(q.case_ids or q.case_nos)
    rows = await conn.fetch(
        _VIEW + f" WHERE {in_areas('c.area_path', '$1')}"
        "   AND (NOT $2::boolean OR c.id = ANY($3::uuid[]) OR c.case_no = ANY($4::text[]))"
        "   AND (cardinality($5::text[]) = 0 OR c.category = ANY($5::text[]))"
        "   AND ($6::boolean IS NULL OR (c.status = 'closed') = $6)"
        "   AND ($7::timestamptz IS NULL OR c.reported_at >= $7)"
        "   AND ($8::timestamptz IS NULL OR c.reported_at <= $8)"
        " ORDER BY c.reported_at DESC, c.case_no DESC LIMIT $9 OFFSET $10",
        roots,
        by_id,
        list(q.case_ids),
        list(q.case_nos),
        list(q.service_codes),
        q.closed,
        q.start,
        q.end,
        q.limit,
        q.offset,
    )
    return [_view(r) for r in rows]
