"""The inbox: idempotent consumption. Call ``claim`` first inside the handler's transaction;
if it returns False the event was handled before and the handler must do nothing."""

from __future__ import annotations

import asyncpg

from shared.events import Envelope


async def claim(conn: asyncpg.Connection, consumer: str, event: Envelope) -> bool:
    row = await conn.fetchval(
        "INSERT INTO inbox (consumer, event_id, type) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        consumer, event.event_id, event.type,
    )
    return bool(row)
