"""Composition root of the tracking service."""

from __future__ import annotations

from fastapi import FastAPI

from services.tracking import api, consumers
from services.tracking.config import Settings
from services.tracking.scheduler import TimerScheduler
from shared.events import (
    CaseClockStarted,
    CaseClockStopped,
    CaseDeadlineWarning,
    CaseEscalated,
    CaseOverdue,
)
from shared.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Whistle tracking 督办跟踪",
        description="Follows every case event into a timeline, runs the clocks of the SLA "
        "policy pinned at dispatch (签收、到场、办结时限, in working time by the working "
        "calendar) as durable timers, raises warnings (预警), overdue alerts (超时) and "
        "escalations (逐级上报), and serves the supervisors' overdue board, case histories "
        "and the SLA reference data.",
        routers=[api.router],
        publishes=[CaseDeadlineWarning, CaseOverdue, CaseEscalated, CaseClockStarted,
                   CaseClockStopped],
        consumers=lambda rt: consumers.register(rt, settings),
        workers=lambda rt: [
            TimerScheduler(rt.get_pool, poll_interval=settings.timer_poll_interval_seconds,
                           batch_size=settings.timer_batch_size)
        ],
    )
