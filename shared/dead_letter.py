"""The dead-letter copy of a message: its headers, its size, and a bounded publish.

A copy that would exceed what the producer may send (the original near 1 MiB plus our
headers) is truncated; the caller parks the full copy in its database first and names the
parked row in the headers, so nothing is lost. The publish is retried with capped backoff
while the fault is transient, a bounded number of times; the caller parks the message when
it still fails, so a broker that refuses it never blocks the partition. Each copy published
is also kept in the consumer's database (``keep_copy``): the embedded broker keeps the topic
in memory only, and the stack publishes the kept copies again after a broker loss.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from tenacity import AsyncRetrying, RetryCallState, wait_exponential_jitter

from shared.faults import RetryPolicy, is_transient
from shared.parking import Received
from shared.db import Conn

log = structlog.get_logger()

# Room for what the client adds: FastStream's headers, the record and batch framing.
_FRAMING_BYTES = 1024

Publish = Callable[[bytes, bytes | None, dict[str, str]], Awaitable[Any]]


def headers_for(
    message: Received, exc: BaseException, *, group_id: str, service: str
) -> dict[str, str]:
    return {
        "dlt-original-topic": message.topic,
        "dlt-original-partition": str(message.partition),
        "dlt-original-offset": str(message.offset),
        "dlt-consumer-group": group_id,
        "dlt-service": service,
        "dlt-error-type": type(exc).__name__,
        "dlt-error": str(exc)[:2000],
        "dlt-failed-at": datetime.now(UTC).isoformat(),
    }


def copy_size(value: bytes, key: bytes | None, headers: dict[str, str]) -> int:
    meta = sum(len(k.encode()) + len(v.encode()) for k, v in headers.items())
    return len(value) + len(key or b"") + meta + _FRAMING_BYTES


def truncated(
    value: bytes, key: bytes | None, headers: dict[str, str], *, limit: int, parked_id: int
) -> tuple[bytes, dict[str, str]]:
    """The copy cut to fit ``limit``, with headers saying where the whole one is."""
    headers = {
        **headers,
        "dlt-truncated": "true",
        "dlt-original-bytes": str(len(value)),
        "dlt-parked-id": str(parked_id),
    }
    room = max(0, limit - copy_size(b"", key, headers))
    return value[:room], headers


async def publish_bounded(
    publish: Publish, value: bytes, key: bytes | None, headers: dict[str, str], policy: RetryPolicy
) -> None:
    """Publish the copy; retry transient broker faults with capped backoff, at most
    ``policy.dead_letter_publish_attempts`` times; raise the last error after that."""

    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return not is_transient(exc) or state.attempt_number >= policy.dead_letter_publish_attempts

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("dead_letter_publish_retry", attempt=state.attempt_number, error=repr(exc))

    async for attempt in AsyncRetrying(
        stop=stop,
        before_sleep=before_sleep,
        reraise=True,
        wait=wait_exponential_jitter(
            multiplier=policy.initial_backoff_seconds,
            max=policy.max_backoff_seconds,
            jitter=policy.initial_backoff_seconds,
        ),
    ):
        with attempt:
            await publish(value, key, headers)


async def keep_copy(
    conn: Conn | asyncpg.Pool,
    consumer: str,
    value: bytes,
    key: bytes | None,
    headers: dict[str, str],
) -> None:
    """Keep the copy just published in the consumer's database (dead_letter_copies), so that
    it outlives a broker that loses the dead-letter topic."""
    await conn.execute(
        "INSERT INTO dead_letter_copies (consumer, key, value, headers)"
        " VALUES ($1, $2, $3, $4::text::jsonb)",
        consumer,
        key,
        value,
        json.dumps(headers, ensure_ascii=False),
    )


async def copies_since(
    conn: Conn | asyncpg.Pool, since: datetime
) -> list[tuple[bytes | None, bytes, dict[str, str]]]:
    """The copies kept since ``since``, oldest first: (key, value, headers)."""
    rows = await conn.fetch(
        "SELECT key, value, headers::text AS headers FROM dead_letter_copies"
        " WHERE dead_lettered_at >= $1 ORDER BY id",
        since,
    )
    return [(r["key"], r["value"], json.loads(r["headers"])) for r in rows]


def dead_letter_record(value: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """A dead-lettered message as a readable dict (for tools and tests)."""
    try:
        body: Any = json.loads(value)
    except ValueError:
        body = value.decode(errors="replace")
    return {"headers": headers, "body": body}
