"""Dispatch's domain: routing (派单) and the assignment state machine (报到 → 办结)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.dispatch.domain import (
    Assignment,
    KIND_ZH,
    AssignmentState,
    Contact,
    Department,
    DepartmentKind,
    Role,
    RoutingRule,
    covers,
    most_specific_rule,
    new_department,
    route,
)
from services.dispatch.handlers import require_reader
from shared import demo
from shared.auth import Forbidden, Principal
from shared.auth import Role as AuthRole
from shared.errors import Conflict, Invalid

DEPARTMENTS = {d: Department(d, name, kind) for d, name, kind in demo.DEPARTMENTS}
RULES = [RoutingRule(i, c, p, d) for i, (c, p, d) in enumerate(demo.ROUTING_RULES, start=1)]
GRID_YA0101 = "YA/YA01/YA0101/YA0101-01"
GRID_YA0201 = "YA/YA02/YA0201/YA0201-03"
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def decide(category: str, area_path: str, named: list[str] | None = None,
           rules: list[RoutingRule] | None = None):
    return route(category=category, area_path=area_path, rules=RULES if rules is None else rules,
                 named=named or [], departments=DEPARTMENTS)


# --- area matching ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("YA", "YA", True),
        ("YA", GRID_YA0101, True),
        ("YA/YA01", GRID_YA0101, True),
        (GRID_YA0101, GRID_YA0101, True),
        ("YA/YA0", GRID_YA0101, False),           # a string prefix, not an ancestor
        ("YA/YA01/YA0101/YA0101-0", GRID_YA0101, False),
        ("YA/YA02", GRID_YA0101, False),
        ("YAX", "YA", False),
        (GRID_YA0101, "YA/YA01", False),          # a descendant does not cover its parent
    ],
)
def test_covers_only_the_area_and_its_descendants(prefix, path, expected):
    assert covers(prefix, path) is expected


def test_most_specific_rule_wins_whatever_the_order():
    rules = [
        RoutingRule(1, "E0101", "YA", "cg"),
        RoutingRule(2, "E0101", "YA/YA01/YA0101", "wy-jx"),
        RoutingRule(3, "E0101", "YA/YA01", "zj"),
    ]
    for ordering in (rules, rules[::-1]):
        assert most_specific_rule(ordering, GRID_YA0101).id == 2
    assert most_specific_rule(rules, "YA/YA01/YA0102/YA0102-01").id == 3
    assert most_specific_rule(rules, "YA/YA03/YA0301/YA0301-01").id == 1
    assert most_specific_rule(rules, "XB/XB01") is None


# --- routing -----------------------------------------------------------------------------


def test_rule_routes_to_the_lead_department_with_a_reason_naming_the_rule():
    decision = decide("E0101", GRID_YA0101)
    assert decision.routable
    (only,) = decision.routes
    rule = next(r for r in RULES if r.category_code == "E0101" and r.area_prefix == "YA")
    assert (only.department_id, only.role, only.rule_id) == ("cg", Role.LEAD, rule.id)
    assert only.department_name == "榆安区城市管理局"
    assert only.reason == f"规则#{rule.id}：分类E0101在YA范围内由榆安区城市管理局主办"


def test_property_company_rule_beats_the_district_rule():
    inside = decide("E0103", GRID_YA0201).routes[0]
    outside = decide("E0103", "YA/YA02/YA0202/YA0202-01").routes[0]
    assert inside.department_id == "wy-jx"
    assert "YA/YA02/YA0201范围内由锦绣物业公司主办" in inside.reason
    assert outside.department_id == "zj"


def test_only_rules_of_the_case_category_count():
    rules = [RoutingRule(9, "E0102", GRID_YA0101, "wy-jx"), RoutingRule(1, "E0101", "YA", "cg")]
    assert decide("E0101", GRID_YA0101, rules=rules).routes[0].rule_id == 1


def test_named_departments_take_precedence_first_leads_others_co_handle():
    decision = decide("E0101", GRID_YA0101, named=["zj", "cg", "zj", "xf"])
    assert [(r.department_id, r.role, r.rule_id) for r in decision.routes] == [
        ("zj", Role.LEAD, None), ("cg", Role.CO, None), ("xf", Role.CO, None),
    ]
    assert decision.routes[0].reason == "社区吹哨点名：由榆安区住房和城乡建设局主办"
    assert "榆安区城市管理局协办" in decision.routes[1].reason
    assert "榆安区住房和城乡建设局主办" in decision.routes[1].reason


def test_unknown_named_departments_are_ignored_with_a_note():
    decision = decide("E0101", GRID_YA0101, named=["nope", "cg"])
    assert [(r.department_id, r.role) for r in decision.routes] == [("cg", Role.LEAD)]
    assert "点名部门“nope”不存在，已忽略" in decision.routes[0].reason


def test_only_unknown_named_departments_fall_back_to_the_rules_keeping_the_note():
    decision = decide("E0101", GRID_YA0101, named=["nope"])
    (only,) = decision.routes
    assert only.department_id == "cg" and only.rule_id is not None
    assert only.reason.startswith("规则#") and "点名部门“nope”不存在，已忽略" in only.reason


@pytest.mark.parametrize(
    ("category", "area_path"),
    [("E0101", "XB/XB01/XB0101/XB0101-01"), ("C01", GRID_YA0101), ("Z9999", GRID_YA0101)],
)
def test_no_rule_no_named_department_is_unroutable_with_a_reason(category, area_path):
    decision = decide(category, area_path, named=["ghost"])
    assert not decision.routable and decision.routes == ()
    assert decision.reason.startswith(f"分类{category}在{area_path}范围内没有匹配的派单规则")
    assert "待人工派单" in decision.reason and "点名部门“ghost”不存在" in decision.reason


# --- the assignment state machine --------------------------------------------------------


def dispatched(department_id: str = "cg") -> Assignment:
    return Assignment(
        id=uuid4(), case_id=uuid4(), case_no="YA20260501-0001", department_id=department_id,
        department_name=DEPARTMENTS[department_id].name, role=Role.LEAD,
        state=AssignmentState.DISPATCHED, rule_id=1, reason="规则#1", area_path=GRID_YA0101,
        category="E0101", priority="normal", description="乱堆物料", note=None, result=None,
        dispatched_at=T0, signed_for_at=None, resolved_at=None, updated_at=T0,
    )


def test_sign_for_then_resolve():
    a = dispatched()
    signed = a.sign_for(T0 + timedelta(minutes=5))
    assert signed.state is AssignmentState.SIGNED_FOR
    assert signed.signed_for_at == signed.updated_at == T0 + timedelta(minutes=5)
    assert a.state is AssignmentState.DISPATCHED  # the original is untouched
    done = signed.resolve("  已清运完毕  ", T0 + timedelta(hours=2))
    assert done.state is AssignmentState.RESOLVED
    assert done.result == "已清运完毕"
    assert done.resolved_at == T0 + timedelta(hours=2)


def test_resolve_before_sign_for_is_a_conflict():
    with pytest.raises(Conflict) as err:
        dispatched().resolve("已处理", T0)
    assert err.value.status_code == 409 and err.value.code == "invalid_state"
    assert "须先报到" in err.value.zh


def test_sign_for_twice_and_resolve_twice_are_conflicts():
    signed = dispatched().sign_for(T0)
    with pytest.raises(Conflict, match="cannot be signed for"):
        signed.sign_for(T0)
    done = signed.resolve("已处理", T0)
    for act in (lambda: done.resolve("再次", T0), lambda: done.sign_for(T0)):
        with pytest.raises(Conflict) as err:
            act()
        assert err.value.code == "invalid_state"


# --- who may read an assignment (the scope rule the handlers apply) ----------------------


def principal(role: AuthRole, area: str = "YA", department_id: str | None = None) -> Principal:
    return Principal(subject=f"u-{role.value}", name="测试", role=role, area=area,
                     department_id=department_id)


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (principal(AuthRole.DEPARTMENT, department_id="cg"), True),
        (principal(AuthRole.DEPARTMENT, department_id="zj"), False),   # another department
        (principal(AuthRole.COMMUNITY, "YA/YA01/YA0101"), True),
        (principal(AuthRole.COMMUNITY, "YA/YA02/YA0201"), False),       # another community
        (principal(AuthRole.COMMUNITY, "YA/YA01/YA010"), False),        # a prefix, not a parent
        (principal(AuthRole.STREET, "YA/YA01"), True),
        (principal(AuthRole.STREET, "YA/YA03"), False),
        (principal(AuthRole.DISTRICT, "YA"), True),
        (principal(AuthRole.SUPERVISOR, "YA/YA01"), True),
        (principal(AuthRole.SUPERVISOR, "YA/YA04"), False),
    ],
)
def test_the_assigned_department_or_an_area_holder_above_the_case_may_read(who, allowed):
    a = dispatched("cg")  # in GRID_YA0101
    if allowed:
        require_reader(who, a)
    else:
        with pytest.raises(Forbidden) as err:
            require_reader(who, a)
        assert err.value.status_code == 403
        assert err.value.code in ("not_your_assignment", "out_of_scope")


@pytest.mark.parametrize("result", ["", "   ", "\n\t"])
def test_resolve_needs_a_result(result):
    signed = dispatched().sign_for(T0)
    with pytest.raises(Invalid) as err:
        signed.resolve(result, T0)
    assert err.value.status_code == 422 and err.value.code == "result_required"



# --- 退单: re-routing without the departments that rejected ----------------------------


def test_exclude_skips_the_rejecting_departments_rule_and_the_next_specific_one_decides():
    # E0103 in 锦绣社区: the property company (wy-jx) first; once it rejected, 住建局 (zj).
    first = decide("E0103", GRID_YA0201)
    assert first.routes[0].department_id == "wy-jx"
    nxt = route(category="E0103", area_path=GRID_YA0201, rules=RULES, named=[],
                departments=DEPARTMENTS, exclude={"wy-jx"})
    (only,) = nxt.routes
    assert (only.department_id, only.role) == ("zj", Role.LEAD)
    assert only.rule_id == next(r.id for r in RULES if (r.category_code, r.area_prefix)
                                == ("E0103", "YA"))


def test_excluding_every_candidate_is_unroutable_naming_the_rejections():
    d = route(category="E0103", area_path=GRID_YA0201, rules=RULES, named=[],
              departments=DEPARTMENTS, exclude=["wy-jx", "zj"])
    assert not d.routable
    assert "已退单" in d.reason and "wy-jx" in d.reason and "zj" in d.reason
    assert "待人工派单" in d.reason


def test_excluded_named_departments_are_dropped_with_a_note():
    d = route(category="E0101", area_path=GRID_YA0101, rules=RULES, named=["xf", "cg"],
              departments=DEPARTMENTS, exclude={"xf"})
    assert [(r.department_id, r.role) for r in d.routes] == [("cg", Role.LEAD)]
    assert "xf" in d.reason and "已退单" in d.reason
    # All named ones rejected: the rules decide, still without the rejecting ones.
    d = route(category="E0101", area_path=GRID_YA0101, rules=RULES, named=["cg"],
              departments=DEPARTMENTS, exclude={"cg"})
    assert not d.routable


def test_exclude_empty_changes_nothing():
    assert route(category="E0103", area_path=GRID_YA0201, rules=RULES, named=[],
                 departments=DEPARTMENTS, exclude=()) == decide("E0103", GRID_YA0201)


# --- 退单, 转办, 办理进展 ---------------------------------------------------------------


def test_reject_before_sign_for_with_a_reason():
    a = dispatched().reject("  不属于本部门职责  ", T0)
    assert a.state is AssignmentState.REJECTED
    assert (a.exit_reason, a.exited_at, a.updated_at) == ("不属于本部门职责", T0, T0)


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_reject_needs_a_reason(reason):
    with pytest.raises(Invalid) as e:
        dispatched().reject(reason, T0)
    assert e.value.code == "reason_required"


def test_reject_after_sign_for_or_in_a_terminal_state_is_a_conflict():
    signed = dispatched().sign_for(T0)
    with pytest.raises(Conflict, match="transfer it instead"):
        signed.reject("不是我们的", T0)
    for done in (signed.resolve("已办", T0), dispatched().reject("x", T0),
                 dispatched().transfer("zj", "x", T0)):
        with pytest.raises(Conflict):
            done.reject("不是我们的", T0)


@pytest.mark.parametrize("signed", [False, True])
def test_transfer_while_dispatched_or_signed_for(signed):
    a = dispatched()
    if signed:
        a = a.sign_for(T0)
    t = a.transfer("zj", " 属住建局职责 ", T0 + timedelta(minutes=5))
    assert (t.state, t.transferred_to, t.exit_reason) == (
        AssignmentState.TRANSFERRED, "zj", "属住建局职责")


def test_transfer_refusals():
    with pytest.raises(Invalid) as e:
        dispatched("cg").transfer("cg", "转给自己", T0)
    assert e.value.code == "transfer_to_self"
    with pytest.raises(Invalid) as e:
        dispatched().transfer("zj", "  ", T0)
    assert e.value.code == "reason_required"
    for done in (dispatched().sign_for(T0).resolve("已办", T0), dispatched().reject("x", T0),
                 dispatched().transfer("zj", "x", T0)):
        with pytest.raises(Conflict):
            done.transfer("xf", "再转", T0)


def test_progress_only_while_signed_for_and_needs_a_note():
    a = dispatched()
    with pytest.raises(Conflict):
        a.progress("已到现场", T0)
    signed = a.sign_for(T0)
    later = T0 + timedelta(hours=1)
    after, note = signed.progress("  已到现场勘查  ", later)
    assert (after.state, after.updated_at, note) == (AssignmentState.SIGNED_FOR, later,
                                                     "已到现场勘查")
    with pytest.raises(Invalid) as e:
        signed.progress(" ", later)
    assert e.value.code == "note_required"
    for done in (signed.resolve("已办", T0), dispatched().reject("x", T0)):
        with pytest.raises(Conflict):
            done.progress("进展", T0)


# --- departments (admin API validation) ----------------------------------------------------

CONTACT = ("赵建国", "0351-4012301", "值班领导")


def test_a_department_is_checked_and_trimmed():
    d = new_department("jd-yz", " 迎泽街道办事处 ", "street_office", ["YA/YA01", "YA/YA01"],
                       [(" 韩晓东 ", "0351-4091001", " 值班领导 "), ("杨玉兰", "+86-351-4091002", "")])
    assert d == Department("jd-yz", "迎泽街道办事处", "street_office", ("YA/YA01",),
                           (Contact("韩晓东", "0351-4091001", "值班领导"),
                            Contact("杨玉兰", "+86-351-4091002", None)))


@pytest.mark.parametrize("kind", ["functional", "street_office", "co_building", "property",
                                  "volunteer"])
def test_every_kind_is_allowed_and_has_a_chinese_label(kind):
    assert new_department("x", "某单位", kind, ["YA"], []).kind == kind
    assert KIND_ZH[DepartmentKind(kind)]


@pytest.mark.parametrize(("args", "field"), [
    (("bad id!", "某单位", "functional", ["YA"], []), "id"),
    (("", "某单位", "functional", ["YA"], []), "id"),
    (("x", "  ", "functional", ["YA"], []), "name"),
    (("x", "某" * 101, "functional", ["YA"], []), "name"),
    (("x", "某单位", "mayor", ["YA"], []), "kind"),
    (("x", "某单位", "Functional", ["YA"], []), "kind"),
    (("x", "某单位", "functional", [], []), "areas"),
    (("x", "某单位", "functional", ["YA/"], []), "areas[0]"),
    (("x", "某单位", "functional", ["YA", "/YA01"], []), "areas[1]"),
    (("x", "某单位", "functional", ["YA//YA01"], []), "areas[0]"),
    (("x", "某单位", "functional", ["YA/YA 01"], []), "areas[0]"),
    (("x", "某单位", "functional", ["YA/YA_01"], []), "areas[0]"),
    (("x", "某单位", "functional", ["YA"] * 51, []), "areas"),
    (("x", "某单位", "functional", ["YA"], [("", "0351-4012301", None)]), "contacts[0].name"),
    (("x", "某单位", "functional", ["YA"], [CONTACT, ("李梅", "1234", None)]),
     "contacts[1].phone"),
    (("x", "某单位", "functional", ["YA"], [("李梅", "0351 4012301", None)]), "contacts[0].phone"),
    (("x", "某单位", "functional", ["YA"], [("李梅", "0" * 21, None)]), "contacts[0].phone"),
    (("x", "某单位", "functional", ["YA"], [("李梅", "-----", None)]), "contacts[0].phone"),
    (("x", "某单位", "functional", ["YA"], [("李梅", "电话0351", None)]), "contacts[0].phone"),
    (("x", "某单位", "functional", ["YA"], [("李梅", "0351-4012301", "长" * 33)]),
     "contacts[0].role"),
    (("x", "某单位", "functional", ["YA"], [CONTACT] * 21), "contacts"),
])
def test_bad_department_input_is_invalid_and_names_the_field(args, field):
    with pytest.raises(Invalid) as e:
        new_department(*args)
    assert e.value.zh.startswith(f"{field}：") and e.value.en.startswith(f"{field}: ")
    assert e.value.status_code == 422


def test_area_paths_and_phones_at_their_limits_are_accepted():
    d = new_department("A_b-1", "某单位", "volunteer", ["YA", "YA/YA01/YA0101-03", "a-B/9"],
                       [("李梅", "12345", None), ("王芳", "+" + "1" * 19, None)])
    assert d.areas == ("YA", "YA/YA01/YA0101-03", "a-B/9") and len(d.contacts) == 2
