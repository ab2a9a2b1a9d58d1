"""Tracking follows every case event from intake and dispatch into one timeline."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from services.tracking import handlers
from services.tracking.config import Settings
from shared.broker import EventConsumer, on
from shared.contract import Topics
from shared.faults import RetryPolicy
from shared.service import Runtime


def register(rt: Runtime, settings: Settings) -> None:
    seconds = settings.sign_for_deadline_seconds
    record = partial(
        handlers.record_case_event,
        sign_for_deadline=None if seconds is None else timedelta(seconds=seconds),
    )
    timeline = EventConsumer(
        service="tracking",
        name="timeline",
        pool=rt.get_pool,
        broker=rt.broker,
        policy=RetryPolicy.from_settings(settings),
        routes=[on(cls, record) for cls in handlers.CONSUMED],
    )
    timeline.subscribe(
        Topics.INTAKE,
        Topics.DISPATCH,
        description="Every case event → the case timeline, the read model and the clocks: a "
        "dispatch pins the SLA policy in force and starts the sign-for, on-site and resolution "
        "clocks (warning, deadline and escalation timers); sign-for, a progress note, "
        "resolution, rejection, transfer and closing stop them; an approved extension moves "
        "the resolution deadline",
    )
