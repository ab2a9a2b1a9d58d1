"""Tracking's pure rules: clocks, out-of-order events, the overdue board, and who may read
what."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.tracking import domain, handlers
from services.tracking.domain import AssignmentState as A
from services.tracking.domain import CaseStatus as S
from services.tracking.domain import CaseView, Clock, TimerKind
from services.tracking.handlers.timers import alert_event
from services.tracking.repository import AssignmentRow, DueTimer
from shared.auth import Forbidden, Principal, Role
from shared.contract import Actor

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def view(status: S, at: datetime, priority: str = "normal") -> CaseView:
    return CaseView(
        case_no="YA20260302-0001",
        area_path="YA/YA01/YA0101/YA0101-01",
        category="E0101",
        priority=priority,
        status=status,
        updated_at=at,
    )


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
        (None, 1.0),  # nothing pending: poll
        (T0 + timedelta(seconds=0.25), 0.25),  # due before the next poll: wake for it
        (T0 + timedelta(hours=1), 1.0),  # far away: poll (new timers may come)
        (T0 - timedelta(seconds=5), 0.0),  # already due: no sleep
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
        (S.WHISTLED, S.REPORTED, S.WHISTLED),  # intake's report after its whistle
        (S.CLOSED, S.RESOLVED, S.CLOSED),
        (S.DISPATCHED, S.DISPATCHED, S.DISPATCHED),  # a co-handler's dispatch
    ],
)
def test_a_late_event_never_rewinds_the_status(current, incoming, expected):
    # ``incoming`` happened before ``current`` was set (a late, out-of-order event) or at
    # the same moment: the loop's order breaks the tie.
    assert domain.advance_case(current, T0, incoming, T0 - timedelta(seconds=1)) is current
    assert domain.advance_case(current, T0, incoming, T0) is expected


def test_a_newer_event_loops_the_case_back():
    later = T0 + timedelta(minutes=1)
    assert domain.advance_case(S.RESOLVED, T0, S.REWORK, later) is S.REWORK
    assert domain.advance_case(S.CLOSED, T0, S.REOPENED, later) is S.REOPENED
    assert domain.advance_case(S.REWORK, T0, S.DISPATCHED, later) is S.DISPATCHED


def test_newest_event_gives_the_facts_and_the_status():
    current = view(S.DISPATCHED, T0 + timedelta(minutes=5))
    late_report = view(S.REPORTED, T0, priority="minor")
    merged = domain.merge_case(current, late_report)
    assert merged == current  # an older event changes nothing
    # A reopened case is whistled again, more urgently: newer facts and status win.
    reopened = domain.merge_case(current, view(S.REOPENED, T0 + timedelta(minutes=7)))
    raised = view(S.WHISTLED, T0 + timedelta(minutes=9), priority="urgent")
    merged = domain.merge_case(reopened, raised)
    assert merged.priority == "urgent" and merged.status is S.WHISTLED
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


def test_a_dispatch_seen_after_its_sign_for_starts_no_sign_for_clock():
    advance, start = domain.advance_assignment, domain.clocks_to_start
    assert start(advance(None, A.DISPATCHED), False) == tuple(Clock)
    assert start(advance(A.SIGNED_FOR, A.DISPATCHED), False) == (Clock.ON_SITE, Clock.RESOLVE)
    assert start(advance(A.RESOLVED, A.DISPATCHED), False) == ()
    assert start(A.DISPATCHED, True) == ()  # the assignment ended (rejected, transferred)


def test_sign_for_and_resolve_stop_the_sign_for_clock():
    from shared.contract import CaseProgressed, CaseResolved, CaseSignedFor

    assert domain.CLOCKS_STOPPED_BY[CaseSignedFor] == (Clock.SIGN_FOR,)
    assert Clock.SIGN_FOR in domain.CLOCKS_STOPPED_BY[CaseResolved]
    assert Clock.SIGN_FOR not in domain.CLOCKS_STOPPED_BY[CaseProgressed]


DUE = datetime(2026, 3, 2, 9, tzinfo=UTC)


def timer(clock: Clock = Clock.SIGN_FOR, **change) -> domain.TimerFacts:
    facts = domain.TimerFacts(
        clock=clock,
        kind=TimerKind.DEADLINE,
        revision=1,
        clock_running=True,
        clock_revision=1,
        clock_due_at=DUE,
        assignment=A.DISPATCHED,
        ended=False,
        case=S.DISPATCHED,
    )
    return replace(facts, **change)


@pytest.mark.parametrize(
    ("facts", "fires"),
    [
        (timer(), True),
        (timer(case=S.SIGNED_FOR), True),  # a co-handler signed; this department did not
        (timer(assignment=A.SIGNED_FOR, case=S.SIGNED_FOR), False),
        (timer(Clock.RESOLVE, assignment=A.SIGNED_FOR), True),  # signed, not resolved
        (timer(Clock.RESOLVE, assignment=A.RESOLVED, case=S.RESOLVED), False),
        (timer(case=S.CLOSED), False),  # closed cases raise no alerts
        (timer(ended=True), False),  # rejected or transferred away
        (timer(clock_running=False), False),  # stopped (or paused)
        (timer(revision=1, clock_revision=2), False),  # extended since: a moot timer
        (timer(kind=TimerKind.WARNING), True),
        (timer(kind=TimerKind.WARNING, clock_due_at=DUE - timedelta(seconds=1)), False),
    ],
)
def test_a_due_timer_fires_only_while_its_clock_runs_the_step_is_undone_and_the_case_open(
    facts, fires
):
    assert domain.timer_fires(facts, DUE) is fires


# --- who may read what (handlers' pure checks, ahead of any query) ------------------------------

CASE_AREA = "YA/YA01/YA0101/YA0101-01"


def who(role: Role, area: str = "YA", **kwargs) -> Principal:
    return Principal(
        subject=f"u-{role.value}", name=f"用户{role.value}", role=role, area=area, **kwargs
    )


def assignment(department_id: str, state: A = A.DISPATCHED) -> AssignmentRow:
    return AssignmentRow(
        assignment_id=uuid4(),
        case_id=uuid4(),
        department_id=department_id,
        department_name=None,
        role="lead",
        state=state,
    )


@pytest.mark.parametrize(
    "reader",
    [
        who(Role.GRID_WORKER, CASE_AREA),
        who(
            Role.GRID_WORKER,
            "YA/YA01/YA0101/YA0101-02",
            grids=("YA/YA01/YA0101/YA0101-02", CASE_AREA),
        ),
        who(Role.COMMUNITY, "YA/YA01/YA0101"),
        who(Role.STREET, "YA/YA01"),
        who(Role.DISTRICT, "YA"),
        who(Role.SUPERVISOR, "YA/YA01"),
    ],
    ids=["own grid", "one of his grids", "community", "street", "district", "supervisor"],
)
def test_the_case_area_and_those_above_it_read_its_timeline(reader):
    handlers.require_case_reader(reader, view(S.DISPATCHED, T0), [])


@pytest.mark.parametrize(
    "reader",
    [
        who(Role.GRID_WORKER, "YA/YA01/YA0101/YA0101-02"),
        who(Role.COMMUNITY, "YA/YA02/YA0201"),
        who(Role.STREET, "YA/YA03"),
        who(Role.STREET, "YA/YA0"),  # a string prefix is not a parent
        who(Role.COMMUNITY, f"{CASE_AREA}/x"),  # below the case is not above it
        who(Role.SUPERVISOR, "YA/YA02"),
    ],
    ids=[
        "other grid",
        "other community",
        "other street",
        "string prefix",
        "below",
        "other supervisor",
    ],
)
def test_others_are_refused_with_the_reason(reader):
    with pytest.raises(Forbidden) as refused:
        handlers.require_case_reader(reader, view(S.DISPATCHED, T0), [])
    assert refused.value.code == "out_of_scope"
    assert CASE_AREA in refused.value.message("zh") and CASE_AREA in refused.value.message("en")


def test_a_department_reads_only_cases_it_has_an_assignment_on():
    cg = who(Role.DEPARTMENT, department_id="cg")
    case = view(S.RESOLVED, T0)
    handlers.require_case_reader(cg, case, [assignment("zj"), assignment("cg", A.RESOLVED)])
    for others in ([], [assignment("zj")]):
        with pytest.raises(Forbidden) as refused:
            handlers.require_case_reader(cg, case, others)
        assert refused.value.code == "not_your_case"
        assert "派单" in refused.value.message("zh")


@pytest.mark.parametrize(
    ("reader", "area", "department_id", "scope"),
    [
        (who(Role.COMMUNITY, "YA/YA01/YA0101"), None, None, (("YA/YA01/YA0101",), None)),
        (who(Role.STREET, "YA/YA01"), "YA/YA01/YA0102", "cg", (("YA/YA01/YA0102",), "cg")),
        (who(Role.STREET, "YA/YA01"), "YA/YA01", None, (("YA/YA01",), None)),
        (who(Role.DISTRICT, "YA"), None, "zj", (("YA",), "zj")),
        (who(Role.SUPERVISOR, "YA/YA03"), None, None, (("YA/YA03",), None)),
        # department staff: their own department, anywhere, optionally narrowed by area
        (who(Role.DEPARTMENT, department_id="cg"), None, None, (None, "cg")),
        (who(Role.DEPARTMENT, department_id="cg"), None, "cg", (None, "cg")),
        (who(Role.DEPARTMENT, department_id="cg"), "YA/YA02", None, (("YA/YA02",), "cg")),
    ],
)
def test_the_board_is_the_callers_part_narrowed_by_the_filters(reader, area, department_id, scope):
    assert handlers.board_scope(reader, area=area, department_id=department_id) == scope


@pytest.mark.parametrize(
    ("reader", "area", "department_id", "code"),
    [
        (who(Role.COMMUNITY, "YA/YA01/YA0101"), "YA/YA02", None, "out_of_scope"),
        (who(Role.COMMUNITY, "YA/YA01/YA0101"), "YA/YA01", None, "out_of_scope"),  # above
        (who(Role.STREET, "YA/YA01"), "YA/YA0", None, "out_of_scope"),
        (who(Role.SUPERVISOR, "YA/YA01"), "YA", None, "out_of_scope"),
        (who(Role.DEPARTMENT, department_id="cg"), None, "zj", "not_your_department"),
    ],
)
def test_a_board_filter_outside_the_callers_part_is_refused(reader, area, department_id, code):
    with pytest.raises(Forbidden) as refused:
        handlers.board_scope(reader, area=area, department_id=department_id)
    assert refused.value.code == code


def test_overdue_alerts_are_attributed_to_the_deadline_watch():
    timer = DueTimer(
        id=1,
        case_id=uuid4(),
        assignment_id=uuid4(),
        clock=Clock.SIGN_FOR,
        due_at=T0,
        correlation_id="corr-1",
        causation_id=uuid4(),
        department_id="cg",
        department_name="榆安区城市管理局",
        assignment_state=A.DISPATCHED,
        case=view(S.DISPATCHED, T0),
    )
    alert = alert_event(timer, T0 + timedelta(minutes=1))
    assert alert.type == "case.overdue"
    assert alert.actor == Actor(subject="system:tracking", role="system", name="时限监控")
    assert (alert.correlation_id, alert.causation_id) == ("corr-1", timer.causation_id)
    # a warning and an escalation are attributed alike, about the clock's deadline
    later = T0 + timedelta(hours=2)
    warning = alert_event(
        replace(timer, kind=TimerKind.WARNING, due_at=T0 - timedelta(minutes=6), clock_due_at=T0),
        T0,
    )
    assert (warning.type, warning.payload.due_at) == ("case.deadline_warning", T0)
    escalated = alert_event(
        replace(
            timer, kind=TimerKind.ESCALATION, step=1, level="street", due_at=later, clock_due_at=T0
        ),
        later,
    )
    assert escalated.type == "case.escalated"
    assert (escalated.payload.level, escalated.payload.step, escalated.payload.due_at) == (
        "street",
        1,
        T0,
    )
    assert escalated.actor == alert.actor and escalated.correlation_id == "corr-1"
