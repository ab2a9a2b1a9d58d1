"""Dispatch consumes the community's whistles (社区吹哨) and routes them, and follows
tracking's clocks and urgings for the departments' inboxes."""

from __future__ import annotations

from services.dispatch import handlers
from shared.broker import on
from shared.contract import (
    CaseClockStarted,
    CaseClockStopped,
    CasePhotoAdded,
    CaseReworkRequested,
    CaseUrged,
    CaseWhistled,
    Topics,
)
from shared.service import Runtime


def register(rt: Runtime) -> None:
    rt.consume(
        "whistles",
        Topics.INTAKE,
        routes=[
            on(CaseWhistled, handlers.route_whistle),
            on(CaseReworkRequested, handlers.send_back_for_rework),
            on(CasePhotoAdded, handlers.record_photo),
        ],
        description="Whistled cases (社区吹哨) → assignments (派单) or the manual-dispatch queue; "
        "failed checks (返工) → the same departments again; photos (for 办结's after-photos)",
    )
    rt.consume(
        "deadlines",
        Topics.TRACKING,
        routes=[
            on(CaseClockStarted, handlers.deadlines.record_clock_started),
            on(CaseClockStopped, handlers.deadlines.record_clock_stopped),
            on(CaseUrged, handlers.deadlines.record_urging),
        ],
        description="Tracking's clocks (started, moved, stopped) and urgings (督办) → the "
        "deadline and urge count each assignment shows in the department's inbox",
    )
