"""Composition root of the notify service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from services.notify import api, consumers
from services.notify.config import Settings
from services.notify.worker import DeliveryWorker
from shared.service import create_service_app


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings | None = None, *,
               clock: Callable[[], datetime] = _utc_now) -> FastAPI:
    """``clock`` schedules deliveries (backoff, quiet hours, a robot's rate window): tests
    pass one they can move on."""
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Whistle notify 消息通知",
        description="Tells the right people about each case — departments about dispatches "
        "(派单), warnings and urgings, supervisors about overdue cases and escalations, the "
        "reporter's side about resolution and closure — in the in-app inbox and on the channel "
        "they read (signed webhooks, WeCom, DingTalk and Feishu robots, email, SMS), retried "
        "with backoff, falling back to the next channel, every delivery logged and replayable.",
        routers=[api.recipients_router, api.subscriptions_router, api.deliveries_router],
        publishes=[],
        consumers=lambda rt: consumers.register(rt, settings, clock),
        workers=lambda rt: [DeliveryWorker(rt, settings, clock)],
    )
