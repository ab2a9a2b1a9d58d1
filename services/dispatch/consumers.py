"""Dispatch consumes the community's whistles (社区吹哨) and routes them, and follows
tracking's clocks and urgings for the departments' inboxes."""

from __future__ import annotations

from services.dispatch import handlers
from shared.broker import EventConsumer, on
from shared.contract import (
    CaseClockStarted,
    CaseClockStopped,
    CasePhotoAdded,
    CaseReworkRequested,
    CaseUrged,
    CaseWhistled,
    Topics,
)
from shared.faults import RetryPolicy
from shared.service import Runtime


def register(rt: Runtime) -> None:
    whistles = EventConsumer(
        service="dispatch",
        name="whistles",
        pool=rt.get_pool,
        broker=rt.broker,
        policy=RetryPolicy.from_settings(rt.settings),
        routes=[
            on(CaseWhistled, handlers.route_whistle),
            on(CaseReworkRequested, handlers.send_back_for_rework),
            on(CasePhotoAdded, handlers.record_photo),
        ],
    )
    whistles.subscribe(
        Topics.INTAKE,
        description="Whistled cases (社区吹哨) → assignments (派单) or the manual-dispatch queue; "
        "failed checks (返工) → the same departments again; photos (for 办结's after-photos)",
    )
    deadlines = EventConsumer(
        service="dispatch",
        name="deadlines",
        pool=rt.get_pool,
        broker=rt.broker,
        policy=RetryPolicy.from_settings(rt.settings),
        routes=[
            on(CaseClockStarted, handlers.deadlines.record_clock_started),
            on(CaseClockStopped, handlers.deadlines.record_clock_stopped),
            on(CaseUrged, handlers.deadlines.record_urging),
        ],
    )
    deadlines.subscribe(
        Topics.TRACKING,
        description="Tracking's clocks (started, moved, stopped) and urgings (督办) → the "
        "deadline and urge count each assignment shows in the department's inbox",
    )
