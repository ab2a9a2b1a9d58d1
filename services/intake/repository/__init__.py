"""Intake's SQL over asyncpg, one function per query, grouped by what it is about
(``cases`` is re-exported here)."""

from services.intake.repository.cases import (
    CaseRow as CaseRow,
    grid_path as grid_path,
    category_exists as category_exists,
    category_count as category_count,
    replace_categories as replace_categories,
    reports_since as reports_since,
    next_case_seq as next_case_seq,
    claim_idempotency_key as claim_idempotency_key,
    insert_case as insert_case,
    get_case as get_case,
    in_areas as in_areas,
    list_cases as list_cases,
    update_status as update_status,
    remove_assigned_department as remove_assigned_department,
    add_assigned_department as add_assigned_department,
    upsert_areas as upsert_areas,
    list_areas as list_areas,
    subtree_areas as subtree_areas,
    upsert_clock as upsert_clock,
    case_known as case_known,
    refresh_deadlines as refresh_deadlines,
)
