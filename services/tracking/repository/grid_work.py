"""SQL for the seeds' counts (migration 0011): each case's source (案件来源) and how it was last
closed (随手做 or 核查通过) and by whom, recorded as the events arrive; counted per grid."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from services.tracking.domain.grid_work import ClosingCount, SourceCount, source_of
from shared.contract import Actor
from shared.contract.values import Resolution
from shared.db import Conn

# The case lies under one of the roots ($n::text[]; NULL: anywhere).
_UNDER = """($%d::text[] IS NULL OR EXISTS (
        SELECT 1 FROM unnest($%d::text[]) AS root
        WHERE c.area_path = root OR starts_with(c.area_path, root || '/')))"""


def under(n: int) -> str:
    """The scope condition on ``c.area_path`` with the roots as parameter ``$n``."""
    return _UNDER % (n, n)


async def record_origin(
    conn: Conn, case_id: UUID, source: str, reported_at: datetime, reporter: str | None
) -> None:
    """案件来源, from the case's report (the first heard; a report is never repeated)."""
    await conn.execute(
        "INSERT INTO case_origins (case_id, source, reported_at, reporter)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (case_id) DO NOTHING",
        case_id,
        source,
        reported_at,
        reporter,
    )


async def record_closing(
    conn: Conn,
    case_id: UUID,
    event_id: UUID,
    closed_at: datetime,
    resolution: Resolution,
    actor: Actor | None,
) -> None:
    """The case's closing (结案) as it stands: a later one replaces an earlier one."""
    await conn.execute(
        "INSERT INTO case_closings AS k (case_id, event_id, closed_at, resolution, closed_by,"
        " closed_by_name, closed_by_role) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (case_id) DO UPDATE SET event_id = excluded.event_id,"
        " closed_at = excluded.closed_at, resolution = excluded.resolution,"
        " closed_by = excluded.closed_by, closed_by_name = excluded.closed_by_name,"
        " closed_by_role = excluded.closed_by_role,"
        " reopened_at = CASE WHEN k.reopened_at > excluded.closed_at THEN k.reopened_at END"
        " WHERE excluded.closed_at >= k.closed_at",
        case_id,
        event_id,
        closed_at,
        resolution.value,
        actor.subject if actor else None,
        actor.name if actor else None,
        actor.role if actor else None,
    )


async def record_reopening(conn: Conn, case_id: UUID, at: datetime) -> None:
    """重开: the closing before it no longer stands."""
    await conn.execute(
        "UPDATE case_closings SET reopened_at = $2"
        " WHERE case_id = $1 AND closed_at < $2 AND (reopened_at IS NULL OR reopened_at > $2)",
        case_id,
        at,
    )


async def closing_counts(
    conn: Conn, *, start: datetime, end: datetime, now: datetime, roots: tuple[str, ...] | None
) -> list[ClosingCount]:
    """The cases closed in ``[start, end)`` by ``now`` and not reopened since, per grid,
    resolution and closer."""
    rows = await conn.fetch(
        "SELECT c.area_path, k.resolution, k.closed_by, max(k.closed_by_name) AS name,"
        " count(*) AS n FROM case_closings k JOIN cases c ON c.case_id = k.case_id"
        " WHERE k.closed_at >= $1 AND k.closed_at < $2 AND k.closed_at <= $3"
        " AND (k.reopened_at IS NULL OR k.reopened_at > $3) AND "
        + under(4)
        + " GROUP BY c.area_path, k.resolution, k.closed_by",
        start,
        end,
        now,
        None if roots is None else list(roots),
    )
    return [
        ClosingCount(r["area_path"], Resolution(r["resolution"]), r["closed_by"], r["name"], r["n"])
        for r in rows
    ]


async def source_counts(
    conn: Conn, *, start: datetime, end: datetime, now: datetime, roots: tuple[str, ...] | None
) -> list[SourceCount]:
    """The cases reported in ``[start, end)`` by ``now``, per grid and source."""
    rows = await conn.fetch(
        "SELECT c.area_path, o.source, count(*) AS n FROM case_origins o"
        " JOIN cases c ON c.case_id = o.case_id"
        " WHERE o.reported_at >= $1 AND o.reported_at < $2 AND o.reported_at <= $3 AND "
        + under(4)
        + " GROUP BY c.area_path, o.source",
        start,
        end,
        now,
        None if roots is None else list(roots),
    )
    return [SourceCount(r["area_path"], source_of(r["source"]), r["n"]) for r in rows]
