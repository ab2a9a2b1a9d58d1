"""The inbox: idempotent consumption. Call ``claim`` first inside the handler's transaction;
if it returns False the event was handled before and the handler must do nothing."""

from __future__ import annotations


from shared.contract import Envelope
from shared.db import Conn


async def claim(conn: Conn, consumer: str, event: Envelope) -> bool:
    row = await conn.fetchval(
        "INSERT INTO inbox (consumer, event_id, type) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        event.event_id,
        event.type,
    )
    return bool(row)


async def claim_many(conn: Conn, consumer: str, events: list[Envelope]) -> set:
    """``claim`` for many events in one statement: the ids of those not handled before."""
    rows = await conn.fetch(
        "INSERT INTO inbox (consumer, event_id, type)"
        " SELECT $1, e.id, e.type FROM unnest($2::uuid[], $3::text[]) AS e(id, type)"
        " ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        [e.event_id for e in events],
        [e.type for e in events],
    )
    return {r["event_id"] for r in rows}
