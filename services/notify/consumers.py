"""Notify hears what people must act on or know: dispatches (派单), warnings (预警), overdue
alerts (超时), escalations (升级), urgings (督办), extension and pause requests and their
decisions (延期、挂账/缓办), resumptions (恢复办理), resolutions (办结) and closures (结案)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from services.notify import handlers
from services.notify.config import Settings
from services.notify.domain.names import Names
from services.notify.handlers import notices
from services.notify.sealing import SecretBox
from shared.broker import Route, on
from shared.contract import (
    CaseClosed,
    CaseDeadlineWarning,
    CaseDispatched,
    CaseEscalated,
    CaseExtensionDecided,
    CaseExtensionRequested,
    CaseOverdue,
    CasePauseDecided,
    CasePauseRequested,
    CaseResolved,
    CaseResumed,
    CaseUrged,
    CaseWhistled,
    Topics,
)
from shared.service import Runtime


def routes(notify: handlers.Notify) -> list[Route]:
    """The events notify hears, each read by its own reader (``notices``) and announced the
    same way (``notify``); ``NoticeKind`` names exactly these."""
    return [
        on(CaseWhistled, notify(notices.whistled)),
        on(CaseClosed, notify(notices.closed)),
        on(CaseDispatched, notify(notices.dispatched)),
        on(CaseResolved, notify(notices.resolved)),
        on(CaseExtensionRequested, notify(notices.extension_requested)),
        on(CaseExtensionDecided, notify(notices.extension_decided)),
        on(CasePauseRequested, notify(notices.pause_requested)),
        on(CasePauseDecided, notify(notices.pause_decided)),
        on(CaseResumed, notify(notices.resumed)),
        on(CaseDeadlineWarning, notify(notices.deadline_warning)),
        on(CaseOverdue, notify(notices.overdue)),
        on(CaseEscalated, notify(notices.escalated)),
        on(CaseUrged, notify(notices.urged)),
    ]


def register(
    rt: Runtime,
    settings: Settings,
    clock: Callable[[], datetime],
    box: SecretBox,
    names: Callable[[], Awaitable[Names]],
) -> None:
    notify = handlers.Notify(settings.public_base_url, clock, box, names)
    rt.consume(
        "deliveries",
        Topics.INTAKE,
        Topics.DISPATCH,
        Topics.TRACKING,
        routes=routes(notify),
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
