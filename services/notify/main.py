"""Composition root of the notify service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from services.notify import api, consumers
from services.notify.config import Settings
from services.notify.webhooks import WebhookWorker
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
        description="Tells departments about dispatches (派单) and supervisors about overdue "
        "cases (超时督办): an in-app inbox and signed webhooks (Standard Webhooks), retried "
        "with backoff, every delivery logged and replayable.",
        routers=[api.recipients_router, api.subscriptions_router, api.deliveries_router],
        publishes=[],
        consumers=consumers.register,
        workers=lambda rt: [WebhookWorker(rt, settings)],
    )
