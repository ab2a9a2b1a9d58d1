"""The delivery log: one row per event × recipient × channel, and the worker's claims.

Times that schedule work (when an attempt is due, when a robot took a message) come from the
caller's clock, so that tests can move time on; the rest is the database's ``now()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notify.domain import Carrier, Channel, DeliveryStatus, Recipient
from services.notify.repository.recipients import recipient_of
from services.notify.sealing import SecretBox
from shared import liveness
from shared.db import Conn
from shared.dto import from_row


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
    last_code: str | None
    next_attempt_at: datetime
    replays: int
    created_at: datetime
    sent_at: datetime | None
    position: int | None
    urgent: bool
    fallback_from: int | None
    digest_id: int | None

    @classmethod
    def of(cls, r: asyncpg.Record) -> Delivery:
        return from_row(cls, r, channel=Channel, status=DeliveryStatus)


@dataclass(frozen=True)
class Claim:
    """A due delivery taken by one worker for a lease, with its recipient as he is now."""

    id: int
    event_id: UUID
    case_id: UUID
    type: str
    channel: Channel
    attempts: int
    position: int | None
    urgent: bool
    payload: dict[str, Any]
    recipient: Recipient

    @property
    def recipient_id(self) -> str:
        return self.recipient.id


_DELIVERY_COLUMNS = (
    "id, event_id, case_id, type, recipient_id, channel, status, attempts, last_error,"
    " last_code, next_attempt_at, replays, created_at, sent_at, position, urgent,"
    " fallback_from, digest_id"
)


async def insert_delivery(
    conn: Conn,
    *,
    event_id: UUID,
    case_id: UUID,
    type: str,
    recipient_id: str,
    channel: Channel,
    status: DeliveryStatus,
    payload: dict[str, Any],
    due_at: datetime | None = None,
    position: int | None = None,
    urgent: bool = False,
    fallback_from: int | None = None,
) -> int | None:
    """The new delivery's id, or None if this event × recipient × channel exists already."""
    sent = status is DeliveryStatus.SENT
    return await conn.fetchval(
        "INSERT INTO deliveries (event_id, case_id, type, recipient_id, channel, status,"
        " attempts, payload, sent_at, next_attempt_at, position, urgent, fallback_from)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END,"
        " coalesce($10, now()), $11, $12, $13)"
        " ON CONFLICT (event_id, recipient_id, channel) DO NOTHING RETURNING id",
        event_id,
        case_id,
        type,
        recipient_id,
        channel.value,
        status.value,
        int(sent),
        payload,
        sent,
        due_at,
        position,
        urgent,
        fallback_from,
    )


async def get_delivery(conn: Conn, delivery_id: int, *, lock: bool = False) -> Delivery | None:
    sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
    sql += " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(sql, delivery_id)
    return Delivery.of(row) if row else None


async def list_deliveries(
    conn: Conn,
    *,
    event_id: UUID | None,
    case_id: UUID | None,
    recipient_id: str | None,
    status: str | None,
    channel: str | None,
    limit: int,
    offset: int,
) -> list[Delivery]:
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
        " WHERE ($1::uuid IS NULL OR event_id = $1) AND ($2::uuid IS NULL OR case_id = $2)"
        "   AND ($3::text IS NULL OR recipient_id = $3) AND ($4::text IS NULL OR status = $4)"
        "   AND ($5::text IS NULL OR channel = $5)"
        " ORDER BY id DESC LIMIT $6 OFFSET $7",
        event_id,
        case_id,
        recipient_id,
        status,
        channel,
        limit,
        offset,
    )
    return [Delivery.of(r) for r in rows]


# Due: its time has come, or the worker that claimed it is gone (shared.liveness) — a
# delivery cut off by a crash goes again at once, not after its lease. Never this worker's
# own claim: it claims while its sends are in flight.
_CLAIM = f"""
WITH {liveness.LIVE_CTE}
UPDATE deliveries d SET next_attempt_at = $3 + make_interval(secs => $2),
    claimed_by = {liveness.claim_name("$4")}
FROM recipients r
WHERE r.id = d.recipient_id AND d.id IN (
    SELECT id FROM deliveries
    WHERE status = 'pending' AND channel <> 'inbox'
      AND (next_attempt_at <= $3
           OR (claimed_by IS NOT NULL AND NOT {liveness.mine("claimed_by", "$4")}
               AND {liveness.dead("claimed_by")}))
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.event_id, d.case_id, d.type, d.channel, d.attempts, d.position, d.urgent,
          d.payload, r.id AS r_id, r.name, r.kind, r.department_id, r.area_path,
          r.webhook_url, r.webhook_secret, r.channels, r.locale, r.quiet_start, r.quiet_end,
          r.muted_events
"""


async def claim_due(
    conn: Conn, limit: int, lease_seconds: float, now: datetime, box: SecretBox, worker_id: str
) -> list[Claim]:
    """Take up to ``limit`` due deliveries for ``lease_seconds`` (replicas share rows) in the
    name of ``worker_id``."""
    rows = await conn.fetch(_CLAIM, limit, lease_seconds, now, worker_id)
    return [
        Claim(
            id=r["id"],
            event_id=r["event_id"],
            case_id=r["case_id"],
            type=r["type"],
            channel=Channel(r["channel"]),
            attempts=r["attempts"],
            position=r["position"],
            urgent=r["urgent"],
            payload=r["payload"],
            recipient=recipient_of(r, box, "r_id"),
        )
        for r in rows
    ]


async def mark_sent(
    conn: Conn,
    delivery_id: int,
    claimed_attempts: int,
    *,
    now: datetime,
    code: str,
    destination: str | None,
) -> bool:
    """False if the row moved on meanwhile (its lease ran out and another worker took it)."""
    return bool(
        await conn.fetchval(
            "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = $3,"
            " last_code = $4, destination = $5, claimed_by = NULL"
            " WHERE id = $1 AND status = 'pending' AND attempts = $2 RETURNING true",
            delivery_id,
            claimed_attempts,
            now,
            code[:200],
            destination,
        )
    )


async def mark_digest_sent(
    conn: Conn,
    carrier_id: int,
    carrier_attempts: int,
    claimed: list[tuple[int, int]],
    *,
    now: datetime,
    code: str,
    destination: str,
) -> bool:
    """One robot digest went out: the carrier is sent and the others (id, attempts when
    claimed) digested into it, in ONE statement (a single round trip right after the send,
    atomic by itself). False if the carrier moved on meanwhile (its lease ran out)."""
    return bool(
        await conn.fetchval(
            "WITH carrier AS ("
            " UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = $5,"
            " last_code = $6, destination = $7, claimed_by = NULL"
            " WHERE id = $1 AND status = 'pending' AND attempts = $2 RETURNING true AS done),"
            " digested AS ("
            " UPDATE deliveries d SET status = 'digested', attempts = d.attempts + 1, sent_at = $5,"
            " digest_id = $1, last_code = 'digest', claimed_by = NULL"
            " FROM unnest($3::bigint[], $4::int[]) AS c (id, attempts)"
            " WHERE d.id = c.id AND d.status = 'pending' AND d.attempts = c.attempts"
            " RETURNING d.id)"
            " SELECT coalesce((SELECT done FROM carrier), false)",
            carrier_id,
            carrier_attempts,
            [i for i, _ in claimed],
            [a for _, a in claimed],
            now,
            code[:200],
            destination,
        )
    )


async def mark_failed(
    conn: Conn,
    delivery_id: int,
    claimed_attempts: int,
    status: DeliveryStatus,
    *,
    error: str,
    code: str,
    next_attempt_at: datetime,
    counted: bool = True,
) -> bool:
    """Record a failed attempt (``counted``: it uses one of the bounded attempts; a robot's
    "too fast" does not)."""
    return bool(
        await conn.fetchval(
            "UPDATE deliveries SET status = $3, attempts = attempts + $7::int, last_error = $4,"
            " last_code = $5, next_attempt_at = $6, claimed_by = NULL"
            " WHERE id = $1 AND status = 'pending' AND attempts = $2 RETURNING true",
            delivery_id,
            claimed_attempts,
            status.value,
            error[:2000],
            code[:200],
            next_attempt_at,
            int(counted),
        )
    )


async def robot_sends(conn: Conn, destination: str, since: datetime) -> list[datetime]:
    """When the robot ``destination`` took messages since ``since`` (a digest counts once)."""
    rows = await conn.fetch(
        "SELECT sent_at FROM deliveries WHERE destination = $1 AND status = 'sent'"
        " AND sent_at > $2 ORDER BY sent_at",
        destination,
        since,
    )
    return [r["sent_at"] for r in rows]


async def requeue(conn: Conn, delivery_id: int) -> Delivery:
    """A dead delivery gets a fresh schedule of attempts, starting now."""
    row = await conn.fetchrow(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),"
        f" replays = replays + 1, claimed_by = NULL WHERE id = $1 RETURNING {_DELIVERY_COLUMNS}",
        delivery_id,
    )
    assert row is not None, f"delivery {delivery_id} is gone"  # the caller locked it
    return Delivery.of(row)


async def other_channels(conn: Conn, d: Delivery) -> list[Carrier]:
    """The same event's deliveries to the same recipient on the other channels (not the
    inbox), oldest first."""
    rows = await conn.fetch(
        "SELECT id, channel, status FROM deliveries WHERE event_id = $1 AND recipient_id = $2"
        " AND channel NOT IN ('inbox', $3) ORDER BY id",
        d.event_id,
        d.recipient_id,
        d.channel.value,
    )
    return [Carrier(r["id"], r["channel"], DeliveryStatus(r["status"])) for r in rows]
