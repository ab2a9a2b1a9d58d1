"""Intake's use cases, each one transaction — read, let the domain decide, write, outbox:
reporting and whistling (``cases``, re-exported here), casework after the report, the
jurisdiction tree, photos, Open311."""

from services.intake.handlers.cases import (
    PRODUCER as PRODUCER,
    ReportCase as ReportCase,
    WhistleCase as WhistleCase,
    case_facts as case_facts,
    find_case as find_case,
    case_in_scope as case_in_scope,
    report_case as report_case,
    whistle_case as whistle_case,
    close_case as close_case,
    get_case as get_case,
    list_cases as list_cases,
    sync_categories as sync_categories,
)
from services.intake.handlers.following import (
    on_dispatched as on_dispatched,
    on_unroutable as on_unroutable,
    on_signed_for as on_signed_for,
    on_resolved as on_resolved,
    on_left as on_left,
    on_clock_started as on_clock_started,
    on_clock_stopped as on_clock_stopped,
    on_overdue as on_overdue,
)
