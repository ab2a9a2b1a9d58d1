"""The Kafka broker factory and the consumer wrapper.

At-least-once: offsets are committed only after the handler's transaction committed
(``AckPolicy.NACK_ON_ERROR``, never FastStream's default ``ACK_FIRST``). Each event is
handled in one database transaction that first claims the event in the inbox, so a
redelivery is a no-op. Transient faults (shared/faults.py) are waited out with capped,
jittered backoff for a bounded time (the partition waits rather than losing order); any
other failure is retried a bounded number of times and then sent, with the error, to the
dead-letter topic. What can be neither handled nor dead-lettered now — an event type or
version this build does not know, a dead-letter copy the broker keeps refusing — is parked
in the consumer's own database (shared/parking.py) before its offset is committed, and can
be replayed through the same handling later (``EventConsumer.replay_parked``).
"""

from __future__ import annotations

import asyncio

import contextlib
import json
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from shared import dead_letter, deferred, inbox, metrics, parking
from shared.correlation import set_event_context
from shared.dead_letter import dead_letter_record  # noqa: F401 - re-exported for tools
from shared.errors import DomainError
from shared.contract import (
    EVENT_TYPES,
    Envelope,
    EventPayload,
    Topics,
    UnknownEventType,
    parse_event,
)
from shared.faults import RetryPolicy, is_transient
from shared.kafka_security import KafkaSecurity, client_options, faststream_security
from shared.parking import Received
from shared.settings import BaseServiceSettings
from shared.db import Conn

log = structlog.get_logger()

Handler = Callable[[Conn, Envelope[Any]], Awaitable[None]]
E = TypeVar("E", bound=EventPayload)


@dataclass(frozen=True)
class Route:
    """One event class a consumer hears and the handler that takes it (made by ``on``, which
    holds the two together)."""

    event: type[EventPayload]
    handler: Handler


def on(event: type[E], handler: Callable[[Conn, Envelope[E]], Awaitable[None]]) -> Route:
    """``on(CaseWhistled, route_whistle)``: ``route_whistle`` receives ``Envelope[CaseWhistled]``
    (a type checker holds the two together, wherever the route is written: ``Route`` is not
    generic, so a list of routes gives ``E`` no context to be solved as Any from). A new
    version of an event is a new class: a consumer hears it once it has a route for it."""
    return Route(event, handler)


@dataclass(frozen=True)
class Fetching:
    """How a broker's consumers fetch (from the settings of the same names)."""

    fetch_max_wait_ms: int = 500
    # Up to this many messages are handled together, in one database transaction and one
    # offset commit; 1 handles them one by one.
    batch_size: int = 1
    # An idle consumer looks for new messages this often.
    batch_wait_ms: int = 5


# Each broker's fetching settings, for the consumers subscribed on it.
_FETCHING: weakref.WeakKeyDictionary[KafkaBroker, Fetching] = weakref.WeakKeyDictionary()


def make_broker(settings: BaseServiceSettings) -> KafkaBroker:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"whistle-{settings.service_name}",
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        graceful_timeout=15.0,
        logger=structlog.stdlib.get_logger("faststream"),
        description=f"Whistle {settings.service_name} service",
        security=faststream_security(settings),
    )
    _FETCHING[broker] = Fetching(
        settings.kafka_fetch_max_wait_ms,
        settings.consumer_batch_size,
        settings.consumer_batch_wait_ms,
    )
    return broker


async def start_broker(broker: KafkaBroker, attempts: int) -> None:
    """Start the broker, retrying while Kafka is not reachable yet (bounded, logged)."""
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=0.5, max=5, jitter=0.5),
        retry=retry_if_exception_type((KafkaConnectionError, KafkaError, OSError)),
        reraise=True,
    ):
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                log.warning("broker_connect_retry", attempt=attempt.retry_state.attempt_number)
            await _start_subscribers_together(broker)


async def _start_subscribers_together(broker: KafkaBroker) -> None:
    """``broker.start()`` with the consumer groups joined at the same time: FastStream starts
    its subscribers one after another, and each start waits for its group's first assignment
    (a join takes the coordinator's rebalance delay: ~5 s on Tansu, up to
    group.initial.rebalance.delay.ms on Kafka), so a service with two groups took two delays to
    start. Otherwise the same steps: connect, subscribers, publishers, running."""
    await broker.connect()
    await asyncio.gather(*(subscriber.start() for subscriber in broker.subscribers))
    for publisher in broker.publishers:
        await publisher.start()
    broker.running = True


def publisher_for(
    broker: KafkaBroker,
) -> Callable[[str, bytes, bytes, dict[str, str]], Awaitable[None]]:
    """Adapter the outbox relay uses: publish and wait for the broker's acknowledgement."""

    async def publish(topic: str, key: bytes, value: bytes, headers: dict[str, str]) -> None:
        await broker.publish(value, topic, key=key, headers=headers)

    return publish


async def ensure_topics(
    bootstrap: str,
    topics: tuple[str, ...] = Topics.ALL,
    partitions: int = 3,
    replication: int = 1,
    *,
    security: KafkaSecurity | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; return those created. ``security``: how to
    connect (TLS/SASL; plaintext when None)."""
    options = client_options(security) if security is not None else {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="whistle-topics", **options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another starter won the race
                await admin.create_topics([NewTopic(t, partitions, replication) for t in missing])
        return missing
    finally:
        await admin.close()


def _type_and_version(value: bytes) -> tuple[str | None, int | None]:
    try:
        data = json.loads(value)
        return str(data["type"]), int(data["version"])
    except (ValueError, TypeError, KeyError):
        return None, None


class _HandlerFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _received(raw: Any) -> Received:
    return Received(
        raw.topic, raw.partition, raw.offset, raw.key, raw.value or b"", list(raw.headers or ())
    )


async def _undecoded(message: Any, _default: Any) -> Any:
    """The consumers parse the raw records themselves (``parse_event``): FastStream need not
    decode each body as JSON first."""
    return message.body


@contextlib.contextmanager
def _event_context(event: Envelope[Any]) -> Iterator[None]:
    """Log lines and published events carry the event's correlation and ids."""
    structlog.contextvars.bind_contextvars(
        correlation_id=event.correlation_id,
        case_id=str(event.case_id),
        event_id=str(event.event_id),
        event_type=event.type,
    )
    set_event_context(event.correlation_id, event.event_id)
    try:
        yield
    finally:
        structlog.contextvars.unbind_contextvars(
            "correlation_id", "case_id", "event_id", "event_type"
        )
        set_event_context(None, None)


# The consumers subscribed on each broker: the operators' commands (shared/ops.py) find a
# service's own consumer handling through the app its entry point builds.
_SUBSCRIBED: weakref.WeakKeyDictionary[KafkaBroker, list[EventConsumer]] = (
    weakref.WeakKeyDictionary()
)


def consumers_of(broker: KafkaBroker) -> list[EventConsumer]:
    """The ``EventConsumer``s subscribed on ``broker``, in the order they subscribed."""
    return list(_SUBSCRIBED.get(broker, ()))


class EventConsumer:
    """One consumer group of one service: routes each event, by its payload's class, to the
    handler of that class (``on``); events of other classes are skipped."""

    def __init__(
        self,
        *,
        service: str,
        name: str,
        pool: Callable[[], asyncpg.Pool],
        broker: KafkaBroker,
        routes: Iterable[Route],
        policy: RetryPolicy | None = None,
    ) -> None:
        self.service = service
        self.name = name
        self.group_id = f"whistle-{service}-{name}"
        self._pool = pool
        self._broker = broker
        self._handlers: dict[type[EventPayload], Handler] = {}
        for route in routes:
            if route.event in self._handlers:
                raise ValueError(f"{self.group_id}: two routes for {route.event.__name__}")
            self._handlers[route.event] = route.handler
        self.policy = policy or RetryPolicy()
        self.topics: tuple[str, ...] = ()  # what ``subscribe`` hears (the replay reads them)

    def subscribe(self, *topics: str, description: str) -> None:
        self.topics = topics
        _SUBSCRIBED.setdefault(self._broker, []).append(self)
        fetching = _FETCHING.get(self._broker, Fetching())
        common: dict[str, Any] = dict(
            group_id=self.group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetching.fetch_max_wait_ms,
            title=f"{self.service}.{self.name}",
            description=description,
            decoder=_undecoded,
        )
        if fetching.batch_size == 1:

            @self._broker.subscriber(*topics, **common)
            async def on_message(message: KafkaMessage) -> None:
                await self.handle(message)

            return

        @self._broker.subscriber(
            *topics,
            batch=True,
            max_records=fetching.batch_size,
            batch_timeout_ms=fetching.batch_wait_ms,
            **common,
        )
        async def on_batch(message: KafkaMessage) -> None:
            await self.process_batch([_received(r) for r in message.raw_message])

    async def handle(self, message: KafkaMessage) -> None:
        await self.process(_received(message.raw_message))

    async def process_batch(self, messages: Sequence[Received]) -> list[str]:
        """Handle messages in order, as many as possible in one database transaction; return
        their outcomes. Returns only once every outcome is durable (see ``process``).

        What cannot go together — a message that does not parse, a handler that fails, a
        transaction that cannot commit — goes the one-by-one way of ``process``: the messages
        before a failing handler are handled together again, the failing one is retried (its
        failed try counted) or dead-lettered, and the rest go on together."""
        outcomes: list[str] = []
        rest = list(messages)
        while rest:
            if len(rest) == 1:
                outcomes.append(await self.process(rest[0]))
                break
            try:
                events = [parse_event(m.value) for m in rest]
            except (UnknownEventType, ValidationError, ValueError):
                outcomes.extend([await self.process(m) for m in rest])
                break
            try:
                done, failure = await self._handle_together(events)
            except Exception as exc:  # the transaction itself failed: one by one
                log.info("event_batch_one_by_one", size=len(rest), error=repr(exc)[:300])
                outcomes.extend([await self.process(m) for m in rest])
                break
            if failure is None:
                outcomes.extend(done)
                break
            # The handler of rest[len(done)] failed: everything was rolled back.
            failed = len(done)
            if failed:
                outcomes.extend(await self.process_batch(rest[:failed]))
            outcomes.append(await self.process(rest[failed], failed_once=failure))
            rest = rest[failed + 1 :]
        return outcomes

    async def _handle_together(
        self,
        events: list[Envelope[Any]],
    ) -> tuple[list[str], BaseException | None]:
        """Handle ``events`` in one transaction. Returns their outcomes, or — when a handler
        raises — the outcomes of the events before it and the error (nothing is committed)."""
        wanted = [e for e in events if type(e.payload) in self._handlers]
        if not wanted:
            for e in events:
                metrics.CONSUMED.labels(self.service, self.name, e.type, "skipped").inc()
            return ["skipped"] * len(events), None
        outcomes: list[str] = []
        try:
            async with self._pool().acquire() as conn, conn.transaction(), deferred.batch(conn):
                fresh = await inbox.claim_many(conn, self.name, wanted)
                for event in events:
                    handler = self._handlers.get(type(event.payload))
                    if handler is None:
                        outcomes.append("skipped")
                        continue
                    if event.event_id not in fresh:
                        outcomes.append("duplicate")
                        continue
                    fresh.discard(event.event_id)  # the same event twice in one batch
                    with _event_context(event):
                        try:
                            await handler(conn, event)
                        except Exception as exc:
                            log.info("event_batch_handler_failed", error=repr(exc)[:300])
                            raise _HandlerFailed(exc) from exc
                    outcomes.append("handled")
        except _HandlerFailed as failed:  # rolled back
            return outcomes, failed.error
        lag: float | None = None
        for event, outcome in zip(events, outcomes, strict=True):
            metrics.CONSUMED.labels(self.service, self.name, event.type, outcome).inc()
            if outcome == "handled":
                lag = (datetime.now(UTC) - event.occurred_at).total_seconds()
                with _event_context(event):
                    log.info("event_handled")
            elif outcome == "duplicate":
                with _event_context(event):
                    log.info("event_duplicate_ignored")
        if lag is not None:  # the last handled event's age, as one by one
            metrics.CONSUMER_LAG.labels(self.service, self.name).set(lag)
        return outcomes, None

    async def process(
        self,
        message: Received,
        *,
        park_on: Conn | None = None,
        failed_once: BaseException | None = None,
    ) -> str:
        """Handle one message; return the outcome (handled, duplicate, skipped,
        dead_lettered, parked). Returns only once the outcome is durable, so the offset may
        then be committed; raises (and the message comes again) when it cannot be.
        ``failed_once``: its handler already failed once with this error (in a batch)."""
        try:
            event = parse_event(message.value)
        except UnknownEventType as exc:
            return await self._park_unknown(message, exc, park_on)
        except (ValidationError, ValueError) as exc:
            return await self.dead_letter(message, exc, event_type="malformed", park_on=park_on)
        handler = self._handlers.get(type(event.payload))
        if handler is None:
            metrics.CONSUMED.labels(self.service, self.name, event.type, "skipped").inc()
            return "skipped"
        with _event_context(event):
            try:
                return await self._handle_with_retries(handler, event, failed_once)
            except Exception as exc:
                return await self.dead_letter(
                    message, exc, event_type=event.type, version=event.version, park_on=park_on
                )

    async def handle_in(self, conn: Conn, event: Envelope[Any]) -> str:
        """One parsed event through this consumer's route, inside the caller's transaction:
        ``skipped`` (no route for its class), ``duplicate`` (in the inbox already) or
        ``handled``. The live path (``_handle_with_retries``) and the projection replay
        (shared/replay.py) both go through here."""
        handler = self._handlers.get(type(event.payload))
        if handler is None:
            return "skipped"
        if not await inbox.claim(conn, self.name, event):
            return "duplicate"
        await handler(conn, event)
        return "handled"

    async def _handle_with_retries(
        self, handler: Handler, event: Envelope[Any], failed_once: BaseException | None = None
    ) -> str:
        policy = self.policy
        failures = {"deterministic": 0}
        if failed_once is not None:
            if isinstance(failed_once, DomainError):
                raise failed_once  # deterministic: retrying cannot help
            if not is_transient(failed_once):
                failures["deterministic"] = 1
                if policy.max_attempts <= 1:
                    raise failed_once

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, DomainError):
                return True  # deterministic: retrying cannot help
            if is_transient(exc):
                return (state.seconds_since_start or 0.0) >= policy.transient_retry_seconds
            failures["deterministic"] += 1
            return failures["deterministic"] >= policy.max_attempts

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            metrics.CONSUMED.labels(self.service, self.name, event.type, "retried").inc()
            log.warning(
                "event_handling_retry",
                attempt=state.attempt_number,
                transient=is_transient(exc),
                error=repr(exc),
                wait_seconds=round(state.upcoming_sleep, 2),
            )

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
                async with self._pool().acquire() as conn, conn.transaction():
                    if await self.handle_in(conn, event) == "duplicate":
                        metrics.CONSUMED.labels(
                            self.service, self.name, event.type, "duplicate"
                        ).inc()
                        log.info("event_duplicate_ignored")
                        return "duplicate"
        metrics.CONSUMED.labels(self.service, self.name, event.type, "handled").inc()
        metrics.CONSUMER_LAG.labels(self.service, self.name).set(
            (datetime.now(UTC) - event.occurred_at).total_seconds()
        )
        log.info("event_handled")
        return "handled"

    async def _durably(self, write: Callable[[], Awaitable[Any]]) -> Any:
        """Run a database write, waiting out a database that is away (bounded); raise when
        it stays away, so that the offset is not committed."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(is_transient),
            reraise=True,
            stop=stop_after_delay(self.policy.transient_retry_seconds),
            wait=wait_exponential_jitter(
                multiplier=self.policy.initial_backoff_seconds, max=self.policy.max_backoff_seconds
            ),
        ):
            with attempt:
                result = await write()
        return result

    async def _park(
        self,
        message: Received,
        *,
        reason: str,
        park_on: Conn | None,
        type: str | None = None,
        version: int | None = None,
        error: str | None = None,
    ) -> int:
        """Write the parked row (``_durably``)."""
        parked_id = await self._durably(
            lambda: parking.park(
                park_on or self._pool(),
                self.name,
                message,
                reason=reason,
                type=type,
                version=version,
                error=error,
            )
        )
        metrics.PARKED.labels(self.service, self.name, reason).inc()
        return parked_id

    async def _keep_copy(
        self,
        value: bytes,
        key: bytes | None,
        headers: dict[str, str],
        conn: Conn | None,
    ) -> None:
        """Keep the dead-letter copy in the database too (``_durably``)."""
        await self._durably(
            lambda: dead_letter.keep_copy(conn or self._pool(), self.name, value, key, headers)
        )

    async def _park_unknown(
        self, message: Received, exc: UnknownEventType, park_on: Conn | None
    ) -> str:
        type_, version = _type_and_version(message.value)
        known_type = any(t == type_ for t, _ in EVENT_TYPES)
        reason = parking.UNKNOWN_VERSION if known_type else parking.UNKNOWN_TYPE
        parked_id = await self._park(
            message, reason=reason, park_on=park_on, type=type_, version=version, error=str(exc)
        )
        metrics.CONSUMED.labels(self.service, self.name, type_ or "unknown", "parked").inc()
        log.warning(
            "event_parked",
            reason=reason,
            type=type_,
            version=version,
            parked_id=parked_id,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        return "parked"

    async def dead_letter(
        self,
        message: Received,
        exc: BaseException,
        *,
        event_type: str,
        version: int | None = None,
        park_on: Conn | None = None,
    ) -> str:
        """Send a message that fails deterministically, with its error, to the dead-letter
        topic (truncated, with the full copy parked, when too big); park it in the database
        when the broker keeps refusing the copy. Returns the outcome; then it is acked."""
        policy = self.policy
        value, key = message.value, message.key
        headers = dead_letter.headers_for(
            message, exc, group_id=self.group_id, service=self.service
        )
        error = f"{type(exc).__name__}: {str(exc)[:2000]}"
        if dead_letter.copy_size(value, key, headers) > policy.dead_letter_max_bytes:
            parked_id = await self._park(
                message,
                reason=parking.DEAD_LETTER_OVERSIZE,
                park_on=park_on,
                type=event_type,
                version=version,
                error=error,
            )
            value, headers = dead_letter.truncated(
                value, key, headers, parked_id=parked_id, limit=policy.dead_letter_max_bytes
            )
            log.warning(
                "dead_letter_truncated", original_bytes=len(message.value), parked_id=parked_id
            )

        async def publish(v: bytes, k: bytes | None, h: dict[str, str]) -> None:
            await self._broker.publish(v, Topics.DEAD_LETTER, key=k, headers=h)

        try:
            await dead_letter.publish_bounded(publish, value, key, headers, policy)
        except Exception as publish_exc:
            parked_id = await self._park(
                message,
                reason=parking.DEAD_LETTER_FAILED,
                park_on=park_on,
                type=event_type,
                version=version,
                error=f"{error}; dead-letter publish: {publish_exc!r}"[:4000],
            )
            metrics.CONSUMED.labels(self.service, self.name, event_type, "parked").inc()
            log.error(
                "dead_letter_failed_parked",
                error_type=type(exc).__name__,
                publish_error=repr(publish_exc)[:500],
                parked_id=parked_id,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
            return "parked"
        await self._keep_copy(value, key, headers, park_on)
        metrics.CONSUMED.labels(self.service, self.name, event_type, "dead_lettered").inc()
        log.error(
            "event_dead_lettered",
            error_type=type(exc).__name__,
            error=str(exc)[:500],
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        return "dead_lettered"

    async def replay_parked(
        self,
        *,
        ids: Sequence[int] | None = None,
        reasons: Sequence[str] = parking.REPLAYABLE,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """Re-feed this consumer's parked messages (those with ``reasons``, or exactly
        ``ids``) through its normal handling, oldest first; mark each one replayed unless it
        is parked again (still unknown, dead-letter still refused). Returns outcome counts.
        Safe beside the live consumer and other replicas (rows are locked, the inbox makes
        a second handling a no-op)."""
        counts: Counter[str] = Counter()
        after = 0
        started = time.monotonic()
        while True:
            async with self._pool().acquire() as conn, conn.transaction():
                row = await parking.claim_next(
                    conn, self.name, after=after, reasons=reasons, ids=ids
                )
                if row is None:
                    break
                after = row.id
                if dry_run:
                    counts["would_replay"] += 1
                    continue
                outcome = await self.process(row.message, park_on=conn)
                if outcome != "parked":
                    await parking.mark_replayed(conn, row.id, outcome)
                counts[outcome] += 1
        log.info(
            "parked_events_replayed",
            consumer=self.name,
            dry_run=dry_run,
            seconds=round(time.monotonic() - started, 2),
            **counts,
        )
        return dict(counts)
