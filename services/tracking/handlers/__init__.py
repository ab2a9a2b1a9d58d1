"""Tracking's use cases, each one transaction: record a case event (``events``: timeline, read
model, clocks — ``clocks`` starts, stops and moves them), fire due timers (``timers``), the
SLA reference data (``sla``), supervisors' reads (``queries``)."""

from services.tracking.handlers.events import CONSUMED_TYPES, PRODUCER, SYSTEM_ACTOR, record_case_event
from services.tracking.handlers.queries import (
    BoardScope,
    CaseHistory,
    board_scope,
    case_history,
    overdue_board,
    require_case_reader,
)
from services.tracking.handlers.timers import Tick, fire_due_timers, timers_due

__all__ = [
    "CONSUMED_TYPES", "PRODUCER", "SYSTEM_ACTOR", "BoardScope", "CaseHistory", "Tick",
    "board_scope", "case_history", "fire_due_timers", "overdue_board", "record_case_event",
    "require_case_reader", "timers_due",
]
