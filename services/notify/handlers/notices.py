"""What each consumed event tells people: one reader per event class notify hears
(``consumers`` routes each class to its reader), each reading its own payload's fields.

A reader returns None when the event tells nobody anything (a co-handler's partial
resolution: the normal course of a case). Who hears a notice and what it says are the
domain's (``select_recipients``, ``render``); writing it down is ``events.Notify``'s.
"""

from __future__ import annotations

from typing import Any

from services.notify.domain import CaseNotice, NoticeKind
from shared.contract import (
    AssignmentFacts,
    CaseClosed,
    CaseDeadlineWarning,
    CaseDispatched,
    CaseEscalated,
    CaseExtensionDecided,
    CaseExtensionRequested,
    CaseFacts,
    CaseOverdue,
    CasePauseDecided,
    CasePauseRequested,
    CaseResolved,
    CaseResumed,
    CaseUrged,
    CaseWhistled,
    Envelope,
)


def _case(event: Envelope[CaseFacts], **told: Any) -> CaseNotice:
    """What every case event carries; its kind is its payload's class."""
    p = event.payload
    return CaseNotice(
        kind=NoticeKind(p.TYPE),
        case_id=str(event.case_id),
        case_no=p.case_no,
        category=p.category,
        area_path=p.area_path,
        priority=p.priority.value,
        **told,
    )


def _assignment(event: Envelope[AssignmentFacts], **told: Any) -> CaseNotice:
    """An event about one department's assignment, named by the department's name where the
    event carries it (absent from older events, or not carried at all: the id stands in)."""
    p = event.payload
    return _case(
        event,
        department_id=p.department_id,
        department_name=getattr(p, "department_name", None) or p.department_id,
        assignment_id=str(p.assignment_id),
        **told,
    )


def _deadline(
    event: Envelope[CaseDeadlineWarning] | Envelope[CaseOverdue] | Envelope[CaseEscalated],
    **told: Any,
) -> CaseNotice:
    """An event about one of an assignment's deadlines (tracking's clocks)."""
    p = event.payload
    return _assignment(event, clock=p.clock.value, due_at=p.due_at, **told)


# --- intake ---------------------------------------------------------------------------------


def whistled(event: Envelope[CaseWhistled]) -> CaseNotice:
    """吹哨: whether it is an escalation (street or district level) is the domain's rule."""
    p = event.payload
    return _case(
        event,
        description=p.description,
        place=p.location.address,
        level=p.level.value,
        note=p.note,
    )


def closed(event: Envelope[CaseClosed]) -> CaseNotice:
    p = event.payload
    return _case(event, result=p.note, note=p.note)


# --- dispatch -------------------------------------------------------------------------------


def dispatched(event: Envelope[CaseDispatched]) -> CaseNotice:
    p = event.payload
    return _assignment(
        event,
        role=p.role.value,
        description=p.description,
        reason=p.reason,
    )


def resolved(event: Envelope[CaseResolved]) -> CaseNotice | None:
    """The whole case resolved; a co-handler's part of it, while others still work, is news
    to nobody."""
    p = event.payload
    if not p.case_resolved:
        return None
    return _assignment(event, result=p.result or None)


def extension_requested(event: Envelope[CaseExtensionRequested]) -> CaseNotice:
    p = event.payload
    return _assignment(event, reason=p.reason, days=p.days)


def extension_decided(event: Envelope[CaseExtensionDecided]) -> CaseNotice:
    p = event.payload
    return _assignment(event, days=p.days, approved=p.approved, comment=p.comment)


def pause_requested(event: Envelope[CasePauseRequested]) -> CaseNotice:
    p = event.payload
    return _assignment(event, pause=p.kind.value, reason=p.reason)


def pause_decided(event: Envelope[CasePauseDecided]) -> CaseNotice:
    p = event.payload
    return _assignment(
        event,
        pause=p.kind.value,
        reason=p.reason,
        approved=p.approved,
        comment=p.comment,
    )


def resumed(event: Envelope[CaseResumed]) -> CaseNotice:
    p = event.payload
    return _assignment(event, note=p.note)


# --- tracking -------------------------------------------------------------------------------


def deadline_warning(event: Envelope[CaseDeadlineWarning]) -> CaseNotice:
    return _deadline(event)


def overdue(event: Envelope[CaseOverdue]) -> CaseNotice:
    return _deadline(event)


def escalated(event: Envelope[CaseEscalated]) -> CaseNotice:
    return _deadline(event, level=event.payload.level.value)


def urged(event: Envelope[CaseUrged]) -> CaseNotice:
    p = event.payload
    return _assignment(event, note=p.note, count=p.count)
