"""Intake follows dispatch's events to keep the reporter's view of each case current."""

from __future__ import annotations

from services.intake import handlers
from services.intake.handlers import forecast
from shared.broker import on
from shared.contract import (
    CaseClockStarted,
    CaseClockStopped,
    CaseDispatched,
    CaseOverdue,
    CaseRejected,
    CaseResolutionForecast,
    CaseResolved,
    CaseSignedFor,
    CaseTransferred,
    CaseUnroutable,
    Topics,
)
from shared.service import Runtime


def register(rt: Runtime) -> None:
    rt.consume(
        "progress",
        Topics.DISPATCH,
        routes=[
            on(CaseDispatched, handlers.on_dispatched),
            on(CaseUnroutable, handlers.on_unroutable),
            on(CaseSignedFor, handlers.on_signed_for),
            on(CaseResolved, handlers.on_resolved),
            on(CaseRejected, handlers.on_left),
            on(CaseTransferred, handlers.on_left),
        ],
        description="Case progress from dispatch → status view",
    )

    rt.consume(
        "clocks",
        Topics.TRACKING,
        routes=[
            on(CaseClockStarted, handlers.on_clock_started),
            on(CaseClockStopped, handlers.on_clock_stopped),
            on(CaseOverdue, handlers.on_overdue),
            on(CaseResolutionForecast, forecast.on_resolution_forecast),
        ],
        description="Deadlines and the resolution forecast (预计办结时间) from tracking → "
        "the reporter's view",
    )
