"""Notify's use cases: each one transaction — read, let the domain decide, write."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from services.notify import domain, repository
from services.notify.domain import (
    CaseNotice,
    Channel,
    DeliveryStatus,
    NoticeKind,
    Recipient,
    RecipientKind,
)
from services.notify.repository import ClaimedWebhook, Delivery, InboxMessage
from shared import metrics
from shared.auth import Principal
from shared.errors import Conflict, NotFound
from shared.events import CaseDispatched, CaseOverdue, Envelope

log = structlog.get_logger()
SERVICE = "notify"


def _not_found(recipient_id: str) -> NotFound:
    return NotFound(f"接收方“{recipient_id}”不存在", f"recipient '{recipient_id}' not found",
                    code="recipient_not_found")


# --- recipients ---------------------------------------------------------------------------


def _by(who: Principal) -> dict[str, str]:
    """Who did it, for the log line of a change."""
    return {"actor": who.subject, "actor_role": who.role.value}


async def create_recipient(pool: asyncpg.Pool, who: Principal, recipient: Recipient) -> Recipient:
    domain.validate_recipient(recipient)
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.insert_recipient(conn, recipient):
            raise Conflict(f"接收方“{recipient.id}”已存在", f"recipient '{recipient.id}' exists",
                           code="recipient_exists")
    log.info("recipient_created", recipient_id=recipient.id, kind=recipient.kind.value,
             **_by(who))
    return recipient


async def update_recipient(pool: asyncpg.Pool, who: Principal, recipient: Recipient) -> Recipient:
    domain.validate_recipient(recipient)
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.update_recipient(conn, recipient):
            raise _not_found(recipient.id)
    log.info("recipient_updated", recipient_id=recipient.id, **_by(who))
    return recipient


async def list_recipients(pool: asyncpg.Pool, kind: RecipientKind | None) -> list[Recipient]:
    async with pool.acquire() as conn:
        return await repository.list_recipients(conn, kind.value if kind else None)


async def _readable_recipient(
    conn: asyncpg.Connection, who: Principal, recipient_id: str
) -> Recipient:
    """The recipient whose inbox ``who`` asks for: 404 if unknown, 403 if not theirs."""
    recipient = await repository.get_recipient(conn, recipient_id)
    if recipient is None:
        raise _not_found(recipient_id)
    domain.check_inbox_access(who, recipient)
    return recipient


async def inbox(pool: asyncpg.Pool, who: Principal, recipient_id: str, *, unread: bool | None,
                limit: int, offset: int) -> list[InboxMessage]:
    async with pool.acquire() as conn:
        await _readable_recipient(conn, who, recipient_id)
        return await repository.list_inbox(conn, recipient_id, unread=unread, limit=limit,
                                           offset=offset)


async def mark_read(pool: asyncpg.Pool, who: Principal, recipient_id: str,
                    message_id: int) -> InboxMessage:
    async with pool.acquire() as conn, conn.transaction():
        await _readable_recipient(conn, who, recipient_id)  # before anything is written
        message = await repository.mark_read(conn, recipient_id, message_id)
    if message is None:
        raise NotFound(f"接收方“{recipient_id}”没有消息 {message_id}",
                       f"recipient '{recipient_id}' has no message {message_id}",
                       code="message_not_found")
    return message


# --- consumed: who hears what ---------------------------------------------------------------


def _notice(event: Envelope[Any]) -> CaseNotice:
    p = event.payload
    common: dict[str, Any] = {
        "case_id": str(event.case_id), "case_no": p.case_no, "category": p.category,
        "area_path": p.area_path, "priority": p.priority.value,
        "department_id": p.department_id, "department_name": p.department_name,
    }
    if isinstance(p, CaseDispatched):
        return CaseNotice(kind=NoticeKind.DISPATCHED, role=p.role, description=p.description,
                          **common)
    if isinstance(p, CaseOverdue):
        return CaseNotice(kind=NoticeKind.OVERDUE, clock=p.clock, due_at=p.due_at, **common)
    raise TypeError(f"notify does not announce {event.type}")


def make_notify(link_base: str = ""):
    """The consumer's handler: runs in the transaction that claimed the event in the inbox."""

    async def notify_case(conn: asyncpg.Connection, event: Envelope[Any]) -> None:
        notice = _notice(event)
        candidates = await repository.candidate_recipients(
            conn, notice.department_id, domain.ancestor_paths(notice.area_path)
        )
        recipients = domain.select_recipients(notice, candidates)
        for r in recipients:
            await _deliver(conn, event, notice, r, link_base)
        if not recipients:
            log.warning("notice_without_recipients", department_id=notice.department_id,
                        area_path=notice.area_path)

    return notify_case


async def _deliver(conn: asyncpg.Connection, event: Envelope[Any], notice: CaseNotice,
                   r: Recipient, link_base: str) -> None:
    """The inbox channel is delivered right here; a webhook is queued for the worker."""
    msg = domain.render(notice, r.kind, link_base)
    body = domain.webhook_body(notice, msg, event_id=str(event.event_id), recipient_id=r.id,
                               occurred_at=event.occurred_at)
    ids = {"event_id": event.event_id, "case_id": event.case_id, "type": event.type,
           "recipient_id": r.id}
    await repository.insert_inbox_message(
        conn, **ids, title=msg.title_zh, body=msg.body_zh, title_en=msg.title_en,
        body_en=msg.body_en, link=msg.link,
    )
    if await repository.insert_delivery(conn, **ids, channel=Channel.INBOX,
                                        status=DeliveryStatus.SENT, payload=body):
        metrics.DELIVERIES.labels(SERVICE, Channel.INBOX.value, "sent").inc()
        log.info("delivery_sent", channel="inbox", recipient_id=r.id)
    if r.webhook_url and await repository.insert_delivery(
        conn, **ids, channel=Channel.WEBHOOK, status=DeliveryStatus.PENDING, payload=body
    ):
        log.info("delivery_queued", channel="webhook", recipient_id=r.id)


# --- the delivery log and the webhook worker --------------------------------------------------


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

