"""SQL for casework: one function per query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from shared.db import Conn


@dataclass(frozen=True)
class CaseExtras:
    resolution: str | None
    closed_at: datetime | None
    merged_into: UUID | None
    assigned_departments: list[str]
    rework_count: int
    reopen_count: int


async def extras(conn: Conn, case_id: UUID) -> CaseExtras:
    row = await conn.fetchrow(
        "SELECT resolution, closed_at, merged_into, assigned_departments, rework_count,"
        " reopen_count FROM cases WHERE id = $1",
        case_id,
    )
    assert row is not None, f"case {case_id} is gone"  # callers hold the case
    return CaseExtras(**{**dict(row), "assigned_departments": list(row["assigned_departments"])})


async def set_resolution(
    conn: Conn, case_id: UUID, resolution: str | None, merged_into: UUID | None = None
) -> None:
    await conn.execute(
        "UPDATE cases SET resolution = $2, merged_into = $3 WHERE id = $1",
        case_id,
        resolution,
        merged_into,
    )


async def count_rework(conn: Conn, case_id: UUID) -> None:
    await conn.execute("UPDATE cases SET rework_count = rework_count + 1 WHERE id = $1", case_id)


async def count_reopen(conn: Conn, case_id: UUID) -> None:
    await conn.execute(
        "UPDATE cases SET reopen_count = reopen_count + 1, resolution = NULL, closed_at = NULL"
        " WHERE id = $1",
        case_id,
    )


async def possible_duplicates(
    conn: Conn,
    *,
    case_id: UUID,
    category: str,
    grid_code: str,
    lat: float | None,
    lon: float | None,
    since: datetime,
    radius_m: float,
    limit: int = 10,
) -> list[asyncpg.Record]:
    """Open cases of the same category reported since ``since`` in the same grid or within
    ``radius_m`` metres (haversine), nearest first."""
    return await conn.fetch(
        """
        SELECT * FROM (
            SELECT id, case_no, grid_code, area_path, description, status, reported_at,
                   CASE WHEN $5::float8 IS NULL OR lat IS NULL THEN NULL ELSE
                     2 * 6371000 * asin(sqrt(
                       power(sin(radians(lat - $5) / 2), 2)
                       + cos(radians($5)) * cos(radians(lat))
                         * power(sin(radians(lon - $6) / 2), 2))) END AS distance_m
            FROM cases
            WHERE category = $2 AND status <> 'closed' AND id <> $1 AND reported_at >= $4
        ) nearby
        WHERE grid_code = $3 OR distance_m <= $7
        ORDER BY distance_m NULLS LAST, reported_at
        LIMIT $8
        """,
        case_id,
        category,
        grid_code,
        since,
        lat,
        lon,
        radius_m,
        limit,
    )


async def credit_reporters(conn: Conn, primary: UUID, duplicate: UUID) -> None:
    """The primary credits the duplicate's reporter (and those already credited to it) and
    keeps the earliest report time."""
    await conn.execute(
        "INSERT INTO case_reporters (case_id, from_case_id, reporter, reported_by, reported_at)"
        " SELECT $1::uuid, id, reporter, reported_by, reported_at FROM cases WHERE id = $2"
        " UNION ALL SELECT $1::uuid, from_case_id, reporter, reported_by, reported_at"
        "   FROM case_reporters WHERE case_id = $2"
        " ON CONFLICT DO NOTHING",
        primary,
        duplicate,
    )
    await conn.execute(
        "UPDATE cases p SET reported_at = least(p.reported_at, d.reported_at)"
        " FROM cases d WHERE p.id = $1 AND d.id = $2",
        primary,
        duplicate,
    )


async def reporters(conn: Conn, case_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT reporter, reported_by, reported_at, id AS case_id FROM cases WHERE id = $1"
        " UNION ALL SELECT reporter, reported_by, reported_at, from_case_id FROM case_reporters"
        "   WHERE case_id = $1 ORDER BY reported_at",
        case_id,
    )


async def has_rating(conn: Conn, case_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM ratings WHERE case_id = $1", case_id))


async def insert_rating(
    conn: Conn,
    case_id: UUID,
    score: int,
    comment: str | None,
    channel: str,
    rated_by: str,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO ratings (case_id, score, comment, channel, rated_by, rated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        case_id,
        score,
        comment,
        channel,
        rated_by,
        at,
    )


async def rating(conn: Conn, case_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT score, comment, channel, rated_by, rated_at FROM ratings WHERE case_id = $1",
        case_id,
    )


async def insert_link(
    conn: Conn,
    token_hash: str,
    case_id: UUID,
    by: str,
    at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO rating_links (token_hash, case_id, created_by, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        token_hash,
        case_id,
        by,
        at,
        expires_at,
    )


async def link(conn: Conn, token_hash: str, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT case_id, expires_at, used_at FROM rating_links WHERE token_hash = $1"
        + (" FOR UPDATE" if lock else ""),
        token_hash,
    )


async def use_link(conn: Conn, token_hash: str, at: datetime) -> None:
    await conn.execute("UPDATE rating_links SET used_at = $2 WHERE token_hash = $1", token_hash, at)
