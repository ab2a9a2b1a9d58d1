"""Intake follows dispatch's events to keep the reporter's view of each case current."""

from __future__ import annotations

from services.intake import handlers
from shared.broker import EventConsumer, on
from shared.contract import (
    CaseClockStarted,
    CaseClockStopped,
    CaseDispatched,
    CaseOverdue,
    CaseRejected,
    CaseResolved,
    CaseSignedFor,
    CaseTransferred,
    CaseUnroutable,
    Topics,
)
from shared.faults import RetryPolicy
from shared.service import Runtime


def register(rt: Runtime) -> None:
    progress = EventConsumer(
        service="intake",
        name="progress",
        pool=rt.get_pool,
        broker=rt.broker,
        policy=RetryPolicy.from_settings(rt.settings),
        routes=[
            on(CaseDispatched, handlers.on_dispatched),
            on(CaseUnroutable, handlers.on_unroutable),
            on(CaseSignedFor, handlers.on_signed_for),
            on(CaseResolved, handlers.on_resolved),
            on(CaseRejected, handlers.on_left),
            on(CaseTransferred, handlers.on_left),
        ],
    )
    progress.subscribe(Topics.DISPATCH, description="Case progress from dispatch → status view")

    clocks = EventConsumer(
        service="intake",
        name="clocks",
        pool=rt.get_pool,
        broker=rt.broker,
        policy=RetryPolicy.from_settings(rt.settings),
        routes=[
            on(CaseClockStarted, handlers.on_clock_started),
            on(CaseClockStopped, handlers.on_clock_stopped),
            on(CaseOverdue, handlers.on_overdue),
        ],
    )
    clocks.subscribe(Topics.TRACKING, description="Deadlines from tracking → the reporter's view")
