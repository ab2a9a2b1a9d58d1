"""Intake's casework rules (no infrastructure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.intake import domain
from services.intake.domain import CaseStatus as S
from shared.contract import Level as L
from shared.errors import Conflict, DomainError, Invalid

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [S.REPORTED, S.UNROUTABLE, S.REOPENED])
def test_whistle_while_with_the_community(status):
    domain.check_whistle(status)


@pytest.mark.parametrize("status", [S.WHISTLED, S.DISPATCHED, S.RESOLVED, S.CLOSED, S.REWORK])
def test_no_whistle_once_with_the_departments_or_closed(status):
    with pytest.raises(Conflict):
        domain.check_whistle(status)


@pytest.mark.parametrize(
    ("role", "level", "grid_workers_may", "ok"),
    [
        ("community", L.COMMUNITY, False, True),
        ("grid_worker", L.COMMUNITY, False, False),
        ("grid_worker", L.COMMUNITY, True, True),
        ("grid_worker", L.STREET, True, False),
        ("community", L.STREET, False, True),
        ("community", L.DISTRICT, False, False),
        ("street", L.DISTRICT, False, True),
    ],
)
def test_who_may_whistle_at_which_level(role, level, grid_workers_may, ok):
    if ok:
        domain.check_whistle_level(role, level, grid_workers_may)
    else:
        with pytest.raises(DomainError) as err:
            domain.check_whistle_level(role, level, grid_workers_may)
        assert err.value.status_code == 403


def test_fix_on_spot_only_before_the_whistle():
    domain.check_fix_on_spot(S.REPORTED)
    domain.check_fix_on_spot(S.REOPENED)
    for status in (S.WHISTLED, S.DISPATCHED, S.RESOLVED, S.CLOSED):
        with pytest.raises(Conflict):
            domain.check_fix_on_spot(status)


def test_verification_only_after_the_department_resolved():
    domain.check_close(S.RESOLVED)
    domain.check_rework(S.RESOLVED)
    for status in (S.REPORTED, S.DISPATCHED, S.SIGNED_FOR, S.REWORK, S.CLOSED):
        with pytest.raises(Conflict):
            domain.check_rework(status)
        with pytest.raises(Conflict):
            domain.check_close(status)


def test_rating_once_and_only_when_closed():
    domain.check_rate(S.CLOSED, "verified", already_rated=False)
    domain.check_rate(S.CLOSED, "on_spot", already_rated=False)
    with pytest.raises(Conflict):
        domain.check_rate(S.RESOLVED, None, already_rated=False)
    with pytest.raises(Conflict):
        domain.check_rate(S.CLOSED, "merged", already_rated=False)
    with pytest.raises(Conflict) as err:
        domain.check_rate(S.CLOSED, "verified", already_rated=True)
    assert err.value.code == "already_rated"


def test_reopen_within_the_window_only():
    domain.check_reopen(S.CLOSED, "verified", NOW - timedelta(days=6), NOW, 7)
    with pytest.raises(Conflict) as err:
        domain.check_reopen(S.CLOSED, "verified", NOW - timedelta(days=8), NOW, 7)
    assert err.value.code == "reopen_window_passed"
    with pytest.raises(Conflict):
        domain.check_reopen(S.RESOLVED, None, None, NOW, 7)
    with pytest.raises(Conflict):
        domain.check_reopen(S.CLOSED, "merged", NOW, NOW, 7)  # reopen the primary instead


def test_merge_rules():
    domain.check_merge(1, S.REPORTED, 2, S.DISPATCHED)
    with pytest.raises(Invalid):
        domain.check_merge(1, S.REPORTED, 1, S.REPORTED)
    with pytest.raises(Conflict):
        domain.check_merge(1, S.DISPATCHED, 2, S.REPORTED)  # already with a department
    with pytest.raises(Conflict):
        domain.check_merge(1, S.REPORTED, 2, S.CLOSED)


def test_case_number_carries_the_district_code_and_the_beijing_day():
    # 17:30 UTC on 22 November is 01:30 on 23 November in Beijing
    at = datetime(2026, 11, 22, 17, 30, tzinfo=UTC)
    assert domain.format_case_no("XC/XC01/XC0102/XC0102-01", at, 7) == "XC20261123-0007"
    assert domain.format_case_no("YA", datetime(2026, 11, 22, 9, tzinfo=UTC), 42) == (
        "YA20261122-0042"
    )
