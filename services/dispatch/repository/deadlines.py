"""What tracking announces about an assignment's clocks and urgings, kept for the inbox."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID


from shared.contract import Clock
from shared.db import Conn


async def clock_announced(
    conn: Conn,
    assignment_id: UUID,
    clock: Clock,
    due_at: datetime | None,
    running: bool,
    at: datetime,
) -> None:
    """A clock (re)started with ``due_at`` or stopped; an announcement older than the one
    applied changes nothing. A stop heard before its start keeps the clock stopped."""
    await conn.execute(
        "INSERT INTO assignment_clocks AS c (assignment_id, clock, due_at, running, as_of)"
        " VALUES ($1, $2, coalesce($3::timestamptz, $5), $4, $5)"
        " ON CONFLICT (assignment_id, clock) DO UPDATE"
        " SET due_at = coalesce($3::timestamptz, c.due_at), running = $4, as_of = $5"
        " WHERE c.as_of <= $5 AND NOT (c.as_of = $5 AND NOT c.running)",
        assignment_id,
        clock.value,
        due_at,
        running,
        at,
    )


async def urged(
    conn: Conn,
    assignment_id: UUID,
    count: int,
    at: datetime,
    note: str,
    by: str | None,
) -> None:
    """The ``count``-th urging: the newest one is kept (an urging heard twice changes nothing)."""
    await conn.execute(
        "INSERT INTO assignment_urgings AS u"
        " (assignment_id, count, last_urged_at, last_note, last_urged_by)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (assignment_id) DO UPDATE"
        " SET count = $2, last_urged_at = $3, last_note = $4, last_urged_by = $5"
        " WHERE u.count < $2",
        assignment_id,
        count,
        at,
        note,
        by,
    )
