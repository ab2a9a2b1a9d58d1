"""Notify's SQL: one function per query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notify.domain import Channel, DeliveryStatus, Recipient, RecipientKind

_RECIPIENT_COLUMNS = "id, name, kind, department_id, area_path, webhook_url, webhook_secret"


def _recipient(r: asyncpg.Record) -> Recipient:
    data = dict(r)
    data["kind"] = RecipientKind(data["kind"])
    return Recipient(**data)


@dataclass(frozen=True)
class InboxMessage:
    id: int
    recipient_id: str
    event_id: UUID
    case_id: UUID
    type: str
    title: str
    body: str
    title_en: str
    body_en: str
    link: str
    created_at: datetime
    read_at: datetime | None


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

# --- recipients ------------------------------------------------------------------------


async def insert_recipient(conn: asyncpg.Connection, r: Recipient) -> bool:
    """False if the id is taken."""
    return bool(await conn.fetchval(
        f"INSERT INTO recipients ({_RECIPIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (id) DO NOTHING RETURNING true",
        r.id, r.name, r.kind.value, r.department_id, r.area_path, r.webhook_url, r.webhook_secret,
    ))


async def update_recipient(conn: asyncpg.Connection, r: Recipient) -> bool:
    """False if there is no such recipient."""
    return bool(await conn.fetchval(
        "UPDATE recipients SET name = $2, kind = $3, department_id = $4, area_path = $5,"
        " webhook_url = $6, webhook_secret = $7, updated_at = now() WHERE id = $1 RETURNING true",
        r.id, r.name, r.kind.value, r.department_id, r.area_path, r.webhook_url, r.webhook_secret,
    ))


async def upsert_recipients(conn: asyncpg.Connection, rows: list[Recipient]) -> None:
    """Demo data: create or rename, never touching webhooks configured since."""
    await conn.executemany(
        "INSERT INTO recipients (id, name, kind, department_id, area_path)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
        " kind = EXCLUDED.kind, department_id = EXCLUDED.department_id,"
        " area_path = EXCLUDED.area_path, updated_at = now()",
        [(r.id, r.name, r.kind.value, r.department_id, r.area_path) for r in rows],
    )


async def get_recipient(conn: asyncpg.Connection, recipient_id: str) -> Recipient | None:
    row = await conn.fetchrow(
        f"SELECT {_RECIPIENT_COLUMNS} FROM recipients WHERE id = $1", recipient_id
    )
    return _recipient(row) if row else None


async def list_recipients(conn: asyncpg.Connection, kind: str | None) -> list[Recipient]:
    rows = await conn.fetch(
        f"SELECT {_RECIPIENT_COLUMNS} FROM recipients WHERE ($1::text IS NULL OR kind = $1)"
        " ORDER BY id",
        kind,
    )
    return [_recipient(r) for r in rows]


async def candidate_recipients(
    conn: asyncpg.Connection, department_id: str, area_paths: list[str]
) -> list[Recipient]:
    """The desks of one department and the supervisors of the given areas (the domain picks)."""
    rows = await conn.fetch(
        f"SELECT {_RECIPIENT_COLUMNS} FROM recipients"
        " WHERE (kind = 'department' AND department_id = $1)"
        "    OR (kind = 'supervisor' AND area_path = ANY($2::text[]))",
        department_id, area_paths,
    )
    return [_recipient(r) for r in rows]


# --- the in-app inbox ------------------------------------------------------------------------


async def insert_inbox_message(
    conn: asyncpg.Connection, *, recipient_id: str, event_id: UUID, case_id: UUID, type: str,
    title: str, body: str, title_en: str, body_en: str, link: str,
) -> int | None:
    """The new message's id, or None if this recipient already has this event's message."""
    return await conn.fetchval(
        "INSERT INTO inbox_messages (recipient_id, event_id, case_id, type, title, body,"
        " title_en, body_en, link) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (recipient_id, event_id) DO NOTHING RETURNING id",
        recipient_id, event_id, case_id, type, title, body, title_en, body_en, link,
    )


async def list_inbox(
    conn: asyncpg.Connection, recipient_id: str, *, unread: bool | None, limit: int, offset: int
) -> list[InboxMessage]:
    rows = await conn.fetch(
        "SELECT id, recipient_id, event_id, case_id, type, title, body, title_en, body_en, link,"
        " created_at, read_at FROM inbox_messages WHERE recipient_id = $1"
        " AND ($2::bool IS NULL OR (read_at IS NULL) = $2)"
        " ORDER BY id DESC LIMIT $3 OFFSET $4",
        recipient_id, unread, limit, offset,
    )
    return [InboxMessage(**dict(r)) for r in rows]


async def mark_read(
    conn: asyncpg.Connection, recipient_id: str, message_id: int
) -> InboxMessage | None:
    row = await conn.fetchrow(
        "UPDATE inbox_messages SET read_at = COALESCE(read_at, now())"
        " WHERE id = $1 AND recipient_id = $2"
        " RETURNING id, recipient_id, event_id, case_id, type, title, body, title_en, body_en,"
        " link, created_at, read_at",
        message_id, recipient_id,
    )
    return InboxMessage(**dict(row)) if row else None


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
