"""Composition root of the tracking service."""

from __future__ import annotations

from fastapi import FastAPI

from services.tracking import api, consumers
from services.tracking.config import Settings
from services.tracking.scheduler import TimerScheduler
from shared.events import CaseClockStarted, CaseClockStopped, CaseOverdue
from shared.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Whistle tracking 督办跟踪",
        description="Follows every case event into a timeline, runs the deadline clocks "
        "(签收/报到时限) as durable timers, raises overdue alerts (超时) and serves the "
        "supervisors' overdue board and case histories.",
        routers=[api.router],
        publishes=[CaseOverdue, CaseClockStarted, CaseClockStopped],
        consumers=lambda rt: consumers.register(rt, settings),
        workers=lambda rt: [
            TimerScheduler(rt.get_pool, poll_interval=settings.timer_poll_interval_seconds,
                           batch_size=settings.timer_batch_size)
        ],
    )
