"""Transactional outbox and its relay.

``add`` writes an event in the caller's transaction. ``OutboxRelay`` publishes unsent rows
and marks them sent only after the broker acknowledged them. It wakes on LISTEN/NOTIFY and
polls as a fallback; replicas share rows with ``FOR UPDATE SKIP LOCKED``; it only ever takes
the oldest unsent row of each key, so one case's events leave in the order they were written
even with several replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import timedelta
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential_jitter

from shared import db, metrics
from shared.events import Envelope

log = structlog.get_logger()

Publish = Callable[[str, bytes, bytes, dict[str, str]], Awaitable[None]]


async def add(conn: asyncpg.Connection, *events: Envelope) -> None:
    """Write events to the outbox inside the caller's (open) transaction."""
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.add must run inside the state change's transaction")
    await conn.executemany(
        "INSERT INTO outbox (event_id, topic, key, type, payload) VALUES ($1, $2, $3, $4, $5)",
        [
            (e.event_id, e.topic, str(e.case_id), e.type, e.model_dump(mode="json"))
            for e in events
        ],
    )


# Lock the oldest unsent rows that no other relay holds, then keep, for each key, only the
# rows with no older unsent row of the same key outside this claim: a relay publishes a
# key's events only from its head, in order, so order survives several replicas. Claimed
# rows that are not kept stay locked until this transaction ends and wait for a later round.
_CLAIM = """
WITH claimed AS MATERIALIZED (
    SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
SELECT o.id, o.topic, o.key, o.payload FROM outbox o JOIN claimed c ON c.id = o.id
WHERE NOT EXISTS (
    SELECT 1 FROM outbox p
    WHERE p.sent_at IS NULL AND p.key = o.key AND p.id < o.id
      AND p.id NOT IN (SELECT id FROM claimed))
ORDER BY o.id
"""


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        publish: Publish,
        *,
        service: str,
        batch_size: int = 100,
        poll_interval: float = 2.0,
        outbox_retention: timedelta = timedelta(hours=72),
        inbox_retention: timedelta = timedelta(days=30),
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._publish = publish
        self._service = service
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._outbox_retention = outbox_retention
        self._inbox_retention = inbox_retention
        self._next_housekeeping = 0.0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    # -- one round ----------------------------------------------------------------------

    async def publish_batch(self) -> int:
        """Publish one batch; return how many rows were marked sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, self._batch_size)
            if not rows:
                return 0
            by_key: dict[str, list[asyncpg.Record]] = {}
            for row in rows:
                by_key.setdefault(row["key"], []).append(row)
            # Keys in parallel; one key's rows one after the other, stopping at a failure so
            # nothing of that key overtakes it.
            outcomes = await asyncio.gather(*(self._publish_in_order(k) for k in by_key.values()))
            sent = [i for ok, _ in outcomes for i in ok]
            failed = [f for _, f in outcomes if f is not None]
            if sent:
                await conn.execute(
                    "UPDATE outbox SET sent_at = now(), attempts = attempts + 1"
                    " WHERE id = ANY($1::bigint[])",
                    sent,
                )
            if failed:
                await conn.executemany(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                    failed,
                )
        metrics.OUTBOX_PUBLISHED.labels(self._service).inc(len(sent))
        if failed:
            metrics.OUTBOX_PUBLISH_FAILED.labels(self._service).inc(len(failed))
            log.warning("outbox_publish_failed", failed=len(failed), error=failed[0][1])
        return len(sent)

    async def _publish_in_order(
        self, rows: list[asyncpg.Record]
    ) -> tuple[list[int], tuple[int, str] | None]:
        sent: list[int] = []
        for row in rows:
            try:
                await self._publish_row(row)
            except Exception as exc:  # reported, retried next round; later rows wait
                return sent, (row["id"], repr(exc)[:500])
            sent.append(row["id"])
        return sent, None

    async def _publish_row(self, row: asyncpg.Record) -> None:
        payload = row["payload"]
        headers = {
            "type": str(payload["type"]),
            "version": str(payload["version"]),
            "event_id": str(payload["event_id"]),
            "correlation_id": str(payload.get("correlation_id") or ""),
        }
        value = json.dumps(payload, ensure_ascii=False).encode()
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3), wait=wait_exponential_jitter(multiplier=0.1, max=1, jitter=0.1), reraise=True
        ):
            with attempt:
                await self._publish(row["topic"], row["key"].encode(), value, headers)

    async def housekeeping(self) -> tuple[int, int]:
        """Purge sent outbox rows and handled inbox ids past their retention."""
        async with self._pool.acquire() as conn:
            outbox_purged = await conn.fetchval(
                "WITH gone AS (DELETE FROM outbox WHERE sent_at < now() - $1::interval"
                " RETURNING 1) SELECT count(*) FROM gone", self._outbox_retention,
            )
            inbox_purged = await conn.fetchval(
                "WITH gone AS (DELETE FROM inbox WHERE handled_at < now() - $1::interval"
                " RETURNING 1) SELECT count(*) FROM gone", self._inbox_retention,
            )
        if outbox_purged or inbox_purged:
            log.info("housekeeping_purged", outbox=outbox_purged, inbox=inbox_purged)
        return outbox_purged, inbox_purged

    async def backlog(self) -> int:
        async with self._pool.acquire() as conn:
            count = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        metrics.OUTBOX_BACKLOG.labels(self._service).set(count)
        return count

    # -- the loop -----------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="outbox-relay"),
            asyncio.create_task(self._listen(), name="outbox-listen"),
        ]

    async def stop(self, flush_timeout: float = 10.0) -> None:
        """Stop the loop, then flush what is left (bounded)."""
        self._stopping.set()
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(flush_timeout):
                while await self.publish_batch():
                    pass

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                sent = await self.publish_batch()
                await self.backlog()
                if time.monotonic() >= self._next_housekeeping:
                    self._next_housekeeping = time.monotonic() + 600
                    await self.housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database or broker away: try again after a pause
                log.warning("outbox_relay_error", error=repr(exc))
                sent = 0
            if sent >= self._batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()

    async def _listen(self) -> None:
        """A dedicated connection LISTENing for inserts; reconnects when it drops. Connected,
        the relay wakes to catch up on anything written while no one listened."""
        await db.listen(self._dsn, "outbox", lambda _payload: self._wake.set(),
                        stopping=self._stopping, retry_interval=self._poll_interval,
                        connected=self._wake.set)
