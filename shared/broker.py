"""The Kafka broker factory and the consumer wrapper.

At-least-once: offsets are committed only after the handler's transaction committed
(``AckPolicy.NACK_ON_ERROR``, never FastStream's default ``ACK_FIRST``). Each event is
handled in one database transaction that first claims the event in the inbox, so a
redelivery is a no-op. Infrastructure faults are retried without limit (with capped,
jittered backoff: the partition waits rather than losing order); any other failure is
retried a bounded number of times and then sent, with the error, to the dead-letter topic.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

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
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared import inbox, metrics
from shared.correlation import set_event_context
from shared.db import TRANSIENT_DB_ERRORS
from shared.errors import DomainError
from shared.events import Envelope, Topics, UnknownEventType, parse_event
from shared.settings import BaseServiceSettings

log = structlog.get_logger()

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, KafkaError)

Handler = Callable[[asyncpg.Connection, Envelope[Any]], Awaitable[None]]


def make_broker(settings: BaseServiceSettings) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"whistle-{settings.service_name}",
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        graceful_timeout=15.0,
        logger=structlog.stdlib.get_logger("faststream"),
        description=f"Whistle {settings.service_name} service",
    )


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
            await broker.start()


def publisher_for(broker: KafkaBroker) -> Callable[[str, bytes, bytes, dict[str, str]], Awaitable[None]]:
    """Adapter the outbox relay uses: publish and wait for the broker's acknowledgement."""

    async def publish(topic: str, key: bytes, value: bytes, headers: dict[str, str]) -> None:
        await broker.publish(value, topic, key=key, headers=headers)

    return publish


async def ensure_topics(bootstrap: str, topics: tuple[str, ...] = Topics.ALL, partitions: int = 3,
                        replication: int = 1) -> list[str]:
    """Create the topics that do not exist yet; return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="whistle-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another starter won the race
                await admin.create_topics(
                    [NewTopic(t, partitions, replication) for t in missing]
                )
        return missing
    finally:
        await admin.close()


def _is_transient(exc: BaseException | None) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


class EventConsumer:
    """One consumer group of one service: routes events by type to handlers."""

    def __init__(self, *, service: str, name: str, pool: Callable[[], asyncpg.Pool],
                 broker: KafkaBroker,
                 handlers: dict[str, Handler], max_attempts: int = 5) -> None:
        self.service = service
        self.name = name
        self.group_id = f"whistle-{service}-{name}"
        self._pool = pool
        self._broker = broker
        self._handlers = handlers
        self._max_attempts = max_attempts

    def subscribe(self, *topics: str, description: str) -> None:
        @self._broker.subscriber(
            *topics,
            group_id=self.group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            title=f"{self.service}.{self.name}",
            description=description,
        )
        async def on_message(message: KafkaMessage) -> None:
            await self.handle(message)

    async def handle(self, message: KafkaMessage) -> None:
        raw: bytes = message.body
        try:
            event = parse_event(raw)
        except UnknownEventType as exc:
            log.debug("event_skipped", reason=str(exc))
            return
        except (ValidationError, ValueError) as exc:
            await self.dead_letter(message, exc, event_type="malformed")
            return
        handler = self._handlers.get(event.type)
        if handler is None:
            metrics.CONSUMED.labels(self.service, self.name, event.type, "skipped").inc()
            return
        structlog.contextvars.bind_contextvars(
            correlation_id=event.correlation_id, case_id=str(event.case_id),
            event_id=str(event.event_id), event_type=event.type,
        )
        set_event_context(event.correlation_id, event.event_id)
        try:
            await self._handle_with_retries(handler, event)
        except Exception as exc:
            if _is_transient(exc):
                raise  # not reached: transient errors retry without limit
            await self.dead_letter(message, exc, event_type=event.type)
        finally:
            structlog.contextvars.unbind_contextvars(
                "correlation_id", "case_id", "event_id", "event_type"
            )
            set_event_context(None, None)

    async def _handle_with_retries(self, handler: Handler, event: Envelope[Any]) -> None:
        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, DomainError):
                return True  # deterministic: retrying cannot help
            return not _is_transient(exc) and state.attempt_number >= self._max_attempts

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            metrics.CONSUMED.labels(self.service, self.name, event.type, "retried").inc()
            log.warning("event_handling_retry", attempt=state.attempt_number, error=repr(exc))

        async for attempt in AsyncRetrying(
            stop=stop, wait=wait_exponential_jitter(multiplier=0.2, max=30, jitter=0.2),
            before_sleep=before_sleep, reraise=True,
        ):
            with attempt:
                async with self._pool().acquire() as conn, conn.transaction():
                    if not await inbox.claim(conn, self.name, event):
                        metrics.CONSUMED.labels(self.service, self.name, event.type, "duplicate").inc()
                        log.info("event_duplicate_ignored")
                        return
                    await handler(conn, event)
        metrics.CONSUMED.labels(self.service, self.name, event.type, "handled").inc()
        metrics.CONSUMER_LAG.labels(self.service, self.name).set(
            (datetime.now(UTC) - event.occurred_at).total_seconds()
        )
        log.info("event_handled")

    async def dead_letter(self, message: KafkaMessage, exc: BaseException, *, event_type: str) -> None:
        """Park a message that fails deterministically, with its error; then it is acked."""
        raw = message.raw_message
        headers = {
            "dlt-original-topic": raw.topic,
            "dlt-original-partition": str(raw.partition),
            "dlt-original-offset": str(raw.offset),
            "dlt-consumer-group": self.group_id,
            "dlt-service": self.service,
            "dlt-error-type": type(exc).__name__,
            "dlt-error": str(exc)[:2000],
            "dlt-failed-at": datetime.now(UTC).isoformat(),
        }
        await self._broker.publish(
            message.body, Topics.DEAD_LETTER, key=raw.key, headers=headers
        )
        metrics.CONSUMED.labels(self.service, self.name, event_type, "dead_lettered").inc()
        log.error("event_dead_lettered", error_type=type(exc).__name__, error=str(exc)[:500],
                  topic=raw.topic, partition=raw.partition, offset=raw.offset)


def dead_letter_record(value: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """A dead-lettered message as a readable dict (for tools and tests)."""
    try:
        body: Any = json.loads(value)
    except ValueError:
        body = value.decode(errors="replace")
    return {"headers": headers, "body": body}
