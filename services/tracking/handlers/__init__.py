"""Tracking's use cases, each one transaction: record a case event (``events``, one handler per
event class: timeline, read model, clocks — ``clocks`` starts, stops and moves them, ``pauses``
holds them still), fire due timers (``timers``), the SLA reference data (``sla``),
supervisors' reads (``queries``), the boards, their live feed and urging (``boards``)."""

from services.tracking.handlers.boards import (
    BoardQuery,
    FeedBatch,
    board_filter,
    feed_changes,
    feed_start,
    feed_tip,
    purge_feed,
    read_board,
    urge_case,
)
from services.tracking.handlers.events import CONSUMED, PRODUCER, SYSTEM_ACTOR
from services.tracking.handlers.queries import (
    BoardScope,
    CaseHistory,
    board_scope,
    case_history,
    require_case_reader,
)
from services.tracking.handlers.timers import Tick, fire_due_timers, timers_due

__all__ = [
    "CONSUMED",
    "PRODUCER",
    "SYSTEM_ACTOR",
    "BoardQuery",
    "BoardScope",
    "CaseHistory",
    "FeedBatch",
    "Tick",
    "board_filter",
    "board_scope",
    "case_history",
    "feed_changes",
    "feed_start",
    "feed_tip",
    "fire_due_timers",
    "purge_feed",
    "read_board",
    "require_case_reader",
    "timers_due",
    "urge_case",
]
