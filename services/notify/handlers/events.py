"""Consumed events: who hears what, and what each of them is told."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from services.notify import domain, repository
from services.notify.domain import (
    CaseNotice,
    Channel,
    ChannelPref,
    DeliveryStatus,
    NoticeKind,
    Recipient,
)
from services.notify.domain.names import Names
from services.notify.sealing import SecretBox
from shared import metrics
from shared.contract import Envelope

log = structlog.get_logger()
SERVICE = "notify"


def notice_of(event: Envelope[Any]) -> CaseNotice | None:
    """What ``event`` tells people, or None when it tells nobody anything (a co-handler's
    partial resolution, a whistle at community level: the normal course of a case). Read
    by field name, so that an event type added to the contract later (tracking's warnings
    and escalations) is announced as soon as it is parsed."""
    p = event.payload
    kind = NoticeKind(event.type)
    if kind is NoticeKind.RESOLVED and not getattr(p, "case_resolved", True):
        return None
    location = getattr(p, "location", None)
    return CaseNotice(
        kind=kind,
        case_id=str(event.case_id),
        case_no=p.case_no,
        category=p.category,
        area_path=p.area_path,
        priority=p.priority.value,
        department_id=getattr(p, "department_id", None),
        department_name=getattr(p, "department_name", None) or getattr(p, "department_id", None),
        assignment_id=_text(getattr(p, "assignment_id", None)),
        role=getattr(p, "role", None),
        description=getattr(p, "description", None),
        clock=getattr(p, "clock", None),
        due_at=getattr(p, "due_at", None),
        place=getattr(location, "address", None),
        level=getattr(p, "level", None),
        result=getattr(p, "result", None) or getattr(p, "note", None),
        note=getattr(p, "note", None),
        count=getattr(p, "count", None),
        reason=getattr(p, "reason", None),
        days=getattr(p, "days", None),
        approved=getattr(p, "approved", None),
        comment=getattr(p, "comment", None),
        pause=_value(getattr(p, "kind", None)),
    )


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def _value(v: Any) -> str | None:
    """An enum's value (a pause's kind), or None."""
    return None if v is None else str(getattr(v, "value", v))


def make_notify(
    link_base: str,
    clock: Callable[[], datetime],
    box: SecretBox,
    names: Callable[[], Awaitable[Names]],
):
    """The consumer's handler: runs in the transaction that claimed the event in the inbox.
    ``names`` gives the names of areas and categories known now (see ``reference``): the
    message is written with them, or with the codes they do not name."""

    async def notify_case(conn: asyncpg.Connection, event: Envelope[Any]) -> None:
        notice = notice_of(event)
        if notice is None:
            return
        known = await names()
        areas = domain.ancestor_paths(notice.area_path)
        candidates = await repository.candidate_recipients(
            conn, notice.department_id, areas, notice.kind.value, box
        )
        subscriptions = await repository.subscriptions_for(conn, notice.kind.value, areas)
        recipients = domain.select_recipients(notice, candidates, subscriptions)
        for r in recipients:
            await _deliver(conn, event, notice, r, link_base, clock(), known)
        if not recipients:
            log.info(
                "notice_without_recipients",
                department_id=notice.department_id,
                area_path=notice.area_path,
            )

    return notify_case


async def _deliver(
    conn: asyncpg.Connection,
    event: Envelope[Any],
    notice: CaseNotice,
    r: Recipient,
    link_base: str,
    now: datetime,
    names: Names,
) -> None:
    """The inbox is delivered right here; the recipient's first channel is queued for the
    delivery worker (the next ones only if it keeps failing)."""
    msg = domain.render(notice, r.kind, link_base, department_id=r.department_id, names=names)
    body = domain.webhook_body(
        notice,
        msg,
        event_id=str(event.event_id),
        recipient_id=r.id,
        occurred_at=event.occurred_at,
        names=names,
    )
    ids = {
        "event_id": event.event_id,
        "case_id": event.case_id,
        "type": event.type,
        "recipient_id": r.id,
    }
    await repository.insert_inbox_message(
        conn,
        **ids,
        title=msg.title_zh,
        body=msg.body_zh,
        title_en=msg.title_en,
        body_en=msg.body_en,
        link=msg.link,
    )
    if await repository.insert_delivery(
        conn, **ids, channel=Channel.INBOX, status=DeliveryStatus.SENT, payload=body
    ):
        metrics.DELIVERIES.labels(SERVICE, Channel.INBOX.value, "sent").inc()
        log.info("delivery_sent", channel="inbox", recipient_id=r.id)
    listed = r.channel_list()
    if listed:
        await queue_delivery(
            conn, r, listed[0], 0, ids=ids, payload=body, urgent=notice.urgent, now=now
        )


async def queue_delivery(
    conn: asyncpg.Connection,
    r: Recipient,
    channel: ChannelPref,
    position: int,
    *,
    ids: dict[str, Any],
    payload: dict[str, Any],
    urgent: bool,
    now: datetime,
    fallback_from: int | None = None,
) -> int | None:
    """Queue a delivery on one of the recipient's channels, held back until his quiet hours
    end (unless the case is urgent). None if this event × recipient × channel exists."""
    prefs = r.preferences
    due = domain.quiet_until(now, prefs.quiet_start, prefs.quiet_end, urgent=urgent) or now
    delivery_id = await repository.insert_delivery(
        conn,
        **ids,
        channel=channel.kind,
        status=DeliveryStatus.PENDING,
        payload=payload,
        due_at=due,
        position=position,
        urgent=urgent,
        fallback_from=fallback_from,
    )
    if delivery_id is not None:
        log.info(
            "delivery_queued",
            channel=channel.kind.value,
            recipient_id=r.id,
            delivery_id=delivery_id,
            fallback_from=fallback_from,
            held_until=due.isoformat() if due > now else None,
        )
    return delivery_id
