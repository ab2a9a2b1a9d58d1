"""Tracking's SQL, one function per query: the timeline, the case read model and assignments
(``cases``), durable timers (``timers``), the SLA data (``sla``), the boards, their feed and urging
(``boards``)."""

from services.tracking.repository.cases import (
    AssignmentRow,
    append_event,
    case_assignments,
    get_case,
    insert_assignment,
    insert_case,
    lock_assignment_state,
    timeline,
    update_assignment,
    update_case,
)
from services.tracking.repository.timers import (
    Arm,
    DueTimer,
    cancel_assignment_timers,
    cancel_case_timers,
    claim_due_timers,
    schedule_timer,
    schedule_timers,
    settle_timers,
    timers_due,
)

__all__ = [
    "Arm",
    "AssignmentRow",
    "DueTimer",
    "append_event",
    "assignment_timers",
    "cancel_assignment_timers",
    "cancel_case_timers",
    "case_assignments",
    "claim_due_timers",
    "get_case",
    "insert_assignment",
    "insert_case",
    "lock_assignment_state",
    "schedule_timer",
    "schedule_timers",
    "settle_timers",
    "timeline",
    "timers_due",
    "update_assignment",
    "update_case",
]
