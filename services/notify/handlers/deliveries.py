"""The delivery log, replays, and what the delivery worker records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.notify import domain, repository
from services.notify.channels import DeliveryResult
from services.notify.domain import DeliveryStatus
from services.notify.domain.delivery import RATE_WINDOW
from services.notify.handlers.events import SERVICE, queue_delivery
from services.notify.handlers.recipients import _by
from services.notify.repository import Claim, Delivery
from services.notify.sealing import SecretBox
from shared import metrics
from shared.auth import Principal
from shared.errors import NotFound
from shared.db import Conn

log = structlog.get_logger()


def _not_found(delivery_id: int) -> NotFound:
    return NotFound(
        f"投递记录 {delivery_id} 不存在",
        f"delivery {delivery_id} not found",
        code="delivery_not_found",
    )


async def list_deliveries(pool: asyncpg.Pool, **filters: Any) -> list[Delivery]:
    async with pool.acquire() as conn:
        return await repository.list_deliveries(conn, **filters)


async def get_delivery(pool: asyncpg.Pool, delivery_id: int) -> Delivery:
    async with pool.acquire() as conn:
        delivery = await repository.get_delivery(conn, delivery_id)
    if delivery is None:
        raise _not_found(delivery_id)
    return delivery


async def replay_delivery(
    pool: asyncpg.Pool, who: Principal, delivery_id: int, *, force: bool = False
) -> Delivery:
    """A dead delivery goes back to pending with a fresh schedule of attempts — unless the
    message already went out (or is going out) on another channel, say the fallback that took
    over: then 409 naming it, and only ``force`` sends it again."""
    async with pool.acquire() as conn, conn.transaction():
        delivery = await repository.get_delivery(conn, delivery_id, lock=True)
        if delivery is None:
            raise _not_found(delivery_id)
        others = await repository.other_channels(conn, delivery)
        domain.check_replay(delivery.status, others, force=force)
        delivery = await repository.requeue(conn, delivery_id)
    log.info(
        "delivery_replayed",
        delivery_id=delivery_id,
        recipient_id=delivery.recipient_id,
        forced=force,
        also_on=[o.id for o in others],
        **_by(who),
    )
    return delivery


@dataclass(frozen=True)
class RetryPolicy:
    """Scheduled attempts per channel and the backoff between them."""

    max_attempts: int
    backoff_base: float
    backoff_cap: float


async def claim_due(
    pool: asyncpg.Pool,
    limit: int,
    lease_seconds: float,
    now: datetime,
    box: SecretBox,
    worker_id: str,
) -> list[Claim]:
    async with pool.acquire() as conn, conn.transaction():
        return await repository.claim_due(conn, limit, lease_seconds, now, box, worker_id)


async def robot_window(pool: asyncpg.Pool, destination: str, now: datetime) -> list[datetime]:
    async with pool.acquire() as conn:
        return await repository.robot_sends(conn, destination, now - RATE_WINDOW)


async def delivery_sent(
    pool: asyncpg.Pool,
    claim: Claim,
    result: DeliveryResult,
    *,
    now: datetime,
    destination: str | None,
) -> None:
    async with pool.acquire() as conn:
        done = await repository.mark_sent(
            conn, claim.id, claim.attempts, now=now, code=result.code, destination=destination
        )
    _log_outcome(claim, "sent" if done else "stale", attempts=claim.attempts + 1, code=result.code)


async def digest_sent(
    pool: asyncpg.Pool,
    carrier: Claim,
    others: list[Claim],
    result: DeliveryResult,
    *,
    now: datetime,
    destination: str,
) -> None:
    """One robot message carried ``carrier`` and ``others``: the carrier is sent, the others
    were sent inside it (digested)."""
    async with pool.acquire() as conn:
        done = await repository.mark_digest_sent(
            conn,
            carrier.id,
            carrier.attempts,
            [(c.id, c.attempts) for c in others],
            now=now,
            code=f"digest of {len(others) + 1}: {result.code}",
            destination=destination,
        )
    metrics.DELIVERY_DIGESTS.labels(SERVICE, carrier.channel.value).inc()
    _log_outcome(
        carrier,
        "sent" if done else "stale",
        attempts=carrier.attempts + 1,
        digest_of=[carrier.id, *[c.id for c in others]],
    )
    for c in others:
        _log_outcome(c, "digested", digest_id=carrier.id)


async def delivery_held(pool: asyncpg.Pool, claim: Claim, *, until: datetime, reason: str) -> None:
    """Not attempted (a robot's minute is full): due again at ``until``, no attempt used."""
    async with pool.acquire() as conn:
        await repository.mark_failed(
            conn,
            claim.id,
            claim.attempts,
            DeliveryStatus.PENDING,
            error=reason,
            code="paced",
            next_attempt_at=until,
            counted=False,
        )
    _log_outcome(claim, "held", until=until.isoformat())


async def delivery_failed(
    pool: asyncpg.Pool, claim: Claim, result: DeliveryResult, *, now: datetime, policy: RetryPolicy
) -> DeliveryStatus:
    """Record a failed scheduled attempt: try again after a backoff, or give this channel up
    (dead: kept, replayable) and queue the recipient's next channel, in one transaction."""
    attempts = claim.attempts + 1
    status = domain.after_failure(
        attempts, policy.max_attempts, permanent=not result.transient, gone=result.gone
    )
    delay = domain.retry_delay(attempts, base=policy.backoff_base, cap=policy.backoff_cap)
    delay = max(
        delay,
        result.retry_after or 0.0,
        RATE_WINDOW.total_seconds() if result.rate_limited else 0.0,
    )
    fallback: int | None = None
    async with pool.acquire() as conn, conn.transaction():
        done = await repository.mark_failed(
            conn,
            claim.id,
            claim.attempts,
            status,
            error=result.detail or result.code,
            code=result.code,
            next_attempt_at=now + timedelta(seconds=delay),
        )
        if done and status is DeliveryStatus.DEAD:
            fallback = await _fall_back(conn, claim, now)
    dead = status is DeliveryStatus.DEAD
    outcome = ("dead" if dead else "retry_scheduled") if done else "stale"
    _log_outcome(
        claim,
        outcome,
        attempts=attempts,
        error=result.detail,
        code=result.code,
        retry_in_seconds=round(delay, 2) if outcome == "retry_scheduled" else None,
        fallback_delivery_id=fallback,
    )
    return status


async def _fall_back(conn: Conn, claim: Claim, now: datetime) -> int | None:
    """Queue the recipient's next channel after the one that gave up (his list as it is
    now). The inbox already holds the message, so it is never lost."""
    r = claim.recipient
    following = r.next_channel(claim.channel.value, claim.position)
    if following is None:
        log.warning("delivery_channels_exhausted", recipient_id=r.id, delivery_id=claim.id)
        return None
    position = [c.kind for c in r.channel_list()].index(following.kind)
    ids = {
        "event_id": claim.event_id,
        "case_id": claim.case_id,
        "type": claim.type,
        "recipient_id": r.id,
    }
    new_id = await queue_delivery(
        conn,
        r,
        following,
        position,
        ids=ids,
        payload=claim.payload,
        urgent=claim.urgent,
        now=now,
        fallback_from=claim.id,
    )
    if new_id is not None:
        metrics.DELIVERY_FALLBACKS.labels(SERVICE, claim.channel.value, following.kind.value).inc()
    return new_id


def _log_outcome(claim: Claim, outcome: str, **fields: Any) -> None:
    metrics.DELIVERIES.labels(SERVICE, claim.channel.value, outcome).inc()
    level = {"sent": log.info, "digested": log.info, "dead": log.error}.get(outcome, log.warning)
    level(
        f"delivery_{outcome}",
        channel=claim.channel.value,
        delivery_id=claim.id,
        recipient_id=claim.recipient_id,
        event_id=str(claim.event_id),
        **fields,
    )
