"""Composition root of the notify service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from fastapi import FastAPI

from services.notify import api, consumers
from services.notify.config import Settings
from services.notify.reference import ReferenceNames
from services.notify.sealing import Resealer, SecretBox
from services.notify.stream import InboxStreams
from services.notify.worker import DeliveryWorker
from shared.clock import utcnow
from shared.service import BackgroundWorker, Runtime, create_service_app

log = structlog.get_logger()


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] = utcnow
) -> FastAPI:
    """``clock`` schedules deliveries (backoff, quiet hours, a robot's rate window): tests
    pass one they can move on. It never stamps a signature: a receiver checks a signature's
    timestamp against its own wall clock (see ``worker``)."""
    settings = settings or Settings()
    box = SecretBox(settings.secrets_keys())
    streams = InboxStreams(
        settings.database_url.get_secret_value(),
        poll_interval=settings.stream_poll_seconds,
        batch_size=settings.stream_batch_size,
    )
    # names of areas (intake) and categories (dispatch) for messages, instead of codes
    reference = ReferenceNames(
        settings.intake_url,
        settings.dispatch_url,
        area_root=settings.reference_area_root,
        every=settings.reference_refresh_seconds,
    )

    def workers(rt: Runtime) -> list[BackgroundWorker]:
        return [
            reference,
            Resealer(rt.get_pool, box),
            DeliveryWorker(rt, settings, clock, box),
            streams,  # stopped first (workers stop in reverse): open streams end cleanly
        ]

    app = create_service_app(
        settings,
        title="Whistle notify 消息通知",
        description="Tells the right people about each case — departments about dispatches "
        "(派单), warnings, urgings (督办) and the decisions on their extension and pause "
        "requests, supervisors about overdue cases, escalations and the requests waiting for "
        "their decision, the reporter's side about resolution and closure — in the in-app "
        "inbox with its live stream (SSE) and on the channel they read (signed webhooks, "
        "WeCom, DingTalk and Feishu robots, email, SMS), retried with backoff, falling back "
        "to the next channel, every delivery logged and replayable; channel secrets sealed "
        "at rest.",
        routers=[
            api.recipients_router,
            api.subscriptions_router,
            api.templates_router,
            api.deliveries_router,
        ],
        publishes=[],
        consumers=lambda rt: consumers.register(rt, settings, clock, box, reference.names),
        workers=workers,
    )
    if settings.missing_public_base_url:
        log.warning(
            "public_base_url_missing",
            detail="PUBLIC_BASE_URL is not set: links in messages are bare paths "
            "(/assignments/…, /cases/…) that robots, email and SMS readers "
            "cannot open; set it to the console's address, e.g. "
            "https://whistle.example.gov.cn",
        )
    app.state.secret_box = box
    app.state.inbox_streams = streams
    app.state.reference_names = reference
    return app
