"""The pause (挂账/缓办) state machine: asked for after 报到, decided once by a supervisor,
resumed only while it runs; every refusal is a clear 4xx error, Chinese first."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.dispatch.domain import (
    PAUSE_STATE_ZH,
    Assignment,
    AssignmentState,
    PauseEnd,
    PauseRequest,
    PauseState,
    request_pause,
)
from shared.errors import Conflict, Invalid
from shared.contract import AssignmentRole, PauseKind

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def assignment(state: AssignmentState = AssignmentState.SIGNED_FOR, **changes) -> Assignment:
    a = Assignment(
        id=uuid4(),
        case_id=uuid4(),
        case_no="YA20260501-0001",
        department_id="cg",
        department_name="城管执法局",
        role=AssignmentRole.LEAD,
        state=state,
        rule_id=1,
        reason="规则#1",
        area_path="YA/YA01/YA0101/YA0101-01",
        category="E0101",
        priority="normal",
        description="乱堆物料",
        note=None,
        result=None,
        dispatched_at=T0,
        signed_for_at=T0 + timedelta(minutes=5),
        resolved_at=None,
        updated_at=T0,
    )
    return replace(a, **changes)


def ask(
    a: Assignment | None = None,
    kind: str = "hang",
    reason: str = "需列入明年财政预算",
    pending: bool = False,
) -> PauseRequest:
    return request_pause(
        a or assignment(),
        kind,
        reason,
        pending=pending,
        request_id=uuid4(),
        by="cg-duty",
        now=T0 + timedelta(hours=1),
    )


def test_a_department_handling_the_case_asks_for_a_pause_with_a_reason():
    a = assignment()
    p = ask(a, "defer", "  雨季施工不安全  ")
    assert (p.assignment_id, p.case_id, p.department_id) == (a.id, a.case_id, "cg")
    assert (p.kind, p.reason, p.state, p.requested_by) == (
        PauseKind.DEFER,
        "雨季施工不安全",
        PauseState.PENDING,
        "cg-duty",
    )
    assert p.label == "缓办" and ask(a).label == "挂账"
    assert PAUSE_STATE_ZH[p.state] == "待审批"


@pytest.mark.parametrize(
    ("state", "zh"),
    [
        (AssignmentState.DISPATCHED, "须先报到"),
        (AssignmentState.RESOLVED, "已办结"),
        (AssignmentState.REJECTED, "已退单"),
        (AssignmentState.TRANSFERRED, "已转办"),
    ],
)
def test_a_pause_is_asked_for_only_after_sign_for_and_before_the_end(state, zh):
    with pytest.raises(Conflict) as err:
        ask(assignment(state))
    assert err.value.code == "invalid_state" and zh in err.value.zh
    assert err.value.en.startswith(("the department must", "an assignment in state"))


@pytest.mark.parametrize(
    ("kind", "reason", "code"),
    [
        ("hang", "   ", "reason_required"),
        ("freeze", "理由", "invalid_pause"),
        ("defer", "长" * 2001, "invalid_pause"),
    ],
)
def test_bad_pause_input_is_invalid_and_names_the_field(kind, reason, code):
    with pytest.raises(Invalid) as err:
        ask(kind=kind, reason=reason)
    assert err.value.code == code and err.value.zh.startswith(("reason", "kind"))


def test_one_pending_request_at_a_time_and_none_while_paused():
    with pytest.raises(Conflict) as err:
        ask(pending=True)
    assert err.value.code == "pause_pending" and "待审批" in err.value.zh
    paused = assignment(pause_kind="defer", paused_since=T0)
    assert paused.paused and not assignment().paused
    with pytest.raises(Conflict) as err:
        ask(paused)
    assert err.value.code == "already_paused" and "缓办中" in err.value.zh


def test_approve_once_then_resume_once():
    p = ask()
    approved = p.approve("  同意挂账  ", "supervisor", T0 + timedelta(hours=2))
    assert (approved.state, approved.decided_by, approved.comment) == (
        PauseState.APPROVED,
        "supervisor",
        "同意挂账",
    )
    assert p.approve(None, "supervisor", T0).comment is None  # a comment is optional
    for again in (
        lambda: approved.approve(None, "s", T0),
        lambda: approved.refuse("不行", "s", T0),
    ):
        with pytest.raises(Conflict) as err:
            again()
        assert err.value.code == "pause_decided" and "挂账申请已" in err.value.zh
    resumed = approved.resume(" 资金已到位 ", "cg-duty", T0 + timedelta(days=3))
    assert (resumed.state, resumed.ended_how, resumed.ended_by, resumed.end_note) == (
        PauseState.ENDED,
        PauseEnd.RESUMED,
        "cg-duty",
        "资金已到位",
    )
    assert resumed.ended_at == T0 + timedelta(days=3)
    with pytest.raises(Conflict) as err:
        resumed.resume(None, "cg-duty", T0 + timedelta(days=4))
    assert err.value.code == "not_paused" and err.value.zh.startswith("该派单当前没有")


def test_a_refusal_needs_a_comment_and_cannot_be_resumed():
    p = ask()
    for blank in ("", "   "):
        with pytest.raises(Invalid) as err:
            p.refuse(blank, "supervisor", T0)
        assert err.value.code == "comment_required" and err.value.zh.startswith("comment")
    refused = p.refuse("理由不充分", "supervisor", T0 + timedelta(hours=2))
    assert (refused.state, refused.comment) == (PauseState.REFUSED, "理由不充分")
    with pytest.raises(Conflict):
        refused.resume(None, "cg-duty", T0)
    with pytest.raises(Conflict):
        p.resume(None, "cg-duty", T0)  # pending: nothing runs yet


def test_a_running_pause_ends_with_its_assignment():
    running = ask().approve(None, "supervisor", T0)
    ended = running.end(PauseEnd.RESOLVED, "cg-duty", T0 + timedelta(days=1))
    assert (ended.state, ended.ended_how, ended.end_note) == (
        PauseState.ENDED,
        PauseEnd.RESOLVED,
        None,
    )


def test_long_comments_and_notes_are_refused():
    p = ask()
    with pytest.raises(Invalid):
        p.approve("长" * 2001, "supervisor", T0)
    with pytest.raises(Invalid) as err:
        p.approve(None, "supervisor", T0).resume("长" * 2001, "cg-duty", T0)
    assert err.value.zh.startswith("note")
