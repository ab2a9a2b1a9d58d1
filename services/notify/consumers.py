"""Notify hears what people must act on or know: dispatches (派单), warnings (预警), overdue
alerts (超时), escalations (升级), urgings (督办), extension and pause requests and their
decisions (延期、挂账/缓办), resumptions (恢复办理), resolutions (办结) and closures (结案)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from services.notify import handlers
from services.notify.config import Settings
from services.notify.domain import NoticeKind
from services.notify.domain.names import Names
from services.notify.sealing import SecretBox
from shared.broker import EventConsumer, on
from shared.contract import Topics, payload_class
from shared.faults import RetryPolicy
from shared.service import Runtime


def register(
    rt: Runtime,
    settings: Settings,
    clock: Callable[[], datetime],
    box: SecretBox,
    names: Callable[[], Awaitable[Names]],
) -> None:
    notify_case = handlers.make_notify(settings.public_base_url, clock, box, names)
    deliveries = EventConsumer(
        service="notify",
        name="deliveries",
        pool=rt.get_pool,
        broker=rt.broker,
        policy=RetryPolicy.from_settings(settings),
        routes=[on(payload_class(kind.value, 1), notify_case) for kind in NoticeKind],
    )
    deliveries.subscribe(
        Topics.INTAKE,
        Topics.DISPATCH,
        Topics.TRACKING,
        description="case.dispatched → the department's desks; case.overdue → the area's "
        "supervisors and the late department (督办); case.whistled at street or district level "
        "(escalation) → the area's supervisors; case.resolved (the whole case) and case.closed "
        "→ the reporter's side (community and grid-worker desks of the area); "
        "case.deadline_warning → the department; case.escalated → the area's supervisors; "
        "case.urged → the department; case.extension_requested and case.pause_requested → "
        "the area's supervisors (they decide); case.extension_decided, case.pause_decided "
        "and case.resumed → the department; and whoever subscribed (a recipient may mute "
        "the defaults it need not act on). Written to the in-app inbox and queued for the recipient's "
        "first channel.",
    )
