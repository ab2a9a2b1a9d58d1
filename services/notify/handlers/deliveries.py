"""The delivery log, replays, and what the delivery worker records."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from services.notify import domain, repository
from services.notify.domain import Channel, DeliveryStatus
from services.notify.handlers.recipients import _by
from services.notify.repository import ClaimedWebhook, Delivery
from shared import metrics
from shared.auth import Principal
from shared.errors import NotFound

log = structlog.get_logger()
SERVICE = "notify"


async def list_deliveries(pool: asyncpg.Pool, **filters: Any) -> list[Delivery]:
    async with pool.acquire() as conn:
        return await repository.list_deliveries(conn, **filters)


async def get_delivery(pool: asyncpg.Pool, delivery_id: int) -> Delivery:
    async with pool.acquire() as conn:
        delivery = await repository.get_delivery(conn, delivery_id)
    if delivery is None:
        raise NotFound(f"投递记录 {delivery_id} 不存在", f"delivery {delivery_id} not found",
                       code="delivery_not_found")
    return delivery


async def replay_delivery(pool: asyncpg.Pool, who: Principal, delivery_id: int) -> Delivery:
    """A dead delivery goes back to pending with a fresh schedule of attempts."""
    async with pool.acquire() as conn, conn.transaction():
        delivery = await repository.get_delivery(conn, delivery_id, lock=True)
        if delivery is None:
            raise NotFound(f"投递记录 {delivery_id} 不存在", f"delivery {delivery_id} not found",
                           code="delivery_not_found")
        domain.check_replay(delivery.status)
        await repository.requeue(conn, delivery_id)
        delivery = await repository.get_delivery(conn, delivery_id)
    log.info("delivery_replayed", delivery_id=delivery_id, recipient_id=delivery.recipient_id,
             **_by(who))
    return delivery


async def claim_webhooks(
    pool: asyncpg.Pool, limit: int, lease_seconds: float
) -> list[ClaimedWebhook]:
    async with pool.acquire() as conn, conn.transaction():
        return await repository.claim_due_webhooks(conn, limit, lease_seconds)


async def webhook_sent(pool: asyncpg.Pool, claim: ClaimedWebhook) -> None:
    async with pool.acquire() as conn:
        done = await repository.mark_sent(conn, claim.id, claim.attempts)
    _log_outcome(claim, "sent" if done else "stale", attempts=claim.attempts + 1)


async def webhook_failed(
    pool: asyncpg.Pool, claim: ClaimedWebhook, error: str, *, gone: bool, max_attempts: int,
    backoff_base: float, backoff_cap: float,
) -> DeliveryStatus:
    """Record a failed scheduled attempt: try again after a backoff, or park it as dead."""
    attempts = claim.attempts + 1
    status = domain.status_after_failure(attempts, max_attempts, gone=gone)
    delay = domain.retry_delay(attempts, base=backoff_base, cap=backoff_cap)
    async with pool.acquire() as conn:
        done = await repository.mark_failed(conn, claim.id, claim.attempts, status, error, delay)
    outcome = ("dead" if status is DeliveryStatus.DEAD else "retry_scheduled") if done else "stale"
    _log_outcome(claim, outcome, attempts=attempts, error=error,
                 retry_in_seconds=round(delay, 2) if outcome == "retry_scheduled" else None)
    return status


def _log_outcome(claim: ClaimedWebhook, outcome: str, **fields: Any) -> None:
    metrics.DELIVERIES.labels(SERVICE, Channel.WEBHOOK.value, outcome).inc()
    level = {"sent": log.info, "dead": log.error}.get(outcome, log.warning)
    level(f"delivery_{outcome}", channel="webhook", delivery_id=claim.id,
          recipient_id=claim.recipient_id, event_id=str(claim.event_id), **fields)

