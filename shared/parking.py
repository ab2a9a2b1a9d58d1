"""Parked events: a consumer's own table of messages it keeps whole instead of dropping
(see shared/migrations/0003_parked_events.sql). Plain SQL, one function per query."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from shared.db import Conn

# Why a message was parked.
UNKNOWN_TYPE = "unknown_type"  # no event of this type in this build
UNKNOWN_VERSION = "unknown_version"  # the type is known, this version is not
DEAD_LETTER_FAILED = "dead_letter_failed"  # the dead-letter publish kept failing
DEAD_LETTER_OVERSIZE = "dead_letter_oversize"  # full copy of a truncated dead letter
# Replayed by default: what a newer build may now handle. An oversize row is the full copy
# of a message that is in the dead-letter topic; replay it by id.
REPLAYABLE = (UNKNOWN_TYPE, UNKNOWN_VERSION, DEAD_LETTER_FAILED)


@dataclass(frozen=True)
class Received:
    """One Kafka message as the consumer received it (or as a parked row kept it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class Parked:
    id: int
    message: Received
    type: str | None
    version: int | None
    reason: str
    error: str | None


def _headers_json(headers: Sequence[tuple[str, bytes]]) -> str:
    return json.dumps(
        [[k, v.decode("utf-8", "backslashreplace")] for k, v in headers], ensure_ascii=False
    )


async def park(
    conn: Conn | asyncpg.Pool,
    consumer: str,
    message: Received,
    *,
    reason: str,
    type: str | None = None,
    version: int | None = None,
    error: str | None = None,
) -> int:
    """Keep ``message`` whole; the same message parked twice is one row. Returns its id."""
    # Parked again (a redelivery, a failed replay): keep the row, note the latest error; a
    # failed dead-letter publish wins over the other reasons (it must stay replayable).
    return await conn.fetchval(
        """INSERT INTO parked_events (consumer, topic, "partition", "offset", key, headers,
                                      value, type, version, reason, error)
           VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9, $10, $11)
           ON CONFLICT (consumer, topic, "partition", "offset", value_sha256) DO UPDATE
              SET reason = CASE WHEN parked_events.reason = 'dead_letter_failed'
                                THEN parked_events.reason ELSE EXCLUDED.reason END,
                  error = coalesce(EXCLUDED.error, parked_events.error)
           RETURNING id""",
        consumer,
        message.topic,
        message.partition,
        message.offset,
        message.key,
        _headers_json(message.headers),
        message.value,
        type,
        version,
        reason,
        error,
    )


def _parked(row: asyncpg.Record) -> Parked:
    headers = [(k, v.encode()) for k, v in json.loads(row["headers"])] if row["headers"] else []
    message = Received(
        row["topic"], row["partition"], row["offset"], row["key"], row["value"], headers
    )
    return Parked(row["id"], message, row["type"], row["version"], row["reason"], row["error"])


async def claim_next(
    conn: Conn,
    consumer: str,
    *,
    after: int,
    reasons: Sequence[str],
    ids: Sequence[int] | None,
) -> Parked | None:
    """Lock the next pending row after ``after`` (in the caller's transaction); replicas
    replaying at the same time skip each other's rows."""
    row = await conn.fetchrow(
        """SELECT id, topic, "partition", "offset", key, headers::text AS headers, value,
                  type, version, reason, error
             FROM parked_events
            WHERE consumer = $1 AND replayed_at IS NULL AND id > $2
              AND ($3::bigint[] IS NULL AND reason = ANY($4::text[]) OR id = ANY($3::bigint[]))
            ORDER BY id LIMIT 1
              FOR UPDATE SKIP LOCKED""",
        consumer,
        after,
        list(ids) if ids is not None else None,
        list(reasons),
    )
    return _parked(row) if row else None


async def mark_replayed(conn: Conn, parked_id: int, outcome: str) -> None:
    await conn.execute(
        "UPDATE parked_events SET replayed_at = now(), replay_outcome = $2 WHERE id = $1",
        parked_id,
        outcome,
    )


async def pending(conn: Conn | asyncpg.Pool, consumer: str) -> list[dict[str, Any]]:
    """The rows not replayed yet, without their values (for operators and tests)."""
    rows = await conn.fetch(
        """SELECT id, topic, "partition", "offset", type, version, reason, error, parked_at,
                  length(value) AS value_bytes
             FROM parked_events WHERE consumer = $1 AND replayed_at IS NULL ORDER BY id""",
        consumer,
    )
    return [dict(r) for r in rows]
