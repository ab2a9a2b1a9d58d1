"""Tracking's pure rules: clocks, out-of-order events, the overdue board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.tracking import domain
from services.tracking.domain import AssignmentState as A
from services.tracking.domain import CaseStatus as S
from services.tracking.domain import CaseView, Clock, OverdueEntry

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def view(status: S, at: datetime, priority: str = "normal") -> CaseView:
    return CaseView(case_no="YA20260302-0001", area_path="YA/YA01/YA0101/YA0101-01",
                    category="E0101", priority=priority, status=status, updated_at=at)


# --- deadlines ------------------------------------------------------------------------------


def test_sign_for_deadline_counts_from_the_dispatch_not_from_when_we_heard_of_it():
    assert domain.sign_for_due_at(T0, timedelta(minutes=30)) == T0 + timedelta(minutes=30)


@pytest.mark.parametrize("deadline", [timedelta(0), timedelta(seconds=-1)])
def test_a_deadline_must_be_positive(deadline):
    with pytest.raises(ValueError):
        domain.sign_for_due_at(T0, deadline)


@pytest.mark.parametrize(
    ("next_due", "expected"),
    [
        (None, 1.0),                          # nothing pending: poll
        (T0 + timedelta(seconds=0.25), 0.25),  # due before the next poll: wake for it
        (T0 + timedelta(hours=1), 1.0),       # far away: poll (new timers may come)
        (T0 - timedelta(seconds=5), 0.0),     # already due: no sleep
    ],
)
def test_scheduler_sleeps_until_next_due_but_never_past_the_poll_interval(next_due, expected):
    assert domain.seconds_until_next_tick(T0, next_due, 1.0) == pytest.approx(expected)


# --- out-of-order and repeated events ---------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        (S.REPORTED, S.WHISTLED, S.WHISTLED),
        (S.SIGNED_FOR, S.DISPATCHED, S.SIGNED_FOR),  # dispatch seen after the sign-for
        (S.WHISTLED, S.REPORTED, S.WHISTLED),        # intake's report after its whistle
        (S.CLOSED, S.RESOLVED, S.CLOSED),
        (S.DISPATCHED, S.DISPATCHED, S.DISPATCHED),  # a co-handler's dispatch
    ],
)
def test_case_status_only_moves_forward(current, incoming, expected):
    assert domain.advance_case(current, incoming) is expected


def test_newest_event_gives_the_facts_the_furthest_gives_the_status():
    current = view(S.DISPATCHED, T0 + timedelta(minutes=5))
    late_report = view(S.REPORTED, T0, priority="minor")
    merged = domain.merge_case(current, late_report)
    assert merged == current  # an older event changes nothing
    raised = view(S.WHISTLED, T0 + timedelta(minutes=9), priority="urgent")
    merged = domain.merge_case(current, raised)
    assert merged.priority == "urgent" and merged.status is S.DISPATCHED
    assert merged.updated_at == T0 + timedelta(minutes=9)


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        (None, A.DISPATCHED, A.DISPATCHED),
        (None, A.SIGNED_FOR, A.SIGNED_FOR),  # the sign-for arrived first
        (A.SIGNED_FOR, A.DISPATCHED, A.SIGNED_FOR),
        (A.DISPATCHED, A.SIGNED_FOR, A.SIGNED_FOR),
        (A.RESOLVED, A.SIGNED_FOR, A.RESOLVED),
        (A.DISPATCHED, A.RESOLVED, A.RESOLVED),
    ],
)
def test_assignment_state_only_moves_forward(current, incoming, expected):
    assert domain.advance_assignment(current, incoming) is expected


def test_a_dispatch_seen_after_its_sign_for_starts_no_clock():
    assert domain.needs_sign_for_clock(domain.advance_assignment(None, A.DISPATCHED))
    assert not domain.needs_sign_for_clock(domain.advance_assignment(A.SIGNED_FOR, A.DISPATCHED))
    assert not domain.needs_sign_for_clock(domain.advance_assignment(A.RESOLVED, A.DISPATCHED))


def test_sign_for_and_resolve_stop_the_clock():
    assert domain.stops_sign_for_clock(A.SIGNED_FOR)
    assert domain.stops_sign_for_clock(A.RESOLVED)
    assert not domain.stops_sign_for_clock(A.DISPATCHED)


@pytest.mark.parametrize(
    ("assignment", "case", "fires"),
    [
        (A.DISPATCHED, S.DISPATCHED, True),
        (A.DISPATCHED, S.SIGNED_FOR, True),  # a co-handler signed; this department did not
        (A.SIGNED_FOR, S.SIGNED_FOR, False),
        (A.RESOLVED, S.RESOLVED, False),
        (A.DISPATCHED, S.CLOSED, False),     # closed cases raise no alerts
    ],
)
def test_a_due_timer_fires_only_while_the_step_is_undone_and_the_case_open(assignment, case, fires):
    assert domain.should_fire(assignment, case) is fires


# --- the overdue board -------------------------------------------------------------------------


def entry(timer_id: int, due_at: datetime, priority: str = "normal") -> OverdueEntry:
    return OverdueEntry(
        timer_id=timer_id, case_id=uuid4(), case_no=f"YA-{timer_id}", area_path="YA/YA01",
        category="E0101", priority=priority, status=S.DISPATCHED, assignment_id=uuid4(),
        department_id="cg", department_name="榆安区城市管理局", clock=Clock.SIGN_FOR,
        due_at=due_at, fired_at=due_at,
    )


def test_board_shows_most_late_first_then_most_urgent_then_oldest_timer():
    a = entry(1, T0 + timedelta(minutes=10))
    b = entry(2, T0)
    c = entry(3, T0, priority="urgent")
    d = entry(4, T0, priority="urgent")
    e = entry(5, T0, priority="minor")
    assert [x.timer_id for x in domain.overdue_board([a, b, c, d, e])] == [3, 4, 2, 5, 1]


def test_lateness_is_never_negative_and_reads_well_in_chinese():
    e = entry(1, T0)
    assert e.late_by(T0 - timedelta(seconds=3)) == timedelta(0)
    assert e.late_by(T0 + timedelta(minutes=7)) == timedelta(minutes=7)
    assert domain.lateness_label(timedelta(seconds=20)) == "超时不足1分钟"
    assert domain.lateness_label(timedelta(minutes=7)) == "超时 7分钟"
    assert domain.lateness_label(timedelta(hours=2, minutes=5)) == "超时 2小时5分"
    assert domain.lateness_label(timedelta(days=3, hours=4, minutes=1)) == "超时 3天4小时"
