"""Notify hears what people must act on: dispatches (派单) and overdue alerts (超时)."""

from __future__ import annotations

from services.notify import handlers
from services.notify.config import Settings
from shared.broker import EventConsumer
from shared.events import CaseDispatched, CaseOverdue, Topics
from shared.service import Runtime


def register(rt: Runtime) -> None:
    settings = rt.settings
    link_base = settings.case_link_base if isinstance(settings, Settings) else ""
    notify_case = handlers.make_notify(link_base)
    deliveries = EventConsumer(
        service="notify", name="deliveries", pool=rt.get_pool, broker=rt.broker,
        max_attempts=settings.consumer_max_attempts,
        handlers={CaseDispatched.TYPE: notify_case, CaseOverdue.TYPE: notify_case},
    )
    deliveries.subscribe(
        Topics.DISPATCH, Topics.TRACKING,
        description="case.dispatched → the department's desks; case.overdue → the area's "
        "supervisors and the late department. Written to the in-app inbox and queued for "
        "webhooks.",
    )
