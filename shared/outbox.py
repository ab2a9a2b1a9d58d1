"""Transactional outbox and its relay.

``add`` writes an event in the caller's transaction. ``OutboxRelay`` publishes unsent rows
in three steps, so no database transaction is open while the broker is slow or hangs:

1. **claim** (one short transaction): lock the oldest eligible rows ``FOR UPDATE SKIP
   LOCKED`` — replicas share the work — and mark them ``claimed_by`` this relay until
   ``claimed_until`` (the lease); commit.
2. **publish**, outside any transaction; each row bounded by ``publish_timeout``, and no row
   is started unless it can finish within the lease.
3. **mark** each acknowledged row sent; release or back off the others.

A relay that dies between 1 and 3 leaves its rows claimed; another relay takes them over and
publishes them again: at-least-once, and consumers are idempotent. It does so at once when
the dead relay's database session is gone — a started relay holds a session advisory lock
(its **liveness**) on its LISTEN connection, which the server drops with the process — and
otherwise once the lease has passed (a host that vanished without closing its connection, a
relay that is alive but stuck). Without the liveness a service restarted after a crash held
a case's later events back for the whole lease (120 s): the new process is a new relay.

Order: a relay only takes a case's (key's) rows from the head, one after the other, and
stops at the first failure, so one case's events leave in the order they were written even
with several replicas.

Failures back off per row (capped exponential, with jitter), not per batch. An error that
says the broker will never take this row (too large, invalid topic, a payload that cannot be
encoded — anything but a connection/timeout/retriable Kafka error) counts toward parking:
after ``max_attempts`` such failures the row is **parked** (``parked_at``, ``last_error``,
``attempts``), a warning is logged and ``whistle_outbox_parked_rows`` (gauge) and ``whistle_outbox_parked_total`` count it. Transient errors
(broker away) back off but never park: an outage must not park the whole outbox.

Per-case order decision: a parked row **holds back the later rows of its case** — they are
neither published nor parked, they wait (other cases keep flowing). Publishing them would
let, say, a case's closing overtake its whistle silently and leave consumers with a history
that never happened. ``redrive`` un-parks rows once they can be published (limit raised,
payload fixed); the held rows then follow in order. ``parked`` lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from opentelemetry import context as otel_context
from opentelemetry import propagate
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared import db, liveness, metrics
from shared.contract import Envelope
from shared.db import Conn

log = structlog.get_logger()

Publish = Callable[[str, bytes, bytes, dict[str, str]], Awaitable[None]]


async def add(conn: Conn, *events: Envelope) -> None:
    """Write events to the outbox inside the caller's (open) transaction."""
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.add must run inside the state change's transaction")
    trace_context = current_trace_context()
    await conn.executemany(
        "INSERT INTO outbox (event_id, topic, key, type, payload, trace_context)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (e.event_id, e.topic, str(e.case_id), e.type, e.model_dump(mode="json"), trace_context)
            for e in events
        ],
    )


def current_trace_context() -> dict[str, str] | None:
    """The current trace context as W3C headers (None when there is none: tracing off)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def is_transient(exc: BaseException) -> bool:
    """Broker away or slow (worth retrying); anything else is this row's own fault."""
    if isinstance(exc, (KafkaConnectionError, KafkaTimeoutError, OSError, TimeoutError)):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


# Candidates: unsent, not parked, not in backoff, not under another live relay's lease, and
# no older row of the same key that cannot go now (parked, backing off, claimed elsewhere) —
# so rows held behind a parked one never fill the batch. Of the rows locked, keep those with
# no older unsent row of their key outside this claim (another relay may hold it locked
# right now), and claim them with a lease. A relay's own stale claims (a cancelled round)
# are its to take again; so are the claims of a relay whose session is gone (not in `live`).
_CLAIM = f"""
WITH {liveness.LIVE_CTE}, candidates AS MATERIALIZED (
    SELECT o.id FROM outbox o
    WHERE o.sent_at IS NULL AND o.parked_at IS NULL
      AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= now())
      AND (o.claimed_until IS NULL OR o.claimed_until < now()
           OR {liveness.mine("o.claimed_by", "$2")} OR {liveness.dead("o.claimed_by")})
      AND NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.sent_at IS NULL AND p.key = o.key AND p.id < o.id
            AND (p.parked_at IS NOT NULL OR p.next_attempt_at > now()
                 OR (p.claimed_until >= now() AND NOT {liveness.mine("p.claimed_by", "$2")}
                     AND {liveness.alive("p.claimed_by")})))
    ORDER BY o.id LIMIT $1 FOR UPDATE SKIP LOCKED
), heads AS (
    SELECT o.id FROM outbox o JOIN candidates c ON c.id = o.id
    WHERE NOT EXISTS (
        SELECT 1 FROM outbox p
        WHERE p.sent_at IS NULL AND p.key = o.key AND p.id < o.id
          AND p.id NOT IN (SELECT id FROM candidates))
)
UPDATE outbox o SET claimed_by = {liveness.claim_name("$2")}, claimed_until = now() + $3::interval
FROM heads h WHERE o.id = h.id
RETURNING o.id, o.event_id, o.topic, o.key, o.payload, o.attempts, o.trace_context
"""

# Only the relay still holding the claim marks a row: a claim taken over after its lease, or
# voided by ``republish`` (the broker that acknowledged it is gone), is not this relay's to
# mark, and the row is published again.
_MARK_SENT = f"""
UPDATE outbox SET sent_at = now(), attempts = attempts + 1,
       claimed_by = NULL, claimed_until = NULL, next_attempt_at = NULL
WHERE id = ANY($1::bigint[]) AND sent_at IS NULL AND {liveness.mine("claimed_by", "$2")}
"""

_MARK_FAILED = f"""
UPDATE outbox SET attempts = attempts + 1, last_error = $2,
       claimed_by = NULL, claimed_until = NULL,
       next_attempt_at = now() + make_interval(secs => $3),
       parked_at = CASE WHEN $4 THEN now() END
WHERE id = $1 AND {liveness.mine("claimed_by", "$5")} AND sent_at IS NULL
"""

_RELEASE = f"""
UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
WHERE id = ANY($1::bigint[]) AND {liveness.mine("claimed_by", "$2")} AND sent_at IS NULL
"""


async def parked(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """The parked rows, oldest first, with their error and attempts."""
    return await pool.fetch(
        "SELECT id, event_id, topic, key, type, attempts, last_error, parked_at FROM outbox"
        " WHERE parked_at IS NOT NULL AND sent_at IS NULL ORDER BY id"
    )


async def redrive(pool: asyncpg.Pool, ids: Sequence[int] | None = None) -> list[int]:
    """Un-park rows (the given ids, or all): they get their attempts afresh and are published
    by the next round, then the rows of their case held behind them. Returns the ids."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_at = NULL,"
            " claimed_by = NULL, claimed_until = NULL"
            " WHERE parked_at IS NOT NULL AND sent_at IS NULL"
            " AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) RETURNING id",
            None if ids is None else list(ids),
        )
        await conn.execute("SELECT pg_notify('outbox', '')")
    redriven = sorted(r["id"] for r in rows)
    if redriven:
        log.warning("outbox_rows_redriven", ids=redriven)
    return redriven


@dataclass(frozen=True)
class Republished:
    rows: int  # rows sent since ``since``, now unsent again
    in_flight: int  # rows claimed or backing off, now due at once
    oldest_kept: datetime | None  # the oldest sent row still kept (older ones were purged)


async def republish(pool: asyncpg.Pool, since: datetime, *, dry_run: bool = False) -> Republished:
    """After a broker lost what it held: every row sent at or after ``since`` is made unsent
    again, so that the relay publishes it again, in order (consumers are idempotent). Rows in
    flight lose their claim — a relay that hears back from the lost broker can no longer
    mark them sent (``_MARK_SENT``) — and rows backing off are due now. ``since`` is the
    last point up to which every consumer is known to have read (the stack keeps it), or
    when the lost broker started. Sent rows older than the outbox retention are gone;
    ``oldest_kept`` says how far back this can reach."""
    async with pool.acquire() as conn, conn.transaction():
        oldest = await conn.fetchval("SELECT min(sent_at) FROM outbox WHERE sent_at IS NOT NULL")
        if dry_run:
            rows = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at >= $1", since)
            flight = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL"
                " AND (claimed_by IS NOT NULL OR next_attempt_at IS NOT NULL)"
            )
            return Republished(rows, flight, oldest)
        rows = await conn.fetchval(
            "WITH again AS (UPDATE outbox SET sent_at = NULL, claimed_by = NULL,"
            " claimed_until = NULL, next_attempt_at = NULL"
            " WHERE sent_at >= $1 RETURNING 1) SELECT count(*) FROM again",
            since,
        )
        flight = await conn.fetchval(
            "WITH due AS (UPDATE outbox SET claimed_by = NULL, claimed_until = NULL,"
            " next_attempt_at = NULL WHERE sent_at IS NULL AND parked_at IS NULL"
            " AND (claimed_by IS NOT NULL OR next_attempt_at IS NOT NULL) RETURNING 1)"
            " SELECT count(*) FROM due"
        )
        await conn.execute("SELECT pg_notify('outbox', '')")
    if rows or flight:
        log.warning("outbox_republished", since=since.isoformat(), rows=rows, in_flight=flight)
    return Republished(rows, flight, oldest)


# At most this often the relay loop refreshes the backlog and parked gauges (seconds).
GAUGE_INTERVAL = 1.0


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
        lease: timedelta = timedelta(seconds=120),
        publish_timeout: float = 30.0,
        max_attempts: int = 5,
        retry_base: float = 1.0,
        retry_cap: float = 60.0,
    ) -> None:
        if publish_timeout * 2 > lease.total_seconds():
            raise ValueError("the lease must cover at least two publish timeouts")
        self._pool = pool
        self._dsn = dsn
        self._publish = publish
        self._service = service
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._outbox_retention = outbox_retention
        self._inbox_retention = inbox_retention
        self._lease = lease
        self._publish_timeout = publish_timeout
        self._max_attempts = max_attempts
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self.relay_id = f"{service}-{uuid.uuid4().hex[:12]}"
        self._next_housekeeping = 0.0
        self._next_gauges = 0.0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._alive = asyncio.Event()  # the liveness lock is held
        self._tasks: list[asyncio.Task] = []

    # -- one round ----------------------------------------------------------------------

    async def publish_batch(self) -> int:
        """Claim, publish (no transaction open), mark; return how many rows were marked sent."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, self._batch_size, self.relay_id, self._lease)
        if not rows:
            return 0
        # The lease was taken at the claim; start no publish that could outlast it.
        deadline = time.monotonic() + self._lease.total_seconds() - self._publish_timeout
        by_key: dict[str, list[asyncpg.Record]] = {}
        for row in sorted(rows, key=lambda r: r["id"]):
            by_key.setdefault(row["key"], []).append(row)
        # Keys in parallel; one key's rows one after the other, stopping at a failure so
        # nothing of that key overtakes it.
        outcomes = await asyncio.gather(
            *(self._publish_in_order(k, deadline) for k in by_key.values())
        )
        sent = [i for ok, _, _ in outcomes for i in ok]
        failed = [f for _, f, _ in outcomes if f is not None]
        unreached = [i for _, _, rest in outcomes for i in rest]
        async with self._pool.acquire() as conn:
            if sent:
                await conn.execute(_MARK_SENT, sent, self.relay_id)
            for row, exc in failed:
                await self._mark_failed(conn, row, exc)
            if unreached:
                await conn.execute(_RELEASE, unreached, self.relay_id)
        metrics.OUTBOX_PUBLISHED.labels(self._service).inc(len(sent))
        if failed:
            metrics.OUTBOX_PUBLISH_FAILED.labels(self._service).inc(len(failed))
            log.warning("outbox_publish_failed", failed=len(failed), error=repr(failed[0][1])[:500])
        return len(sent)

    async def _mark_failed(self, conn: Conn, row: asyncpg.Record, exc: BaseException) -> None:
        attempts = row["attempts"] + 1
        park = not is_transient(exc) and attempts >= self._max_attempts
        delay = min(self._retry_cap, self._retry_base * 2 ** (attempts - 1))
        delay *= random.uniform(0.5, 1.0)
        error = repr(exc)[:500]
        status = await conn.execute(_MARK_FAILED, row["id"], error, delay, park, self.relay_id)
        if park and status.endswith(" 1"):
            metrics.OUTBOX_PARKED_TOTAL.labels(self._service).inc()
            log.warning(
                "outbox_row_parked",
                outbox_id=row["id"],
                event_id=str(row["event_id"]),
                topic=row["topic"],
                case_id=row["key"],
                attempts=attempts,
                error=error,
            )

    async def _publish_in_order(
        self,
        rows: list[asyncpg.Record],
        deadline: float,
    ) -> tuple[list[int], tuple[asyncpg.Record, BaseException] | None, list[int]]:
        """Publish one key's rows in order: (sent ids, the failure, ids not tried)."""
        sent: list[int] = []
        for n, row in enumerate(rows):
            if time.monotonic() > deadline:
                return sent, None, [r["id"] for r in rows[n:]]
            try:
                async with asyncio.timeout(self._publish_timeout):
                    await self._publish_row(row)
            except Exception as exc:  # backed off, retried on its own schedule; later rows wait
                return sent, (row, exc), [r["id"] for r in rows[n + 1 :]]
            sent.append(row["id"])
        return sent, None, []

    async def _publish_row(self, row: asyncpg.Record) -> None:
        payload = row["payload"]
        headers = {
            "type": str(payload["type"]),
            "version": str(payload["version"]),
            "event_id": str(payload["event_id"]),
            "correlation_id": str(payload.get("correlation_id") or ""),
        }
        value = json.dumps(payload, ensure_ascii=False).encode()
        # Publish under the trace of the transaction that wrote the row: the broker's
        # telemetry middleware (if on) continues it; else the stored headers travel as is.
        carried = row["trace_context"] or {}
        headers.update(carried)
        token = otel_context.attach(propagate.extract(carried)) if carried else None
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(3),
                retry=retry_if_exception(is_transient),
                wait=wait_exponential_jitter(multiplier=0.1, max=1, jitter=0.1),
                reraise=True,
            ):
                with attempt:
                    await self._publish(row["topic"], row["key"].encode(), value, headers)
        finally:
            if token is not None:
                otel_context.detach(token)

    async def housekeeping(self) -> tuple[int, int]:
        """Purge sent outbox rows and handled inbox ids past their retention."""
        async with self._pool.acquire() as conn:
            outbox_purged = await conn.fetchval(
                "WITH gone AS (DELETE FROM outbox WHERE sent_at < now() - $1::interval"
                " RETURNING 1) SELECT count(*) FROM gone",
                self._outbox_retention,
            )
            inbox_purged = await conn.fetchval(
                "WITH gone AS (DELETE FROM inbox WHERE handled_at < now() - $1::interval"
                " RETURNING 1) SELECT count(*) FROM gone",
                self._inbox_retention,
            )
        if outbox_purged or inbox_purged:
            log.info("housekeeping_purged", outbox=outbox_purged, inbox=inbox_purged)
        return outbox_purged, inbox_purged

    async def backlog(self) -> int:
        """Unsent rows (parked ones included); also sets the parked gauge and the age of
        the oldest unsent row that is not parked (0 when there is none)."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS unsent, count(*) FILTER (WHERE parked_at IS NOT NULL)"
                " AS parked, coalesce(extract(epoch FROM now() - min(created_at)"
                " FILTER (WHERE parked_at IS NULL)), 0)::float8 AS oldest"
                " FROM outbox WHERE sent_at IS NULL"
            )
        assert row is not None  # an aggregate always returns its row
        metrics.OUTBOX_BACKLOG.labels(self._service).set(row["unsent"])
        metrics.OUTBOX_PARKED.labels(self._service).set(row["parked"])
        metrics.OUTBOX_OLDEST_UNSENT.labels(self._service).set(row["oldest"])
        return row["unsent"]

    # -- the loop -----------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="outbox-relay"),
            asyncio.create_task(self._listen(), name="outbox-listen"),
        ]

    async def stop(self, flush_timeout: float = 10.0) -> None:
        """Stop the loop, then flush what is left (bounded). The liveness goes last, so
        no other replica takes over what the flush has claimed."""
        loop, listening = self._tasks[:1], self._tasks[1:]
        await _cancel(loop)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(flush_timeout):
                while await self.publish_batch():
                    pass
        self._stopping.set()  # not before: the liveness reconnects until the flush is over
        await _cancel(listening)

    async def _run(self) -> None:
        await liveness.first_held(self._alive, self._poll_interval * 5)
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                sent = await self.publish_batch()
                if time.monotonic() >= self._next_gauges:
                    # A count per round was ~2 checkouts per case under load (issue 14); the
                    # gauges are scraped every few seconds, so once a second is plenty.
                    self._next_gauges = time.monotonic() + GAUGE_INTERVAL
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
        """A dedicated connection LISTENing for inserts and holding the relay's liveness;
        reconnects when it drops. Connected, the relay wakes to catch up on anything written
        while no one listened."""
        await db.listen(
            self._dsn,
            "outbox",
            lambda _payload: self._wake.set(),
            stopping=self._stopping,
            retry_interval=self._poll_interval,
            setup=self.hold_liveness,
            connected=self._wake.set,
            disconnected=self._alive.clear,
        )

    async def hold_liveness(self, conn: Conn) -> None:
        """Mark this relay alive for as long as ``conn``'s session lasts (shared.liveness):
        while it does, other relays honour this relay's claims until their lease; once it
        is gone (the process died, the server dropped it) they take the rows over at once."""
        await liveness.hold(conn, self.relay_id)
        self._alive.set()  # claims are named by what pg_locks shows (liveness.claim_name)


async def _cancel(tasks: Sequence[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
