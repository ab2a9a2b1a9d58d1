"""SQL for 未诉先办 hotspots: the cases detection reads, the decisions communities take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.domain.hotspots import ClusterCase
from services.intake.repository.cases import in_areas
from shared.db import Conn
from shared.dto import from_row

# What detection weighs of a case (the domain leaves out merged, proactive and refused ones).
_CLUSTER_COLUMNS = (
    "c.id, c.case_no, c.grid_code, c.area_path, c.category, c.reported_at, c.status, c.lat,"
    " c.lon, c.address, c.rework_count, c.reopen_count, c.merged_into IS NOT NULL AS merged,"
    " c.source = 'proactive' AS proactive, c.resolution IS NOT DISTINCT FROM 'dismissed' AS refused"
)


@dataclass(frozen=True)
class DecisionRow:
    id: str
    grid_code: str
    area_path: str
    category: str
    period_start: datetime
    decision: str
    case_id: UUID | None
    case_no: str | None
    reason: str | None
    note: str | None
    evidence: dict[str, Any]
    decided_by: str
    decided_by_name: str
    decided_at: datetime

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> DecisionRow:
        return from_row(cls, r)


_DECISION_READ = (
    "d.id, d.grid_code, d.area_path, d.category, d.period_start, d.decision, d.case_id,"
    " c.case_no, d.reason, d.note, d.evidence, d.decided_by, d.decided_by_name, d.decided_at"
    " FROM hotspot_decisions d LEFT JOIN cases c ON c.id = d.case_id"
)


async def cases_since(conn: Conn, roots: list[str], since: datetime) -> list[ClusterCase]:
    """Every case of the subtrees ``roots`` reported since ``since``."""
    rows = await conn.fetch(
        f"SELECT {_CLUSTER_COLUMNS} FROM cases c"
        f" WHERE {in_areas('c.area_path', '$1')} AND c.reported_at >= $2",
        roots,
        since,
    )
    return [from_row(ClusterCase, r) for r in rows]


async def grid_cases_since(
    conn: Conn, grid_code: str, category: str, since: datetime
) -> list[ClusterCase]:
    rows = await conn.fetch(
        f"SELECT {_CLUSTER_COLUMNS} FROM cases c"
        " WHERE c.grid_code = $1 AND c.category = $2 AND c.reported_at >= $3",
        grid_code,
        category,
        since,
    )
    return [from_row(ClusterCase, r) for r in rows]


async def last_decisions(
    conn: Conn, roots: list[str], since: datetime
) -> dict[tuple[str, str], datetime]:
    """(grid, category) → its last decision, for the decisions taken since ``since``."""
    rows = await conn.fetch(
        "SELECT grid_code, category, max(decided_at) AS at FROM hotspot_decisions"
        f" WHERE {in_areas('area_path', '$1')} AND decided_at >= $2 GROUP BY 1, 2",
        roots,
        since,
    )
    return {(r["grid_code"], r["category"]): r["at"] for r in rows}


async def last_decision_at(conn: Conn, grid_code: str, category: str) -> datetime | None:
    return await conn.fetchval(
        "SELECT max(decided_at) FROM hotspot_decisions WHERE grid_code = $1 AND category = $2",
        grid_code,
        category,
    )


async def decisions_since(conn: Conn, roots: list[str], since: datetime) -> list[DecisionRow]:
    """Decisions of the subtrees ``roots`` taken since ``since``, the latest first."""
    rows = await conn.fetch(
        f"SELECT {_DECISION_READ} WHERE {in_areas('d.area_path', '$1')} AND d.decided_at >= $2"
        " ORDER BY d.decided_at DESC, d.id",
        roots,
        since,
    )
    return [DecisionRow.from_record(r) for r in rows]


async def get_decision(conn: Conn, hotspot_id: str) -> DecisionRow | None:
    row = await conn.fetchrow(f"SELECT {_DECISION_READ} WHERE d.id = $1", hotspot_id)
    return DecisionRow.from_record(row) if row else None


async def lock_grid_category(conn: Conn, grid_code: str, category: str) -> None:
    """Decisions on one grid's category, one at a time (each moves the next period's start)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('hotspot:' || $1 || ':' || $2))",
        grid_code,
        category,
    )


async def insert_decision(conn: Conn, row: DecisionRow) -> bool:
    """Record a decision; False when the hotspot was already decided (its primary key)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO hotspot_decisions (id, grid_code, area_path, category, period_start,"
            " decision, case_id, reason, note, evidence, decided_by, decided_by_name,"
            " decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            " ON CONFLICT (id) DO NOTHING RETURNING true",
            row.id,
            row.grid_code,
            row.area_path,
            row.category,
            row.period_start,
            row.decision,
            row.case_id,
            row.reason,
            row.note,
            row.evidence,
            row.decided_by,
            row.decided_by_name,
            row.decided_at,
        )
    )


async def category_name(conn: Conn, code: str) -> str | None:
    return await conn.fetchval("SELECT name FROM categories WHERE code = $1", code)


async def area_exists(conn: Conn, path: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM areas WHERE path = $1", path))


async def category_names(conn: Conn) -> dict[str, str]:
    return {r["code"]: r["name"] for r in await conn.fetch("SELECT code, name FROM categories")}
