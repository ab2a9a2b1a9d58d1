"""Subscriptions: who asked to hear which events, besides the defaults."""

from __future__ import annotations

import asyncpg
import structlog

from services.notify import domain, repository
from services.notify.domain import Subscription
from services.notify.handlers.recipients import _by, _not_found
from services.notify.sealing import SecretBox
from shared.auth import Principal
from shared.errors import NotFound

log = structlog.get_logger()


async def subscribe(
    pool: asyncpg.Pool, who: Principal, s: Subscription, box: SecretBox
) -> Subscription:
    domain.validate_subscription(s)
    async with pool.acquire() as conn, conn.transaction():
        if await repository.get_recipient(conn, s.recipient_id, box, lock=True) is None:
            raise _not_found(s.recipient_id)
        saved = await repository.insert_subscription(conn, s)
    log.info(
        "subscription_created",
        subscription_id=saved.id,
        recipient_id=s.recipient_id,
        event_types=list(s.event_types),
        **_by(who),
    )
    return saved


async def list_subscriptions(
    pool: asyncpg.Pool, recipient_id: str | None, event_type: str | None
) -> list[Subscription]:
    async with pool.acquire() as conn:
        return await repository.list_subscriptions(conn, recipient_id, event_type)


async def unsubscribe(pool: asyncpg.Pool, who: Principal, subscription_id: int) -> None:
    async with pool.acquire() as conn:
        if not await repository.delete_subscription(conn, subscription_id):
            raise NotFound(
                f"订阅 {subscription_id} 不存在",
                f"subscription {subscription_id} not found",
                code="subscription_not_found",
            )
    log.info("subscription_deleted", subscription_id=subscription_id, **_by(who))
