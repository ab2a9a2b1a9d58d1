"""Notify's SQL: one function per query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notify.domain import Channel, DeliveryStatus


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: UUID
    case_id: UUID
    type: str
    recipient_id: str
    channel: Channel
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    replays: int
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, r: asyncpg.Record) -> Delivery:
        data = {k: r[k] for k in cls.__dataclass_fields__}
        data["channel"] = Channel(data["channel"])
        data["status"] = DeliveryStatus(data["status"])
        return cls(**data)


@dataclass(frozen=True)
class ClaimedWebhook:
    """A due webhook delivery taken by one worker, with where and how to send it."""

    id: int
    event_id: UUID
    case_id: UUID
    recipient_id: str
    attempts: int
    payload: dict[str, Any]
    webhook_url: str | None
    webhook_secret: str | None


_DELIVERY_COLUMNS = (
    "id, event_id, case_id, type, recipient_id, channel, status, attempts, last_error,"
    " next_attempt_at, replays, created_at, sent_at"
)

# --- the delivery log ---------------------------------------------------------------------------


async def insert_delivery(
    conn: asyncpg.Connection, *, event_id: UUID, case_id: UUID, type: str, recipient_id: str,
    channel: Channel, status: DeliveryStatus, payload: dict[str, Any],
) -> int | None:
    """The new delivery's id, or None if this event × recipient × channel exists already."""
    sent = status is DeliveryStatus.SENT
    return await conn.fetchval(
        "INSERT INTO deliveries (event_id, case_id, type, recipient_id, channel, status,"
        " attempts, payload, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
        " CASE WHEN $9 THEN now() END)"
        " ON CONFLICT (event_id, recipient_id, channel) DO NOTHING RETURNING id",
        event_id, case_id, type, recipient_id, channel.value, status.value, int(sent),
        payload, sent,
    )


async def get_delivery(
    conn: asyncpg.Connection, delivery_id: int, *, lock: bool = False
) -> Delivery | None:
    sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
    sql += " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(sql, delivery_id)
    return Delivery.of(row) if row else None


async def list_deliveries(
    conn: asyncpg.Connection, *, event_id: UUID | None, case_id: UUID | None,
    recipient_id: str | None, status: str | None, channel: str | None, limit: int, offset: int,
) -> list[Delivery]:
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
        " WHERE ($1::uuid IS NULL OR event_id = $1) AND ($2::uuid IS NULL OR case_id = $2)"
        "   AND ($3::text IS NULL OR recipient_id = $3) AND ($4::text IS NULL OR status = $4)"
        "   AND ($5::text IS NULL OR channel = $5)"
        " ORDER BY id DESC LIMIT $6 OFFSET $7",
        event_id, case_id, recipient_id, status, channel, limit, offset,
    )
    return [Delivery.of(r) for r in rows]


_CLAIM = """
UPDATE deliveries d SET next_attempt_at = now() + make_interval(secs => $2)
FROM recipients r
WHERE r.id = d.recipient_id AND d.id IN (
    SELECT id FROM deliveries
    WHERE status = 'pending' AND channel = 'webhook' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.event_id, d.case_id, d.recipient_id, d.attempts, d.payload,
          r.webhook_url, r.webhook_secret
"""


async def claim_due_webhooks(
    conn: asyncpg.Connection, limit: int, lease_seconds: float
) -> list[ClaimedWebhook]:
    """Take up to ``limit`` due webhook deliveries for ``lease_seconds`` (replicas share rows)."""
    rows = await conn.fetch(_CLAIM, limit, lease_seconds)
    return [ClaimedWebhook(**dict(r)) for r in rows]


async def mark_sent(conn: asyncpg.Connection, delivery_id: int, claimed_attempts: int) -> bool:
    """False if the row moved on meanwhile (its lease ran out and another worker took it)."""
    return bool(await conn.fetchval(
        "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = now()"
        " WHERE id = $1 AND status = 'pending' AND attempts = $2 RETURNING true",
        delivery_id, claimed_attempts,
    ))


async def mark_failed(
    conn: asyncpg.Connection, delivery_id: int, claimed_attempts: int, status: DeliveryStatus,
    error: str, retry_in_seconds: float,
) -> bool:
    return bool(await conn.fetchval(
        "UPDATE deliveries SET status = $3, attempts = attempts + 1, last_error = $4,"
        " next_attempt_at = now() + make_interval(secs => $5)"
        " WHERE id = $1 AND status = 'pending' AND attempts = $2 RETURNING true",
        delivery_id, claimed_attempts, status.value, error[:2000], retry_in_seconds,
    ))


async def requeue(conn: asyncpg.Connection, delivery_id: int) -> None:
    """A dead delivery gets a fresh schedule of attempts, starting now."""
    await conn.execute(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),"
        " replays = replays + 1 WHERE id = $1",
        delivery_id,
    )
