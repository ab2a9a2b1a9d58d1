"""The 督办 integrity checks (domain.integrity, domain.churn) and the seeds' counts
(domain.grid_work) on hand-made timelines — each with the near miss that must not be flagged.

Times: day 0 is Monday 2026-03-02, Beijing time; the demo calendar works 08:30–12:00 and
13:30–17:30 Mon–Fri."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.tracking import demo
from services.tracking.domain.churn import Posting, churns, dispatch_churn, hops
from services.tracking.domain.grid_work import (
    ClosingCount,
    SourceCount,
    grid_work_by_area,
    grid_work_by_worker,
    grid_work_total,
    source_of,
    sources_by_area,
)
from services.tracking.domain.integrity import (
    Handled,
    Rating,
    Resolved,
    SentBack,
    Thresholds,
    Window,
    last_minute,
    premature_closes,
    proxy_ratings,
)
from services.tracking.domain.kpi import Period
from services.tracking.domain.timeline import CALENDAR_TIME
from shared.contract.values import CaseSource, Resolution
from shared.errors import Invalid

CN = ZoneInfo("Asia/Shanghai")
CAL = demo.demo_calendar()


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 3, 2, hh, mm, tzinfo=CN) + timedelta(days=day)


D0_9, D0_11, D3_9 = at(0, 9), at(0, 11), at(3, 9)
MARCH = Period(datetime(2026, 3, 1, tzinfo=CN), datetime(2026, 4, 1, tzinfo=CN))
NOW = datetime(2026, 4, 15, tzinfo=CN)
T = Thresholds()


# --- premature close --------------------------------------------------------------------------


def test_a_resolution_sent_back_within_the_window_is_a_premature_close() -> None:
    resolved = [
        Resolved("c1", "N1", "cg", at(0, 9)),  # rework naming cg after 2 days: flagged
        Resolved("c2", "N2", "cg", at(0, 9)),  # reopened after 8 days: near miss
        Resolved("c3", "N3", "cg", at(0, 9)),  # rework naming only zj: not cg's
        Resolved("c4", "N4", "zj", at(0, 9)),  # rework naming nobody: every department's
        Resolved("c5", "N5", "zj", at(1, 9)),  # reopened within 7 days: flagged
    ]
    back = [
        SentBack("c1", "case.rework_requested", at(2, 9), ("cg",), "仍有杂物"),
        SentBack("c2", "case.reopened", at(8, 9, 1), (), "又堆上了"),
        SentBack("c3", "case.rework_requested", at(1, 9), ("zj",)),
        SentBack("c4", "case.rework_requested", at(1, 9), ()),
        SentBack("c5", "case.reopened", at(7, 9), ()),
    ]
    found = premature_closes(resolved, back, MARCH, NOW, T)
    assert (found["cg"].examined, found["cg"].flagged) == (3, 1)
    assert [e.case_no for e in found["cg"].evidence] == ["N1"]
    e = found["cg"].evidence[0]
    assert [s.type for s in e.steps] == ["case.resolved", "case.rework_requested"]
    assert e.summary_zh == "办结后 2天返工" and e.summary_en == "rework 2 d after the resolution"
    assert (found["zj"].examined, found["zj"].flagged) == (2, 2)
    assert found["zj"].rate.value == 1.0
    # a shorter window: c5 (6 days) no longer counts
    short = premature_closes(resolved, back, MARCH, NOW, Thresholds(rework_days=5))
    assert short["zj"].flagged == 1


def test_a_send_back_not_yet_happened_or_a_resolution_outside_the_period_is_not_counted() -> None:
    resolved = [Resolved("c1", "N1", "cg", at(0, 9)), Resolved("c2", "N2", "cg", at(-5, 9))]
    back = [SentBack("c1", "case.rework_requested", at(2, 9))]
    found = premature_closes(resolved, back, MARCH, at(1, 9), T)  # asked before the rework
    assert (found["cg"].examined, found["cg"].flagged) == (1, 0)


# --- dispatch churn ---------------------------------------------------------------------------


def posting(case: str, dept: str, d: datetime, ended_by: str | None = None, e=None) -> Posting:
    return Posting(case, f"N-{case}", dept, d, ended_by, e)


def test_a_case_handed_back_to_a_department_that_rejected_it_churns() -> None:
    ping_pong = [
        posting("c1", "cg", at(0, 9), "case.rejected", at(0, 10)),
        posting("c1", "zj", at(0, 10), "case.transferred", at(0, 11)),
        posting("c1", "cg", at(0, 11)),
    ]
    one_reject = [  # a misrouted case put right once: the near miss
        posting("c2", "cg", at(1, 9), "case.rejected", at(1, 10)),
        posting("c2", "zj", at(1, 10)),
    ]
    two_hops = [  # A → B → C: two hand-offs, nobody twice
        posting("c3", "cg", at(1, 9), "case.rejected", at(1, 10)),
        posting("c3", "zj", at(1, 10), "case.transferred", at(1, 11)),
        posting("c3", "xf", at(1, 11)),
    ]
    assert [(h.source, h.target) for h in hops(ping_pong, NOW)] == [("cg", "zj"), ("zj", "cg")]
    assert churns(hops(ping_pong, NOW), T)
    assert not churns(hops(one_reject, NOW), T)
    assert not churns(hops(two_hops, NOW), T)
    assert churns(hops(two_hops, NOW), Thresholds(min_hops=2))
    departments, pairs = dispatch_churn([*ping_pong, *one_reject, *two_hops], MARCH, NOW, T)
    assert (departments["cg"].examined, departments["cg"].flagged) == (3, 1)
    assert (departments["zj"].examined, departments["zj"].flagged) == (2, 1)
    assert [(p.departments, p.cases, p.hops) for p in pairs] == [(("cg", "zj"), 1, 2)]
    assert pairs[0].evidence[0].case_no == "N-c1"
    assert pairs[0].evidence[0].summary_en == "2 hand-offs: cg -> zj -> cg"


def test_three_hand_offs_churn_and_one_to_manual_dispatch_has_no_target() -> None:
    chain = [
        posting("c1", "cg", at(0, 9), "case.rejected", at(0, 10)),
        posting("c1", "zj", at(0, 10), "case.rejected", at(0, 11)),
        posting("c1", "xf", at(0, 11), "case.rejected", at(0, 12)),  # none left: community
    ]
    found = hops(chain, NOW)
    assert [h.target for h in found] == ["zj", "xf", None]
    departments, pairs = dispatch_churn(chain, MARCH, NOW, T)
    assert departments["xf"].flagged == 1
    assert {p.departments for p in pairs} == {("cg", "zj"), ("xf", "zj")}


# --- last minute ----------------------------------------------------------------------------


def handled(
    case: str,
    signed: datetime,
    first_action: datetime | None,
    dispatched: datetime = D0_9,
    sign_due: datetime = D0_11,  # 2 working hours
    resolve_due: datetime = D3_9,  # 3 working days
) -> Handled:
    return Handled(
        case,
        f"N-{case}",
        "cg",
        dispatched,
        signed,
        Window(dispatched, sign_due, CAL),
        first_action,
        Window(dispatched, resolve_due, CAL),
    )


def test_sign_for_in_the_last_tenth_of_the_window_is_last_minute() -> None:
    facts = [
        handled("c1", at(0, 10, 50), at(0, 14)),  # 10 of 120 working minutes left: flagged
        handled("c2", at(0, 10, 46), at(0, 14)),  # 14 left (88 %): near miss
        handled("c3", at(0, 11, 5), at(0, 14)),  # after the deadline: late, not gamed
    ]
    found = last_minute(facts, MARCH, NOW, T)["cg"]
    sign = found["last_minute_sign_for"]
    assert (sign.examined, sign.flagged) == (3, 1)
    assert sign.evidence[0].case_no == "N-c1"
    assert [s.type for s in sign.evidence[0].steps] == [
        "case.dispatched",
        "case.signed_for",
        "deadline.sign_for",
    ]
    assert found["last_minute_progress"].flagged == 0


def test_windows_count_working_time_so_monday_morning_is_not_last_minute() -> None:
    # Friday 17:00 dispatched, due Monday 10:30 (2 working hours); signed Monday 08:45:
    # 45 of 120 working minutes used — in calendar time it would be 96 % of the window.
    fri = at(4, 17)
    h = handled("c1", at(7, 8, 45), None, dispatched=fri, sign_due=at(7, 10, 30))
    assert last_minute([h], MARCH, NOW, T)["cg"]["last_minute_sign_for"].flagged == 0
    cal = Handled(
        "c1", "N", "cg", fri, at(7, 8, 45), Window(fri, at(7, 10, 30), CALENDAR_TIME), None, None
    )
    assert last_minute([cal], MARCH, NOW, T)["cg"]["last_minute_sign_for"].flagged == 1


def test_no_progress_until_the_last_tenth_of_the_resolution_window_is_last_minute() -> None:
    # The resolve window d0 09:00 → d3 09:00 is 3 working days = 22.5 working hours; its last
    # tenth is the last 2 h 15 min of working time: d3 08:30–09:00 and d2 15:45–17:30.
    facts = [
        handled("c1", at(0, 9, 30), at(2, 16, 30)),  # first progress in the last tenth
        handled("c2", at(0, 9, 30), at(2, 15, 30)),  # just before it: near miss
        handled("c3", at(0, 9, 30), None),  # nothing yet (overdue is another figure)
        handled("c4", at(0, 9, 30), at(3, 10)),  # after the deadline: late, not gamed
    ]
    progress = last_minute(facts, MARCH, NOW, T)["cg"]["last_minute_progress"]
    assert (progress.examined, progress.flagged) == (4, 1)
    assert progress.evidence[0].case_no == "N-c1"


def test_an_assignment_not_signed_for_or_dispatched_outside_the_period_is_not_examined() -> None:
    facts = [
        handled("c1", at(0, 10, 50), None, dispatched=at(-10, 9)),
        Handled("c2", "N", "cg", at(0, 9), None, None, None, None),
    ]
    assert last_minute(facts, MARCH, NOW, T) == {}


# --- proxy ratings ----------------------------------------------------------------------------


def rating(case: str, by_worker: bool, score: int = 5, community: str = "YA/YA01/YA0101"):
    return Rating(case, f"N-{case}", community, ("cg",), at(0, 9), score, by_worker, "李网格")


def test_mostly_grid_worker_ratings_over_the_threshold_are_flagged() -> None:
    ratings = [rating(f"c{i}", i < 4) for i in range(6)]  # 4 of 6 by the grid worker, all 5
    departments, communities = proxy_ratings(ratings, MARCH, NOW, T)
    cg = departments["cg"]
    assert (cg.examined, cg.flagged, cg.alert, cg.all_five_stars) == (6, 4, True, True)
    assert communities["YA/YA01/YA0101"].alert
    assert cg.evidence[0].summary_zh == "李网格 代录评价 5 星"


def test_proxy_ratings_near_misses() -> None:
    few = [rating(f"c{i}", True) for i in range(4)]  # all proxy, but only 4 ratings
    half = [rating(f"c{i}", i < 3, score=4) for i in range(6)]  # exactly 50 %: not above
    for ratings in (few, half):
        departments, _ = proxy_ratings(ratings, MARCH, NOW, T)
        assert not departments["cg"].alert
    assert proxy_ratings(half, MARCH, NOW, T)[0]["cg"].all_five_stars is False
    residents = [rating(f"c{i}", False) for i in range(6)]
    assert proxy_ratings(residents, MARCH, NOW, T)[0]["cg"].flagged == 0


def test_thresholds_out_of_bounds_are_refused_with_the_name() -> None:
    with pytest.raises(Invalid) as e:
        Thresholds(last_share=0.9)
    assert e.value.zh.startswith("last_share：") and e.value.code == "invalid_threshold"
    with pytest.raises(Invalid):
        Thresholds(rework_days=0)


# --- the seeds' counts ------------------------------------------------------------------------


def test_on_the_spot_closings_roll_up_the_tree_and_per_worker() -> None:
    g1, g2, g3 = "YA/YA01/YA0101/YA0101-01", "YA/YA01/YA0101/YA0101-02", "YA/YA02/YA0201/YA0201-01"
    counts = [
        ClosingCount(g1, Resolution.ON_SPOT, "li", "李网格", 3),
        ClosingCount(g2, Resolution.ON_SPOT, "li", "李网格", 1),
        ClosingCount(g1, Resolution.VERIFIED, "taoyuan", "桃园社区", 4),
        ClosingCount(g3, Resolution.ON_SPOT, "wang", "王网格", 2),
    ]
    communities = grid_work_by_area(counts, 3)
    assert {k: (v.closed, v.on_spot) for k, v in communities.items()} == {
        "YA/YA01/YA0101": (8, 4),
        "YA/YA02/YA0201": (2, 2),
    }
    assert communities["YA/YA01/YA0101"].grid_level_rate.value == 0.5
    assert grid_work_by_area(counts, 4)[g1].on_spot == 3
    assert (grid_work_total(counts).closed, grid_work_total(counts).on_spot) == (10, 6)
    workers = grid_work_by_worker(counts)
    assert [(w.subject, w.on_spot, sorted(w.grids)) for w in workers] == [
        ("li", 4, [g1, g2]),
        ("wang", 2, [g3]),
    ]


def test_sources_per_area_and_an_old_report_without_source_is_grid_patrol() -> None:
    assert source_of(None) is CaseSource.GRID_PATROL
    assert source_of("hotline") is CaseSource.HOTLINE
    counts = [
        SourceCount("YA/YA01/YA0101/YA0101-01", CaseSource.HOTLINE, 2),
        SourceCount("YA/YA01/YA0102/YA0102-01", CaseSource.GRID_PATROL, 5),
    ]
    streets = sources_by_area(counts, 2)
    assert streets["YA/YA01"][CaseSource.HOTLINE] == 2
    assert streets["YA/YA01"][CaseSource.WECHAT_GROUP] == 0
    assert sum(streets["YA/YA01"].values()) == 7
