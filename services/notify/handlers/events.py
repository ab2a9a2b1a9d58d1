"""Consumed events: the one step every notice goes through — who hears it (the domain's
rules, the recipients and subscriptions of the case's area), the in-app inbox written and
each recipient's first channel queued. What each event tells is ``notices``'."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import structlog

from services.notify import domain, repository
from services.notify.domain import (
    CaseNotice,
    Channel,
    ChannelPref,
    DeliveryStatus,
    Message,
    Recipient,
)
from services.notify.domain.names import Names
from services.notify.handlers.templates import TemplatesInForce
from services.notify.sealing import SecretBox
from shared import metrics
from shared.contract import CaseFacts, Envelope, areas
from shared.db import Conn

log = structlog.get_logger()
SERVICE = "notify"
E = TypeVar("E", bound=CaseFacts)


class Notify:
    """The consumer's handlers: ``notify(notices.dispatched)`` handles ``Envelope[CaseDispatched]``
    — the reader says what the event tells, ``announce`` writes it down for whoever hears it.
    Each runs in the transaction that claimed the event in the inbox. ``names`` gives the
    names of areas and categories known now (see ``reference``): the message is written with
    them, or with the codes they do not name; ``templates`` the wording in force (the
    shipped templates and the operators' replacements)."""

    def __init__(
        self,
        link_base: str,
        clock: Callable[[], datetime],
        box: SecretBox,
        names: Callable[[], Awaitable[Names]],
        templates: TemplatesInForce | None = None,
    ) -> None:
        self.link_base = link_base
        self.clock = clock
        self.box = box
        self.names = names
        self.templates = templates or TemplatesInForce()

    def __call__(
        self, read: Callable[[Envelope[E]], CaseNotice | None]
    ) -> Callable[[Conn, Envelope[E]], Awaitable[None]]:
        async def handle(conn: Conn, event: Envelope[E]) -> None:
            notice = read(event)
            if notice is not None:
                await self.announce(conn, event, notice)

        return handle

    async def announce(self, conn: Conn, event: Envelope[CaseFacts], notice: CaseNotice) -> None:
        known = await self.names()
        wording = await self.templates.wording(conn)
        lineage = areas.ancestors(notice.area_path)
        candidates = await repository.candidate_recipients(
            conn, notice.department_id, lineage, notice.kind.value, self.box
        )
        subscriptions = await repository.subscriptions_for(conn, notice.kind.value, lineage)
        recipients = domain.select_recipients(notice, candidates, subscriptions)
        for r in recipients:
            msg = domain.render(
                notice,
                r.kind,
                self.link_base,
                department_id=r.department_id,
                names=known,
                wording=wording,
            )
            await _deliver(conn, event, notice, r, msg, self.clock(), known)
        if not recipients:
            log.info(
                "notice_without_recipients",
                department_id=notice.department_id,
                area_path=notice.area_path,
            )


async def _deliver(
    conn: Conn,
    event: Envelope[CaseFacts],
    notice: CaseNotice,
    r: Recipient,
    msg: Message,
    now: datetime,
    names: Names,
) -> None:
    """The inbox is delivered right here; the recipient's first channel is queued for the
    delivery worker (the next ones only if it keeps failing)."""
    body = domain.webhook_body(
        notice,
        msg,
        event_id=str(event.event_id),
        recipient_id=r.id,
        occurred_at=event.occurred_at,
        names=names,
    )
    ids: dict[str, Any] = {  # what identifies the message and each of its deliveries
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
    conn: Conn,
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
