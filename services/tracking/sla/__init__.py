"""Tracking's SLA rules (issue 6), pure: the working calendar and working-time arithmetic,
versioned SLA policies and the deadlines they give an assignment (moved by extensions and
pauses), KPIs, rankings and the red/black list. Standard library (and zoneinfo) and the
contract's plain vocabulary (``shared.contract.values``, ``.areas``) only; no I/O, no clock reads — callers pass ``now``.

    calendar       WorkingCalendar: add, between, next_working_instant, working_time_on_days
    timeline       Timeline, CALENDAR_TIME, timeline(calendar, working) — a clock's time basis
    calendar_data  calendar_from_data / calendar_to_data
    policy         SlaPolicy, PolicyVersion, policy_for, policy_in_force, pin_policy
    validate       check_policy, check_version, check_versions
    policy_data    policy/version/pinned ⇄ data
    deadlines      Extension, Pause, plan_clocks → ClockPlan (warn_at, due_at, escalations)
    kpi            AssignmentFacts, Period, compute_kpi, kpis_by_department, kpis_by_area
    ranking        rank, thresholds_from_data, red_black_list
    demo           demo_calendar(), demo_policy_versions()
"""
