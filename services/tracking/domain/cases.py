"""Tracking's rules for the case as supervisors see it, its assignments and their clocks (the
boards' rules are in ``board``, the SLA's in ``calendar`` … ``schedule``).

Pure: the standard library, the contract's vocabulary and the other modules of ``domain`` only;
no I/O, no clock (callers pass ``now``). Events from different producers may arrive out of
order and twice, so every rule here only moves things forward.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.tracking.domain.schedule import TimerKind
from shared.contract import (
    AssignmentFacts,
    CaseProgressed,
    CaseRejected,
    CaseResolved,
    CaseSignedFor,
    CaseTransferred,
    Clock,
)
from shared.lifecycle import CaseStatus, advance


class AssignmentState(StrEnum):
    DISPATCHED = "dispatched"  # 已派单，待报到
    SIGNED_FOR = "signed_for"  # 已报到 (签收)
    RESOLVED = "resolved"  # 已办结


_ASSIGNMENT_RANK = {state: rank for rank, state in enumerate(AssignmentState)}


class TimerState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


# --- the case read model ----------------------------------------------------------------


@dataclass(frozen=True)
class CaseView:
    """The case as tracking knows it; ``updated_at`` is when the newest event applied happened."""

    case_no: str
    area_path: str
    category: str
    priority: str
    status: CaseStatus
    updated_at: datetime


advance_case = advance  # the latest event sets the status; a late one never rewinds it


def merge_case(current: CaseView, incoming: CaseView) -> CaseView:
    """Apply an event's view of the case: the newest event's facts (a whistle may raise the
    priority) and status (a rework or a reopening loops back), the latest time."""
    status = advance_case(current.status, current.updated_at, incoming.status, incoming.updated_at)
    if incoming.updated_at >= current.updated_at:
        return replace(incoming, status=status)
    return replace(current, status=status)


# --- assignments and their clocks ------------------------------------------------------------


def advance_assignment(
    current: AssignmentState | None, incoming: AssignmentState
) -> AssignmentState:
    """An assignment's state after an event; a dispatch arriving after its sign-for (another
    partition, a replay) does not undo the sign-for."""
    if current is None:
        return incoming
    return incoming if _ASSIGNMENT_RANK[incoming] > _ASSIGNMENT_RANK[current] else current


def sign_for_due_at(dispatched_at: datetime, deadline: timedelta) -> datetime:
    """签收时限: counted from when the dispatch happened, not from when we heard of it."""
    if deadline <= timedelta(0):
        raise ValueError("a deadline must be positive")
    return dispatched_at + deadline


# Which clocks an assignment's event stops (besides the case closing, which stops them all),
# by the event's class. An event that stops the resolution clock ends a pause running too.
CLOCKS_STOPPED_BY: dict[type[AssignmentFacts], tuple[Clock, ...]] = {
    CaseSignedFor: (Clock.SIGN_FOR,),
    # The first progress note (e.g. 已到现场) is the department's report from the site.
    CaseProgressed: (Clock.ON_SITE,),
    CaseResolved: (Clock.SIGN_FOR, Clock.ON_SITE, Clock.RESOLVE),
    CaseRejected: (Clock.SIGN_FOR, Clock.ON_SITE, Clock.RESOLVE),
    CaseTransferred: (Clock.SIGN_FOR, Clock.ON_SITE, Clock.RESOLVE),
}


def clocks_to_start(state: AssignmentState, ended: bool) -> tuple[Clock, ...]:
    """The clocks a dispatch starts, given what is already known of the assignment (its
    later events may have arrived first): none once it ended or was resolved."""
    if ended or state is AssignmentState.RESOLVED:
        return ()
    if state is AssignmentState.SIGNED_FOR:
        return (Clock.ON_SITE, Clock.RESOLVE)
    return tuple(Clock)


@dataclass(frozen=True)
class TimerFacts:
    """What deciding whether a claimed timer fires needs to know."""

    clock: Clock
    kind: TimerKind
    revision: int
    clock_running: bool
    clock_revision: int
    clock_due_at: datetime
    assignment: AssignmentState
    ended: bool
    case: CaseStatus


def timer_fires(t: TimerFacts, now: datetime) -> bool:
    """A due timer fires only while its clock runs at the same revision (an extension makes
    older timers moot), its assignment is still being handled and the case is open; a warning
    whose deadline has passed meanwhile (the scheduler was down) gives way to the overdue
    alert. (Stopping a clock cancels its timers in the same transaction; this guards races.)"""
    if not t.clock_running or t.revision != t.clock_revision or t.ended:
        return False
    if t.case is CaseStatus.CLOSED or t.assignment is AssignmentState.RESOLVED:
        return False
    if t.clock is Clock.SIGN_FOR and t.assignment is not AssignmentState.DISPATCHED:
        return False
    return not (t.kind is TimerKind.WARNING and now > t.clock_due_at)


def seconds_until_next_tick(
    now: datetime, next_due: datetime | None, poll_interval: float
) -> float:
    """The scheduler sleeps until the next timer is due, but never longer than the poll
    interval (timers created meanwhile by the consumers are picked up at the next poll)."""
    if next_due is None:
        return poll_interval
    return max(0.0, min(poll_interval, (next_due - now).total_seconds()))
