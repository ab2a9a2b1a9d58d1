"""Dispatch's domain: routing (派单) and the assignment state machine (报到 → 办结)."""

from __future__ import annotations

from dataclasses import replace
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
    LiaisonUnits,
    ExtensionState,
    RoutingRule,
    check_rule,
    default_kind,
    lineage,
    most_specific_rule,
    new_department,
    request_extension,
    route,
)
from services.dispatch import demo as dispatch_demo
from services.dispatch.handlers import require_reader
from shared import demo
from shared.auth import Forbidden, Principal
from shared.auth import Role as AuthRole
from shared.contract import AssignmentRole, DispatchBasis, areas
from shared.errors import Conflict, Invalid

DEPARTMENTS = {d.id: d for d in dispatch_demo.departments()}
RULES = [replace(r, id=i) for i, r in enumerate(dispatch_demo.rules(), start=1)]
CATALOGUE = {c.code: c for c in dispatch_demo.categories()}
LIAISON = [LiaisonUnits(area, units) for area, units in demo.LIAISON_UNITS]
GRID_YA0101 = "YA/YA01/YA0101/YA0101-01"
GRID_YA0201 = "YA/YA02/YA0201/YA0201-03"
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def decide(
    category: str,
    area_path: str,
    named: list[str] | None = None,
    rules: list[RoutingRule] | None = None,
    **more,
):
    """Route as the handlers do, with the demo catalogue, departments and liaison units."""
    return route(
        category=category,
        area_path=area_path,
        rules=RULES if rules is None else rules,
        named=named or [],
        departments=DEPARTMENTS,
        lineage=lineage(category, CATALOGUE),
        default_kind=default_kind(category, CATALOGUE),
        liaison=more.pop("liaison", LIAISON),
        **more,
    )


# --- area matching ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("YA", "YA", True),
        ("YA", GRID_YA0101, True),
        ("YA/YA01", GRID_YA0101, True),
        (GRID_YA0101, GRID_YA0101, True),
        ("YA/YA0", GRID_YA0101, False),  # a string prefix, not an ancestor
        ("YA/YA01/YA0101/YA0101-0", GRID_YA0101, False),
        ("YA/YA02", GRID_YA0101, False),
        ("YAX", "YA", False),
        (GRID_YA0101, "YA/YA01", False),  # a descendant does not cover its parent
    ],
)
def test_a_prefix_covers_only_the_area_and_its_descendants(prefix, path, expected):
    assert areas.within(path, prefix) is expected


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
    assert (only.department_id, only.role, only.rule_id) == ("cg", AssignmentRole.LEAD, rule.id)
    assert only.department_name == "榆安区城市管理局"
    assert only.reason == f"规则#{rule.id}：分类E0101在YA范围内由榆安区城市管理局主办"


def test_the_compounds_property_company_beats_the_district_rule():
    inside = decide("E0103", GRID_YA0201).routes[0]
    outside = decide("E0103", "YA/YA02/YA0202/YA0202-01").routes[0]
    assert (inside.department_id, inside.basis, inside.rule_id) == (
        "wy-jx",
        DispatchBasis.AREA_DEFAULT,
        None,
    )
    assert inside.reason == (
        "分类E0103默认由物业企业负责：案件位于锦绣物业公司服务的区域（YA/YA02/YA0201），由其主办"
    )
    assert (outside.department_id, outside.basis) == ("zj", DispatchBasis.RULE)


def test_only_rules_of_the_case_category_count():
    rules = [RoutingRule(9, "E0102", GRID_YA0101, "wy-jx"), RoutingRule(1, "E0101", "YA", "cg")]
    assert decide("E0101", GRID_YA0101, rules=rules).routes[0].rule_id == 1


def test_named_departments_take_precedence_first_leads_others_co_handle():
    decision = decide("E0101", GRID_YA0101, named=["zj", "cg", "zj", "xf"])
    assert [(r.department_id, r.role, r.rule_id) for r in decision.routes] == [
        ("zj", AssignmentRole.LEAD, None),
        ("cg", AssignmentRole.CO, None),
        ("xf", AssignmentRole.CO, None),
    ]
    assert decision.routes[0].reason == "社区吹哨点名：由榆安区住房和城乡建设局主办"
    assert "榆安区城市管理局协办" in decision.routes[1].reason
    assert "榆安区住房和城乡建设局主办" in decision.routes[1].reason


def test_unknown_named_departments_are_ignored_with_a_note():
    decision = decide("E0101", GRID_YA0101, named=["nope", "cg"])
    assert [(r.department_id, r.role) for r in decision.routes] == [("cg", AssignmentRole.LEAD)]
    assert "点名部门“nope”不存在，已忽略" in decision.routes[0].reason


def test_only_unknown_named_departments_fall_back_to_the_rules_keeping_the_note():
    decision = decide("E0101", GRID_YA0101, named=["nope"])
    (only,) = decision.routes
    assert only.department_id == "cg" and only.rule_id is not None
    assert only.reason.startswith("规则#") and "点名部门“nope”不存在，已忽略" in only.reason


@pytest.mark.parametrize(
    ("category", "area_path"),
    [
        ("E0101", "XB/XB01/XB0101/XB0101-01"),
        ("E0501", "YA/YA04/YA0401/YA0401-01"),
        ("Z9999", "YA/YA04/YA0401/YA0401-01"),
    ],
)
def test_no_rule_no_named_department_is_unroutable_with_a_reason(category, area_path):
    decision = decide(category, area_path, named=["ghost"])
    assert not decision.routable and decision.routes == ()
    assert decision.reason.startswith(f"分类{category}在{area_path}范围内没有匹配的派单规则")
    assert "待人工派单" in decision.reason and "点名部门“ghost”不存在" in decision.reason


# --- the assignment state machine --------------------------------------------------------


def dispatched(department_id: str = "cg") -> Assignment:
    return Assignment(
        id=uuid4(),
        case_id=uuid4(),
        case_no="YA20260501-0001",
        department_id=department_id,
        department_name=DEPARTMENTS[department_id].name,
        role=AssignmentRole.LEAD,
        state=AssignmentState.DISPATCHED,
        rule_id=1,
        reason="规则#1",
        area_path=GRID_YA0101,
        category="E0101",
        priority="normal",
        description="乱堆物料",
        note=None,
        result=None,
        dispatched_at=T0,
        signed_for_at=None,
        resolved_at=None,
        updated_at=T0,
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
    return Principal(
        subject=f"u-{role.value}", name="测试", role=role, area=area, department_id=department_id
    )


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (principal(AuthRole.DEPARTMENT, department_id="cg"), True),
        (principal(AuthRole.DEPARTMENT, department_id="zj"), False),  # another department
        (principal(AuthRole.COMMUNITY, "YA/YA01/YA0101"), True),
        (principal(AuthRole.COMMUNITY, "YA/YA02/YA0201"), False),  # another community
        (principal(AuthRole.COMMUNITY, "YA/YA01/YA010"), False),  # a prefix, not a parent
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
    nxt = route(
        category="E0103",
        area_path=GRID_YA0201,
        rules=RULES,
        named=[],
        departments=DEPARTMENTS,
        exclude={"wy-jx"},
    )
    (only,) = nxt.routes
    assert (only.department_id, only.role) == ("zj", AssignmentRole.LEAD)
    assert only.rule_id == next(
        r.id for r in RULES if (r.category_code, r.area_prefix) == ("E0103", "YA")
    )


def test_excluding_every_candidate_is_unroutable_naming_the_rejections():
    d = route(
        category="E0103",
        area_path=GRID_YA0201,
        rules=RULES,
        named=[],
        departments=DEPARTMENTS,
        exclude=["wy-jx", "zj"],
    )
    assert not d.routable
    assert "已退单" in d.reason and "wy-jx" in d.reason and "zj" in d.reason
    assert "待人工派单" in d.reason


def test_excluded_named_departments_are_dropped_with_a_note():
    d = route(
        category="E0101",
        area_path=GRID_YA0101,
        rules=RULES,
        named=["xf", "cg"],
        departments=DEPARTMENTS,
        exclude={"xf"},
    )
    assert [(r.department_id, r.role) for r in d.routes] == [("cg", AssignmentRole.LEAD)]
    assert "xf" in d.reason and "已退单" in d.reason
    # All named ones rejected: the rules decide, still without the rejecting ones.
    d = route(
        category="E0101",
        area_path=GRID_YA0101,
        rules=RULES,
        named=["cg"],
        departments=DEPARTMENTS,
        exclude={"cg"},
    )
    assert not d.routable


def test_exclude_empty_changes_nothing():
    assert decide("E0103", GRID_YA0201, exclude=()) == decide("E0103", GRID_YA0201)


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
    for done in (
        signed.resolve("已办", T0),
        dispatched().reject("x", T0),
        dispatched().transfer("zj", "x", T0),
    ):
        with pytest.raises(Conflict):
            done.reject("不是我们的", T0)


@pytest.mark.parametrize("signed", [False, True])
def test_transfer_while_dispatched_or_signed_for(signed):
    a = dispatched()
    if signed:
        a = a.sign_for(T0)
    t = a.transfer("zj", " 属住建局职责 ", T0 + timedelta(minutes=5))
    assert (t.state, t.transferred_to, t.exit_reason) == (
        AssignmentState.TRANSFERRED,
        "zj",
        "属住建局职责",
    )


def test_transfer_refusals():
    with pytest.raises(Invalid) as e:
        dispatched("cg").transfer("cg", "转给自己", T0)
    assert e.value.code == "transfer_to_self"
    with pytest.raises(Invalid) as e:
        dispatched().transfer("zj", "  ", T0)
    assert e.value.code == "reason_required"
    for done in (
        dispatched().sign_for(T0).resolve("已办", T0),
        dispatched().reject("x", T0),
        dispatched().transfer("zj", "x", T0),
    ):
        with pytest.raises(Conflict):
            done.transfer("xf", "再转", T0)


def test_progress_only_while_signed_for_and_needs_a_note():
    a = dispatched()
    with pytest.raises(Conflict):
        a.progress("已到现场", T0)
    signed = a.sign_for(T0)
    later = T0 + timedelta(hours=1)
    after, note = signed.progress("  已到现场勘查  ", later)
    assert (after.state, after.updated_at, note) == (
        AssignmentState.SIGNED_FOR,
        later,
        "已到现场勘查",
    )
    with pytest.raises(Invalid) as e:
        signed.progress(" ", later)
    assert e.value.code == "note_required"
    for done in (signed.resolve("已办", T0), dispatched().reject("x", T0)):
        with pytest.raises(Conflict):
            done.progress("进展", T0)


# --- departments (admin API validation) ----------------------------------------------------

CONTACT = ("赵建国", "0351-4012301", "值班领导")


def test_a_department_is_checked_and_trimmed():
    d = new_department(
        "jd-yz",
        " 迎泽街道办事处 ",
        "street_office",
        ["YA/YA01", "YA/YA01"],
        [(" 韩晓东 ", "0351-4091001", " 值班领导 "), ("杨玉兰", "+86-351-4091002", "")],
    )
    assert d == Department(
        "jd-yz",
        "迎泽街道办事处",
        "street_office",
        ("YA/YA01",),
        (Contact("韩晓东", "0351-4091001", "值班领导"), Contact("杨玉兰", "+86-351-4091002", None)),
    )


@pytest.mark.parametrize(
    "kind", ["functional", "street_office", "co_building", "property", "volunteer"]
)
def test_every_kind_is_allowed_and_has_a_chinese_label(kind):
    assert new_department("x", "某单位", kind, ["YA"], []).kind == kind
    assert KIND_ZH[DepartmentKind(kind)]


@pytest.mark.parametrize(
    ("args", "field"),
    [
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
        (
            ("x", "某单位", "functional", ["YA"], [CONTACT, ("李梅", "1234", None)]),
            "contacts[1].phone",
        ),
        (
            ("x", "某单位", "functional", ["YA"], [("李梅", "0351 4012301", None)]),
            "contacts[0].phone",
        ),
        (("x", "某单位", "functional", ["YA"], [("李梅", "0" * 21, None)]), "contacts[0].phone"),
        (("x", "某单位", "functional", ["YA"], [("李梅", "-----", None)]), "contacts[0].phone"),
        (("x", "某单位", "functional", ["YA"], [("李梅", "电话0351", None)]), "contacts[0].phone"),
        (
            ("x", "某单位", "functional", ["YA"], [("李梅", "0351-4012301", "长" * 33)]),
            "contacts[0].role",
        ),
        (("x", "某单位", "functional", ["YA"], [CONTACT] * 21), "contacts"),
    ],
)
def test_bad_department_input_is_invalid_and_names_the_field(args, field):
    with pytest.raises(Invalid) as e:
        new_department(*args)
    assert e.value.zh.startswith(f"{field}：") and e.value.en.startswith(f"{field}: ")
    assert e.value.status_code == 422


def test_area_paths_and_phones_at_their_limits_are_accepted():
    d = new_department(
        "A_b-1",
        "某单位",
        "volunteer",
        ["YA", "YA/YA01/YA0101-03", "a-B/9"],
        [("李梅", "12345", None), ("王芳", "+" + "1" * 19, None)],
    )
    assert d.areas == ("YA", "YA/YA01/YA0101-03", "a-B/9") and len(d.contacts) == 2


# --- issue 5: categories, co-handlers, default kinds, liaison units, ambiguity ----------

GRID_YA0401 = "YA/YA04/YA0401/YA0401-01"


def test_the_demo_catalogue_has_about_thirty_categories_with_a_default_kind_each():
    leaves = [c for c in CATALOGUE.values() if c.parent_code]
    assert len(leaves) >= 30
    assert all(default_kind(c.code, CATALOGUE) for c in leaves)
    assert lineage("E0103", CATALOGUE) == ("E01", "E0103")
    assert default_kind("E0103", CATALOGUE) == "property"  # own setting
    assert default_kind("E0102", CATALOGUE) == "functional"  # inherited from E01
    assert lineage("nope", CATALOGUE) == ("nope",) and default_kind("nope", CATALOGUE) is None


def test_a_rule_brings_its_co_handlers():
    d = decide("E0403", GRID_YA0101)
    assert [(r.department_id, r.role, r.basis) for r in d.routes] == [
        ("hb", AssignmentRole.LEAD, DispatchBasis.RULE),
        ("cg", AssignmentRole.CO, DispatchBasis.RULE),
    ]
    assert d.routes[0].rule_id == d.routes[1].rule_id is not None
    assert "榆安区城市管理局协办（榆安区生态环境分局主办）" in d.routes[1].reason


def test_a_rule_for_a_whole_major_class_routes_its_minor_classes():
    (only,) = decide("C0202", GRID_YA0101).routes
    assert only.department_id == "jt" and "（大类C02）" in only.reason


def test_a_minor_class_rule_beats_its_major_class_rule_at_the_same_area():
    d = decide("C0204", GRID_YA0101)  # C02 → jt, C0204 → cg (+ jt)
    assert [(r.department_id, r.role) for r in d.routes] == [
        ("cg", AssignmentRole.LEAD),
        ("jt", AssignmentRole.CO),
    ]


def test_a_deeper_rule_beats_the_default_kind_and_the_default_kind_a_wider_rule():
    rules = [*RULES, RoutingRule(99, "E0103", "YA/YA02/YA0201/YA0201-03", "cg")]
    assert decide("E0103", GRID_YA0201, rules=rules).routes[0].department_id == "cg"
    assert (
        decide("E0103", "YA/YA02/YA0201/YA0201-04", rules=rules).routes[0].department_id == "wy-jx"
    )


def test_a_rule_at_the_same_area_as_the_default_kind_wins():
    rules = [*RULES, RoutingRule(99, "E0301", "YA/YA01", "sf")]
    assert decide("E0301", GRID_YA0101).routes[0].department_id == "jd-yz"  # 街道办事处
    assert decide("E0301", GRID_YA0101, rules=rules).routes[0].department_id == "sf"


def test_two_departments_of_the_default_kind_at_the_same_area_choose_neither():
    two = {**DEPARTMENTS, "wy-x": Department("wy-x", "另一物业", "property", ("YA/YA02/YA0201",))}
    d = route(
        category="E0203",
        area_path=GRID_YA0201,
        rules=RULES,
        named=[],
        departments=two,
        lineage=("E02", "E0203"),
        default_kind="property",
        liaison=LIAISON,
    )
    assert d.routes[0].basis is DispatchBasis.LIAISON
    assert "该区域有多个物业企业（wy-jx、wy-x）" in d.reason


def test_liaison_units_are_the_fallback_in_their_order():
    first = decide("E0203", "YA/YA01/YA0101/YA0101-02")  # no property company in 桃园
    assert [(r.department_id, r.basis) for r in first.routes] == [("gd", DispatchBasis.LIAISON)]
    assert "YA/YA01/YA0101的包联单位（第1位）榆安供电公司主办" in first.reason
    second = decide("E0203", "YA/YA01/YA0101/YA0101-02", exclude={"gd"})
    assert second.routes[0].department_id == "rs"
    assert not decide("E0203", "YA/YA01/YA0101/YA0101-02", exclude={"gd", "rs"}).routable


def test_a_community_without_rule_default_or_liaison_units_is_unroutable():
    assert not decide("E0501", GRID_YA0401).routable  # no volunteer team in 北关
    assert decide("E0501", GRID_YA0101).routes[0].department_id == "zy-ty"


def test_busy_departments_are_passed_over_like_rejected_ones_and_drop_as_co_handlers():
    d = decide("E0403", GRID_YA0101, busy={"hb"})
    assert d.routes[0].department_id != "hb"
    d = decide("E0403", GRID_YA0101, busy={"cg"})
    assert [r.department_id for r in d.routes] == ["hb"]
    d = decide("E0101", GRID_YA0101, named=["cg", "zj"], busy={"cg"})
    assert [(r.department_id, r.role) for r in d.routes] == [("zj", AssignmentRole.LEAD)]


def _lineage(code: str) -> tuple[str, ...]:
    return lineage(code, CATALOGUE)


def test_saving_a_rule_that_repeats_one_is_refused_naming_it():
    with pytest.raises(Conflict) as e:
        check_rule(RoutingRule(0, "E0101", "YA", "zj"), RULES, _lineage)
    assert e.value.code == "rule_exists" and "规则#" in e.value.zh


@pytest.mark.parametrize(
    ("new", "existing"),
    [
        # A deeper area with a wider category against a narrower category with a wider area.
        (RoutingRule(0, "C02", "YA/YA01", "cg"), RoutingRule(7, "C0204", "YA", "jt")),
        (RoutingRule(0, "C0204", "YA", "jt"), RoutingRule(7, "C02", "YA/YA01", "cg")),
    ],
)
def test_an_ambiguous_rule_is_refused_naming_the_other_rule(new, existing):
    with pytest.raises(Conflict) as e:
        check_rule(new, [existing], _lineage)
    assert e.value.code == "ambiguous_rule" and "规则#7" in e.value.zh
    assert "歧义" in e.value.zh and "C0204" in e.value.zh and "YA/YA01" in e.value.zh


@pytest.mark.parametrize(
    "new",
    [
        RoutingRule(0, "C0204", "YA/YA01", "cg"),  # more specific on both: fine
        RoutingRule(0, "C0204", "YA/YA02/YA0201", "cg"),  # deeper still: fine
        RoutingRule(0, "C0201", "YA/YA01", "cg"),  # a sibling category: never the same case
        RoutingRule(0, "E01", "YA/YA01", "cg"),  # another class altogether
    ],
)
def test_rules_that_never_tie_are_accepted(new):
    check_rule(
        new, [RoutingRule(7, "C0204", "YA", "jt"), RoutingRule(8, "C02", "YA", "jt")], _lineage
    )


def test_a_rule_whose_lead_also_co_handles_or_with_a_repeated_co_handler_is_invalid():
    for rule in (
        RoutingRule(0, "E0101", "YA/YA01", "cg", ("cg",)),
        RoutingRule(0, "E0101", "YA/YA01", "cg", ("zj", "zj")),
    ):
        with pytest.raises(Invalid):
            check_rule(rule, [], _lineage)


def test_every_demo_rule_passes_the_ambiguity_check():
    for rule in RULES:
        check_rule(rule, RULES, _lineage)


# --- 延期: extension requests -------------------------------------------------------------


def _request(a=None, days=3, reason="需协调施工队", pending=False):
    a = a or dispatched().sign_for(T0)
    return request_extension(
        a, days, reason, pending=pending, request_id=uuid4(), by="cg-duty", now=T0
    )


def test_an_extension_is_asked_for_while_handling_and_approved_with_fewer_days():
    e = _request()
    assert (e.state, e.days, e.reason, e.requested_by) == (
        ExtensionState.PENDING,
        3,
        "需协调施工队",
        "cg-duty",
    )
    ok = e.approve(2, " 同意 ", "supervisor", T0 + timedelta(hours=1))
    assert (ok.state, ok.granted_days, ok.comment, ok.decided_by) == (
        ExtensionState.APPROVED,
        2,
        "同意",
        "supervisor",
    )
    assert e.approve(None, None, "s", T0).granted_days == 3


def test_an_extension_refused_needs_a_comment_and_a_decision_is_final():
    e = _request()
    with pytest.raises(Invalid) as err:
        e.refuse("  ", "supervisor", T0)
    assert err.value.code == "comment_required"
    no = e.refuse("理由不充分", "supervisor", T0)
    assert (no.state, no.granted_days) == (ExtensionState.REFUSED, 0)
    for act in (lambda: no.approve(None, None, "s", T0), lambda: no.refuse("x", "s", T0)):
        with pytest.raises(Conflict) as err:
            act()
        assert err.value.code == "extension_decided"


@pytest.mark.parametrize(
    ("kwargs", "error", "code"),
    [
        ({"a": dispatched()}, Conflict, "invalid_state"),  # before 报到
        ({"days": 0}, Invalid, "invalid_extension"),
        ({"days": 31}, Invalid, "invalid_extension"),
        ({"reason": "  "}, Invalid, "reason_required"),
        ({"pending": True}, Conflict, "extension_pending"),
    ],
)
def test_bad_extension_requests(kwargs, error, code):
    with pytest.raises(error) as err:
        _request(**kwargs)
    assert err.value.code == code


def test_approving_more_days_than_asked_is_invalid():
    with pytest.raises(Invalid):
        _request(days=2).approve(3, None, "s", T0)


def test_a_result_cites_at_most_nine_distinct_photos():
    signed = dispatched().sign_for(T0)
    p = uuid4()
    assert signed.resolve("已办", T0, (p, p)).photo_ids == (p,)
    with pytest.raises(Invalid) as err:
        signed.resolve("已办", T0, tuple(uuid4() for _ in range(10)))
    assert err.value.code == "too_many_photos"
