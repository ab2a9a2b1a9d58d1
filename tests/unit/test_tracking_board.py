"""The boards' pure rules: how late and how close read in Chinese, the live stream's resume
position, and which assignments an urging (督办) reaches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.tracking.domain import AssignmentState as A
from services.tracking.domain import CaseStatus as S
from services.tracking.domain import Clock, board
from services.tracking.domain.board import (
    BoardItem,
    Position,
    UrgeProblem,
    UrgeTarget,
    urge_targets,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def item(due_at: datetime) -> BoardItem:
    return BoardItem(
        case_id=uuid4(),
        case_no="YA-1",
        area_path="YA/YA01",
        category="E0101",
        priority="normal",
        status=S.DISPATCHED,
        assignment_id=uuid4(),
        department_id="cg",
        department_name="榆安区城市管理局",
        clock=Clock.SIGN_FOR,
        started_at=T0 - timedelta(hours=1),
        warn_at=due_at - timedelta(minutes=10),
        due_at=due_at,
        overdue_alerted_at=None,
        escalation_level=None,
        escalation_step=None,
        urge_count=0,
        last_urged_at=None,
    )


def test_lateness_and_time_left_are_never_negative_and_read_well_in_chinese():
    i = item(T0)
    assert i.late_by(T0 - timedelta(seconds=3)) == timedelta(0)
    assert i.late_by(T0 + timedelta(minutes=7)) == timedelta(minutes=7)
    assert i.left(T0 + timedelta(seconds=3)) == timedelta(0)
    assert i.left(T0 - timedelta(minutes=25)) == timedelta(minutes=25)
    assert board.lateness_label(timedelta(seconds=20)) == "超时不足1分钟"
    assert board.lateness_label(timedelta(minutes=7)) == "超时 7分钟"
    assert board.lateness_label(timedelta(hours=2, minutes=5)) == "超时 2小时5分"
    assert board.lateness_label(timedelta(days=3, hours=4, minutes=1)) == "超时 3天4小时"
    assert board.time_left_label(timedelta(minutes=25)) == "剩余 25分钟"
    assert board.time_left_label(timedelta(seconds=59)) == "剩余不足1分钟"


def test_a_position_is_what_the_stream_sent_and_nothing_else():
    assert str(Position(812, 40)) == "812-40"
    assert board.parse_position("812-40") == Position(812, 40)
    assert board.parse_position(" 812-40 ") == Position(812, 40)
    for bad in (
        "",
        "812",
        "812-",
        "-40",
        "a-1",
        "1-2-3",
        "812_40",
        "99999999999999999999-1",
        "9223372036854775808-1",
    ):
        assert board.parse_position(bad) is None, bad


def target(department: str, state: A = A.DISPATCHED, ended: bool = False) -> UrgeTarget:
    return UrgeTarget(uuid4(), department, None, state, ended)


def test_an_urging_reaches_every_open_assignment_or_the_named_departments():
    lead, co = target("cg"), target("zj", A.SIGNED_FOR)
    done, gone = target("gd", A.RESOLVED), target("xf", ended=True)
    every = [lead, co, done, gone]
    assert urge_targets(S.DISPATCHED, every, None) == [lead, co]
    assert urge_targets(S.DISPATCHED, every, "zj") == [co]


@pytest.mark.parametrize(
    ("status", "department", "problem"),
    [
        (S.CLOSED, None, UrgeProblem.CASE_CLOSED),
        (S.CLOSED, "cg", UrgeProblem.CASE_CLOSED),
        (S.DISPATCHED, "rq", UrgeProblem.NOT_ON_CASE),  # never dispatched to rq
        (S.DISPATCHED, "gd", UrgeProblem.NOTHING_OPEN),  # gd resolved its part
        (S.DISPATCHED, "xf", UrgeProblem.NOTHING_OPEN),  # xf rejected or transferred it
    ],
)
def test_an_urging_that_reaches_nobody_says_why(status, department, problem):
    every = [target("gd", A.RESOLVED), target("xf", ended=True)]
    assert urge_targets(status, every, department) is problem
    assert urge_targets(S.RESOLVED, every, None) is UrgeProblem.NOTHING_OPEN
    assert urge_targets(S.REPORTED, [], None) is UrgeProblem.NOTHING_OPEN


def test_a_paused_assignment_is_not_urged_while_its_clock_stands_still():
    lead = UrgeTarget(uuid4(), "cg", None, A.SIGNED_FOR, False, paused=True)
    co = target("zj")
    assert urge_targets(S.DISPATCHED, [lead, co], None) == [co]  # only the one running
    assert urge_targets(S.DISPATCHED, [lead, co], "cg") is UrgeProblem.PAUSED
    assert urge_targets(S.DISPATCHED, [lead], None) is UrgeProblem.PAUSED
    assert (
        urge_targets(S.DISPATCHED, [lead, target("gd", A.RESOLVED)], "gd")
        is UrgeProblem.NOTHING_OPEN
    )
