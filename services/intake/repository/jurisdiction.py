"""The jurisdiction tree's SQL: one function per query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.intake.domain.jurisdiction import Area, Attached, Level
from shared.db import Conn

_COLUMNS = (
    "code, name, level, parent_code, path, boundary, min_lon, min_lat, max_lon, max_lat, updated_at"
)


@dataclass(frozen=True)
class AreaRow:
    area: Area
    boundary: dict[str, Any] | None
    bbox: tuple[float, float, float, float] | None  # min_lon, min_lat, max_lon, max_lat
    updated_at: datetime

    @classmethod
    def of(cls, r: asyncpg.Record) -> AreaRow:
        area = Area(r["code"], r["name"], Level(r["level"]), r["parent_code"], r["path"])
        bbox = (
            None
            if r["boundary"] is None
            else (r["min_lon"], r["min_lat"], r["max_lon"], r["max_lat"])
        )
        return cls(area, r["boundary"], bbox, r["updated_at"])


async def lock_tree(conn: Conn) -> None:
    """Serialise changes to the tree (moves, boundaries, workers): they are rare, and each
    checks the tree as a whole (children, overlaps) before it writes."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('intake:areas'))")


async def get_area(conn: Conn, code: str) -> AreaRow | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM areas WHERE code = $1", code)
    return AreaRow.of(row) if row else None


async def attached(conn: Conn, code: str) -> Attached:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM areas WHERE parent_code = $1) AS children,"
        "       (SELECT count(*) FROM cases WHERE grid_code = $1) AS cases,"
        "       (SELECT boundary IS NOT NULL FROM areas WHERE code = $1) AS boundary,"
        "       (SELECT count(*) FROM grid_workers WHERE grid_code = $1) AS workers",
        code,
    )
    assert row is not None  # a row of subqueries always comes back
    return Attached(
        children=row["children"],
        cases=row["cases"],
        boundary=bool(row["boundary"]),
        workers=row["workers"],
    )


async def save_area(conn: Conn, area: Area, now: datetime) -> str:
    """Insert or update one node; returns 'created', 'updated' or 'unchanged'."""
    inserted = await conn.fetchval(
        "INSERT INTO areas (code, name, level, parent_code, path, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,"
        "   parent_code = EXCLUDED.parent_code, path = EXCLUDED.path, updated_at = EXCLUDED.updated_at"
        " WHERE (areas.name, areas.level, areas.parent_code, areas.path)"
        "   IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.level, EXCLUDED.parent_code, EXCLUDED.path)"
        " RETURNING (xmax = 0)",
        area.code,
        area.name,
        area.level.value,
        area.parent_code,
        area.path,
        now,
    )
    return "unchanged" if inserted is None else "created" if inserted else "updated"


async def set_boundary(
    conn: Conn,
    code: str,
    geojson: dict[str, Any],
    bbox: tuple[float, float, float, float],
    now: datetime,
) -> bool:
    """Store a (checked) boundary; returns whether anything changed."""
    changed = await conn.fetchval(
        "UPDATE areas SET boundary = $2, min_lon = $3, min_lat = $4, max_lon = $5, max_lat = $6,"
        " updated_at = $7 WHERE code = $1 AND boundary IS DISTINCT FROM $2::jsonb RETURNING true",
        code,
        geojson,
        *bbox,
        now,
    )
    return bool(changed)


async def bounded_at(conn: Conn, lon: float, lat: float) -> list[AreaRow]:
    """Grids and micro-grids whose bounding box holds the point (candidates to test exactly)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM areas WHERE boundary IS NOT NULL"
        " AND box(point(min_lon, min_lat), point(max_lon, max_lat)) @> point($1, $2)"
        " ORDER BY code",
        lon,
        lat,
    )
    return [AreaRow.of(r) for r in rows]


async def grids_meeting_box(
    conn: Conn, bbox: tuple[float, float, float, float], exclude: str
) -> list[AreaRow]:
    """Other bounded grids whose bounding box meets ``bbox`` (candidates for an overlap)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM areas WHERE boundary IS NOT NULL AND level = 'grid'"
        " AND code <> $5"
        " AND box(point(min_lon, min_lat), point(max_lon, max_lat))"
        "     && box(point($1, $2), point($3, $4))"
        " ORDER BY code",
        *bbox,
        exclude,
    )
    return [AreaRow.of(r) for r in rows]


async def replace_workers(conn: Conn, grid_code: str, subjects: list[str]) -> None:
    await conn.execute(
        "DELETE FROM grid_workers WHERE grid_code = $1 AND subject <> ALL($2::text[])",
        grid_code,
        subjects,
    )
    await conn.execute(
        "INSERT INTO grid_workers (subject, grid_code)"
        " SELECT s, $1 FROM unnest($2::text[]) AS s ON CONFLICT DO NOTHING",
        grid_code,
        subjects,
    )


async def add_worker(conn: Conn, grid_code: str, subject: str) -> None:
    await conn.execute(
        "INSERT INTO grid_workers (subject, grid_code) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        subject,
        grid_code,
    )


async def list_workers(conn: Conn, grid_code: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT subject FROM grid_workers WHERE grid_code = $1 ORDER BY subject", grid_code
    )
    return [r["subject"] for r in rows]
