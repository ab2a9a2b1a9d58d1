"""Tracking follows every case event from intake and dispatch into one timeline."""

from __future__ import annotations

from datetime import timedelta
from functools import partial


from services.tracking.config import Settings
from services.tracking.handlers import events
from shared.broker import Route, on
from shared.contract import (
    CaseClosed,
    CaseDispatched,
    CaseExtensionDecided,
    CaseExtensionRequested,
    CaseMerged,
    CasePauseDecided,
    CasePauseRequested,
    CasePhotoAdded,
    CaseProgressed,
    CaseRated,
    CaseRejected,
    CaseReopened,
    CaseReported,
    CaseResolved,
    CaseResumed,
    CaseReworkRequested,
    CaseSignedFor,
    CaseTransferred,
    CaseUnroutable,
    CaseWhistled,
    Envelope,
    EventPayload,
    Topics,
)
from shared.service import Runtime
from shared.db import Conn


def routes(sign_for_deadline: timedelta | None = None) -> list[Route]:
    """Every case event of intake and dispatch (``events.CONSUMED``), each class to its own
    handler. ``sign_for_deadline`` overrides every policy's sign-for limit (short demo/test
    clocks)."""
    return [
        # intake
        on(CaseReported, events.record_reported),
        on(CaseWhistled, events.record_whistled),
        on(CaseClosed, events.record_closed),
        on(CaseReworkRequested, events.record_rework_requested),
        on(CaseRated, events.record_rated),
        on(CaseReopened, events.record_reopened),
        on(CasePhotoAdded, events.record_photo_added),
        on(CaseMerged, events.record_merged),
        # dispatch
        on(
            CaseDispatched,
            partial(events.record_dispatched, sign_for_deadline=sign_for_deadline),
        ),
        on(CaseUnroutable, events.record_unroutable),
        on(CaseSignedFor, events.record_signed_for),
        on(CaseResolved, events.record_resolved),
        on(CaseRejected, events.record_rejected),
        on(CaseTransferred, events.record_transferred),
        on(CaseProgressed, events.record_progressed),
        on(CaseExtensionRequested, events.record_extension_requested),
        on(CaseExtensionDecided, events.record_extension_decided),
        on(CasePauseRequested, events.record_pause_requested),
        on(CasePauseDecided, events.record_pause_decided),
        on(CaseResumed, events.record_resumed),
    ]


async def record(
    conn: Conn,
    event: Envelope[EventPayload],
    *,
    sign_for_deadline: timedelta | None = None,
) -> None:
    """Record one event as the timeline consumer does, by its route for the payload's class
    (for tests and tools; inside the caller's transaction)."""
    by_class = {r.event: r.handler for r in routes(sign_for_deadline)}
    await by_class[type(event.payload)](conn, event)


def register(rt: Runtime, settings: Settings) -> None:
    seconds = settings.sign_for_deadline_seconds
    rt.consume(
        "timeline",
        Topics.INTAKE,
        Topics.DISPATCH,
        routes=routes(None if seconds is None else timedelta(seconds=seconds)),
        description="Every case event → the case timeline, the read model and the clocks: a "
        "dispatch pins the SLA policy in force and starts the sign-for, on-site and resolution "
        "clocks (warning, deadline and escalation timers); sign-for, a progress note, "
        "resolution, rejection, transfer and closing stop them; an approved extension moves "
        "the resolution deadline",
    )
