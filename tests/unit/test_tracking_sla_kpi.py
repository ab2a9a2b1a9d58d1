"""KPIs from plain facts, checked against a small data set computed by hand; per department
and per area subtree; ranking and the red/black list (红黑榜) by thresholds given as data."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.tracking.domain.kpi import (
    AssignmentFacts,
    Kpi,
    Period,
    Rate,
    compute_kpi,
    kpi_for_area,
    kpis_by_area,
    kpis_by_department,
)
from services.tracking.domain.ranking import (
    rank,
    red_black_list,
    thresholds_from_data,
    thresholds_to_data,
)
from shared.contract.areas import within
from shared.errors import Invalid

SH = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


MARCH = Period(at(3, 1), at(4, 1))
NOW = at(4, 2, 12)

YA0101 = "YA/YA01/YA0101/YA0101-01"
YA0101_2 = "YA/YA01/YA0101/YA0101-02"
YA0101_3 = "YA/YA01/YA0101/YA0101-03"
YA0102 = "YA/YA01/YA0102/YA0102-02"
YA0102_1 = "YA/YA01/YA0102/YA0102-01"
YA0201 = "YA/YA02/YA0201/YA0201-01"
YA0201_2 = "YA/YA02/YA0201/YA0201-02"
YA0202 = "YA/YA02/YA0202/YA0202-01"


def facts(id_, dept, area, dispatched, sign_due, resolve_due, **kw) -> AssignmentFacts:
    return AssignmentFacts(id_, dept, area, "E0101", dispatched, sign_due, resolve_due, **kw)


FACTS = [
    # cg (城管)
    facts(
        "a1",
        "cg",
        YA0101,
        at(3, 2, 9),
        at(3, 2, 11),
        at(3, 9, 9),
        signed_for_at=at(3, 2, 10),
        resolved_at=at(3, 5, 9),
        rating=5,
    ),  # all on time
    facts(
        "a2",
        "cg",
        YA0102,
        at(3, 3, 9),
        at(3, 3, 11),
        at(3, 10, 9),
        signed_for_at=at(3, 3, 12),
        resolved_at=at(3, 12, 9),
        reworked=True,
        extensions=1,
        rating=3,
    ),  # late twice
    facts(
        "a3", "cg", YA0201, at(3, 30, 10), at(3, 30, 12), at(4, 6, 10), signed_for_at=at(3, 30, 11)
    ),  # open, in time
    facts("a4", "cg", YA0101_2, at(3, 10, 9), at(3, 10, 11), at(3, 17, 9), rejected=True),  # 退单
    facts("a5", "cg", YA0101, at(2, 27, 9), at(2, 27, 11), at(3, 6, 9)),  # February
    # zj (住建)
    facts(
        "b1",
        "zj",
        YA0101_3,
        at(3, 4, 9),
        at(3, 4, 11),
        at(3, 11, 9),
        signed_for_at=at(3, 4, 9, 30),
        resolved_at=at(3, 11, 9),
        rating=4,
    ),  # at the deadline
    facts(
        "b2",
        "zj",
        YA0202,
        at(3, 20, 14),
        at(3, 20, 16),
        at(3, 27, 14),
        signed_for_at=at(3, 23, 9),
        extensions=2,
    ),  # overdue now
    facts("b3", "zj", YA0102_1, at(3, 31, 16), at(4, 1, 9, 30), at(4, 8, 16)),  # not signed for
    # xf (消防)
    facts(
        "c1",
        "xf",
        YA0201_2,
        at(3, 15, 10),
        at(3, 15, 10, 30),
        at(3, 16, 10),
        signed_for_at=at(3, 15, 10, 20),
        resolved_at=at(3, 15, 18),
        rating=2,
    ),
]


def test_per_department_figures_match_the_hand_computation():
    by_dept = kpis_by_department(FACTS, MARCH, NOW)
    assert list(by_dept) == ["cg", "xf", "zj"]
    # cg: a1–a4 (a5 was dispatched in February). received 4; signed for on time a1, a3 = 2;
    # resolved a1, a2 = 2, on time a1 = 1; overdue now 0 (a3's deadlines are 30 Mar 12:00 —
    # signed 11:00 — and 6 Apr; a4 was rejected); reworked a2 = 1; rejections a4 = 1;
    # extensions 1; rated a1 (5), a2 (3) = 2, satisfied (≥ 4) 1; handling a1 72 h + a2 216 h.
    assert by_dept["cg"] == Kpi(
        received=4,
        signed_for_on_time=2,
        resolved=2,
        resolved_on_time=1,
        overdue_now=0,
        reworked=1,
        rejections=1,
        extensions=1,
        rated=2,
        satisfied=1,
        score_total=8,
        handling_total=288 * H,
    )
    cg = by_dept["cg"]
    assert cg.response_rate == Rate(2, 4) and cg.response_rate.value == 0.5  # 响应率
    assert cg.resolution_rate == Rate(2, 4)  # 解决率
    assert cg.satisfaction_rate == Rate(1, 2)  # 满意率
    assert cg.on_time_rate == Rate(1, 2) and cg.rework_rate == Rate(1, 2)
    assert cg.average_handling_time == 144 * H and cg.average_score == 4.0  # (72+216)/2, 8/2
    # zj: b1–b3. signed on time b1 = 1 (b2 late, b3 not at all); resolved b1 = 1, exactly at
    # its deadline = on time; overdue now: b2 (resolve 27 Mar passed) + b3 (sign-for 1 Apr
    # 09:30 passed) = 2; extensions 2; rated b1 (4) = 1, satisfied 1; handling b1 7 days.
    assert by_dept["zj"] == Kpi(
        received=3,
        signed_for_on_time=1,
        resolved=1,
        resolved_on_time=1,
        overdue_now=2,
        extensions=2,
        rated=1,
        satisfied=1,
        score_total=4,
        handling_total=168 * H,
    )
    assert by_dept["zj"].response_rate == Rate(1, 3) and by_dept["zj"].satisfaction_rate == Rate(
        1, 1
    )
    # xf: c1 all on time, resolved in 8 h, rated 2 → not satisfied.
    assert by_dept["xf"] == Kpi(
        received=1,
        signed_for_on_time=1,
        resolved=1,
        resolved_on_time=1,
        rated=1,
        score_total=2,
        handling_total=8 * H,
    )
    assert by_dept["xf"].satisfaction_rate == Rate(0, 1)


def test_the_whole_district_adds_up():
    total = compute_kpi(FACTS, MARCH, NOW)
    # 4 + 3 + 1 = 8 received; 2 + 1 + 1 = 4 on time; resolved 2 + 1 + 1 = 4, on time 3;
    # handling 72 + 216 + 168 + 8 = 464 h over 4 → 116 h; ratings 5, 3, 4, 2 → 2 satisfied.
    assert (
        total.received,
        total.signed_for_on_time,
        total.resolved,
        total.resolved_on_time,
        total.overdue_now,
        total.reworked,
        total.rejections,
        total.extensions,
    ) == (8, 4, 4, 3, 2, 1, 1, 3)
    assert total.average_handling_time == 116 * H
    assert (total.rated, total.satisfied, total.average_score) == (4, 2, 3.5)
    assert str(total.response_rate) == "50.0%"


def test_per_area_subtree():
    # 迎泽街道 YA/YA01: a1, a2, a4, b1, b3 = 5; signed on time a1, b1; resolved a1, a2, b1, on
    # time a1, b1; overdue b3; ratings 5, 3, 4 → 2 satisfied.
    ya01 = kpi_for_area(FACTS, "YA/YA01", MARCH, NOW)
    assert (
        ya01.received,
        ya01.signed_for_on_time,
        ya01.resolved,
        ya01.resolved_on_time,
        ya01.overdue_now,
        ya01.rated,
        ya01.satisfied,
    ) == (5, 2, 3, 2, 1, 3, 2)
    # 桃园社区 YA/YA01/YA0101: a1, a4, b1
    assert kpi_for_area(FACTS, "YA/YA01/YA0101", MARCH, NOW).received == 3
    assert kpi_for_area(FACTS, YA0101, MARCH, NOW).received == 1  # a grid: itself
    assert kpi_for_area(FACTS, "YA/YA0", MARCH, NOW).received == 0  # not a string prefix
    by_street = kpis_by_area(FACTS, MARCH, NOW, depth=2)
    assert {k: v.received for k, v in by_street.items()} == {"YA/YA01": 5, "YA/YA02": 3}
    assert by_street["YA/YA01"] == ya01
    assert kpis_by_area(FACTS, MARCH, NOW, depth=1)["YA"] == compute_kpi(FACTS, MARCH, NOW)
    with pytest.raises(Invalid):
        kpis_by_area(FACTS, MARCH, NOW, depth=0)
    assert within("YA/YA01", "YA/YA01") and not within("YA/YA011", "YA/YA01")


def test_facts_after_now_have_not_happened_yet():
    # as of 3 Mar 11:30: a1 is signed for (2 Mar 10:00) but not yet resolved (5 Mar); a2 is not
    # yet signed for (12:00) and its sign-for deadline (11:00) has passed; a3, a4 do not exist.
    early = kpis_by_department(FACTS, MARCH, at(3, 3, 11, 30))["cg"]
    assert (early.received, early.signed_for_on_time, early.resolved, early.overdue_now) == (
        2,
        1,
        0,
        1,
    )


def test_an_empty_group_has_no_rates_rather_than_zero():
    empty = compute_kpi([], MARCH, NOW)
    assert empty.response_rate.value is None and str(empty.response_rate) == "—"
    assert empty.average_handling_time is None and empty.average_score is None


@pytest.mark.parametrize(("start", "end"), [(at(4, 1), at(3, 1)), (at(3, 1), at(3, 1))])
def test_a_period_that_ends_before_it_starts_is_refused(start, end):
    with pytest.raises(Invalid) as err:
        Period(start, end)
    assert err.value.code == "invalid_period"
    assert err.value.message("zh") == "end：统计区间的结束时间须晚于开始时间"


def test_a_naive_period_is_refused():
    with pytest.raises(Invalid, match="time zone"):
        Period(datetime(2026, 3, 1), at(4, 1))


def test_facts_reject_impossible_values():
    with pytest.raises(ValueError):
        facts("x", "cg", YA0101, at(3, 2), at(3, 2), at(3, 3), rating=6)


# --- ranking and the red/black list --------------------------------------------------------------


def test_ranking_by_the_three_rates():
    by_dept = kpis_by_department(FACTS, MARCH, NOW)
    # response rate: xf 1/1, cg 2/4, zj 1/3
    assert [(r.position, r.unit) for r in rank(by_dept)] == [(1, "xf"), (2, "cg"), (3, "zj")]
    # fewest overdue first: cg 0, xf 0 (a tie, same position, by name), zj 2
    assert [(r.position, r.unit) for r in rank(by_dept, by=["overdue_now"])] == [
        (1, "cg"),
        (1, "xf"),
        (3, "zj"),
    ]
    # too few cases to rank xf
    assert [r.unit for r in rank(by_dept, min_received=2)] == ["cg", "zj"]


def test_a_unit_without_a_figure_ranks_after_those_with_one():
    kpis = {"a": Kpi(received=1), "b": Kpi(received=1, rated=1, satisfied=0)}
    assert [r.unit for r in rank(kpis, by=["satisfaction_rate"])] == ["b", "a"]


THRESHOLDS = {
    "min_received": 1,
    "red": [["response_rate", ">=", 0.9], ["resolution_rate", ">=", 0.9]],
    "black": [["response_rate", "<", 0.4], ["rejections", ">=", 1]],
}


def test_red_and_black_list():
    by_dept = kpis_by_department(FACTS, MARCH, NOW)
    lists = red_black_list(by_dept, thresholds_from_data(THRESHOLDS))
    # cg: response 50 % (not < 40 %) but 1 rejection → black; zj: response 33 % → black;
    # xf: response 100 %, resolution 100 % → red.
    assert [(x.unit, x.reasons) for x in lists.black] == [
        ("cg", ("推诿（退单）数 >= 1",)),
        ("zj", ("响应率 < 40%",)),
    ]
    assert [x.unit for x in lists.red] == ["xf"]
    fewer = red_black_list(by_dept, thresholds_from_data({**THRESHOLDS, "min_received": 2}))
    assert fewer.red == ()  # xf received only 1


def test_a_unit_meeting_red_and_black_criteria_is_black_only():
    kpi = Kpi(received=5, signed_for_on_time=5, resolved=5, rejections=3)
    lists = red_black_list({"wy": kpi}, thresholds_from_data(THRESHOLDS))
    assert [x.unit for x in lists.black] == ["wy"] and lists.red == ()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"red": [["speed", ">=", 1]]}, "red[0][0]"),
        ({"red": [["response_rate", "=>", 0.9]]}, "red[0][1]"),
        ({"red": [["response_rate", ">=", 90]]}, "red[0][2]"),
        ({"black": [["rejections", ">=", -1]]}, "black[0][2]"),
        ({"black": [["rejections", ">="]]}, "black[0]"),
        ({"black": [["rejections", ">=", "3"]]}, "black[0][2]"),
        ({"min_received": 0, "red": [["response_rate", ">=", 0.9]]}, "min_received"),
        ({}, "red"),
        ({"white": []}, "white"),
    ],
)
def test_bad_thresholds_are_refused(data, field):
    with pytest.raises(Invalid) as err:
        thresholds_from_data(data)
    assert err.value.code == "invalid_thresholds"
    assert err.value.message("zh").startswith(f"{field}：")


def test_ranking_by_an_unknown_metric_is_refused():
    with pytest.raises(Invalid, match="unknown metric"):
        rank({}, by=["speed"])


def test_an_assignment_ended_otherwise_is_not_overdue():
    # handed on (转办) before signing for, long past both deadlines: received, never late now
    handed_on = facts("t1", "cg", YA0101, at(3, 2, 9), at(3, 2, 11), at(3, 9, 9), ended=True)
    kpi = compute_kpi([handed_on], MARCH, NOW)
    assert (kpi.received, kpi.overdue_now, kpi.rejections) == (1, 0, 0)
    assert (
        compute_kpi(
            [facts("t2", "cg", YA0101, at(3, 2, 9), at(3, 2, 11), at(3, 9, 9))], MARCH, NOW
        ).overdue_now
        == 1
    )


def test_thresholds_read_back_what_they_store():
    data = {
        "min_received": 2,
        "red": [["response_rate", ">=", 0.9]],
        "black": [["rejections", ">=", 3], ["satisfaction_rate", "<", 0.6]],
    }
    stored = thresholds_to_data(thresholds_from_data(data))
    assert stored == {
        "min_received": 2,
        "red": [["response_rate", ">=", 0.9]],
        "black": [["rejections", ">=", 3.0], ["satisfaction_rate", "<", 0.6]],
    }
    assert thresholds_from_data(stored) == thresholds_from_data(data)
