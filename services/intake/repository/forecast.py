"""Intake's copy of tracking's resolution forecast (预计办结时间), one row per case."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.db import Conn


async def keep_forecast(
    conn: Conn,
    case_id: UUID,
    expected_at: datetime | None,
    earliest: datetime | None,
    latest: datetime | None,
    basis: str | None,
    as_of: datetime,
) -> bool:
    """Record the case's forecast made at ``as_of``; one older than the one kept changes
    nothing. False when nothing changed (an unknown case, or an older forecast)."""
    status = await conn.execute(
        "UPDATE cases SET expected_resolution_at = $2, expected_earliest = $3,"
        " expected_latest = $4, expected_basis = $5, expected_as_of = $6"
        " WHERE id = $1 AND (expected_as_of IS NULL OR expected_as_of <= $6)",
        case_id,
        expected_at,
        earliest,
        latest,
        basis,
        as_of,
    )
    return status.split()[-1] != "0"
