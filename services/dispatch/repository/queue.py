"""The queue of whistled cases waiting for manual dispatch (人工派单)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


from services.dispatch.repository.scope import _in_areas, area_scope
from shared.db import Conn


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


async def queue_for_manual_dispatch(conn: Conn, w: WaitingCase) -> None:
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
        w.case_id,
        w.case_no,
        w.area_path,
        w.category,
        w.priority,
        w.description,
        w.departments,
        w.note,
        w.reason,
        w.whistled_at,
        w.queued_at,
    )


async def clear_manual_dispatch(conn: Conn, case_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE manual_dispatch SET cleared_at = $2 WHERE case_id = $1 AND cleared_at IS NULL",
        case_id,
        at,
    )


async def list_waiting(
    conn: Conn, areas: tuple[str, ...] | None, limit: int, offset: int
) -> list[WaitingCase]:
    """Cases waiting for manual dispatch; with ``areas``, only those inside the subtrees."""
    rows = await conn.fetch(
        "SELECT case_id, case_no, area_path, category, priority, description, departments,"
        " note, reason, whistled_at, queued_at FROM manual_dispatch WHERE cleared_at IS NULL"
        f" AND {_in_areas('area_path', 3, 4)}"
        " ORDER BY queued_at, case_id LIMIT $1 OFFSET $2",
        limit,
        offset,
        *area_scope(areas),
    )
    return [WaitingCase(**{**dict(r), "departments": list(r["departments"])}) for r in rows]


async def waiting_case(conn: Conn, case_id: UUID, *, lock: bool = False) -> WaitingCase | None:
    """The case if it waits for manual dispatch now."""
    row = await conn.fetchrow(
        "SELECT case_id, case_no, area_path, category, priority, description, departments,"
        " note, reason, whistled_at, queued_at FROM manual_dispatch"
        " WHERE case_id = $1 AND cleared_at IS NULL" + (" FOR UPDATE" if lock else ""),
        case_id,
    )
    return WaitingCase(**{**dict(row), "departments": list(row["departments"])}) if row else None
