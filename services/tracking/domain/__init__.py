"""Tracking's rules, pure: the standard library (zoneinfo included), the contract's vocabulary
(``shared.contract``, ``shared.lifecycle``), ``shared.errors`` and each other only; no I/O,
no clock reads — callers pass ``now``.

    cases          CaseView, merge_case; AssignmentState, advance_assignment; which clocks an
                   event starts and stops; TimerFacts, timer_fires (re-exported here)
    board          Board, BoardItem, Position, urge_targets — the supervisors' boards (督办)
    calendar       WorkingCalendar: add, between, next_working_instant, working_time_on_days
    timeline       Timeline, CALENDAR_TIME, timeline(calendar, working) — a clock's time basis
    calendar_data  calendar_from_data / calendar_to_data
    policy         SlaPolicy, PolicyVersion, policy_for, policy_in_force, pin_policy
    validate       check_policy, check_version, check_versions
    policy_data    policy/version/pinned ⇄ data
    deadlines      Extension, Pause, plan_clocks → ClockPlan (warn_at, due_at, escalations)
    schedule       TimerKind, Stage, plan_assignment, stages, next_escalation — the timers
    kpi            AssignmentFacts, Period, compute_kpi, kpis_by_department, kpis_by_area
    ranking        rank, thresholds_from_data, red_black_list

The demo calendar and policy versions are data, not rules: ``services.tracking.demo``.
"""

from services.tracking.domain.cases import (
    CLOCKS_STOPPED_BY,
    AssignmentState,
    CaseView,
    TimerFacts,
    TimerState,
    advance_assignment,
    advance_case,
    clocks_to_start,
    merge_case,
    seconds_until_next_tick,
    sign_for_due_at,
    timer_fires,
)
from services.tracking.domain.schedule import TimerKind
from shared.contract import Clock
from shared.lifecycle import STATUS_ZH, CaseStatus

__all__ = [
    "CLOCKS_STOPPED_BY",
    "STATUS_ZH",
    "AssignmentState",
    "CaseStatus",
    "CaseView",
    "Clock",
    "TimerFacts",
    "TimerKind",
    "TimerState",
    "advance_assignment",
    "advance_case",
    "clocks_to_start",
    "merge_case",
    "seconds_until_next_tick",
    "sign_for_due_at",
    "timer_fires",
]
