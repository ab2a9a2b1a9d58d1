"""未诉先办 hotspot rules (no infrastructure): the window, detection, ranking, evidence, ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.intake.domain import hotspots as h
from services.intake.domain.hotspots import ClusterCase, HotspotKey
from shared.clock import BEIJING
from shared.errors import Conflict, NotFound

# Thursday 26 November 2026, 10:00 Beijing time; its week began Monday 23 November.
NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
MONDAY = datetime(2026, 11, 23, tzinfo=BEIJING)
GRID, PATH = "YA0101-03", "YA/YA01/YA0101/YA0101-03"


def case(
    days_ago: float,
    *,
    grid: str = GRID,
    category: str = "E0101",
    status: str = "reported",
    **extra: object,
) -> ClusterCase:
    return ClusterCase(
        **{
            "id": uuid4(),
            "case_no": f"YA-{uuid4().hex[:6]}",
            "grid_code": grid,
            "area_path": f"YA/YA01/YA0101/{grid}",
            "category": category,
            "reported_at": NOW - timedelta(days=days_ago),
            "status": status,
            "lat": None,
            "lon": None,
            "address": None,
            **extra,
        }
    )


def detect(cases: list[ClusterCase], weeks: int = 4, min_cases: int = 3, **decided: datetime):
    return h.detect(
        cases,
        now=NOW,
        weeks=weeks,
        min_cases=min_cases,
        decided={(GRID, c): at for c, at in decided.items()},
    )


def test_the_window_is_whole_calendar_weeks_in_beijing_time():
    assert h.week_start(NOW) == MONDAY
    assert h.window_start(NOW, 1) == MONDAY
    assert h.window_start(NOW, 4) == MONDAY - timedelta(weeks=3)
    # Sunday 23:30 Beijing is still last week, although it is Sunday afternoon in UTC
    sunday_night = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    assert h.week_start(sunday_night) == MONDAY - timedelta(weeks=1)


def test_three_cases_of_one_category_in_one_grid_make_a_hotspot_two_do_not():
    assert detect([case(1), case(8)]) == []
    [spot] = detect([case(1), case(8), case(20)])
    assert spot.case_count == 3
    assert spot.id == f"{GRID}.E0101.20261102000000"
    assert spot.area_path == PATH


def test_weekly_counts_first_last_and_what_the_window_leaves_out():
    cases = [case(0.1), case(1), case(2), case(9), case(24), case(40)]  # 40 days: outside
    [spot] = detect(cases)
    assert spot.weekly == (1, 0, 1, 3)  # oldest week first
    assert spot.case_count == 5
    assert spot.first_reported_at == NOW - timedelta(days=24)
    assert spot.last_reported_at == NOW - timedelta(days=0.1)


def test_other_grids_and_categories_are_separate_clusters():
    cases = [case(d) for d in (1, 2, 3)]
    cases += [case(d, category="E0102") for d in (1, 2)]
    cases += [case(d, grid="YA0101-04") for d in (1, 2)]
    assert [s.key.category for s in detect(cases)] == ["E0101"]
    assert len(detect(cases, min_cases=2)) == 3


def test_closed_and_on_the_spot_cases_count_merged_proactive_and_refused_ones_do_not():
    cases = [case(1, status="closed"), case(2, status="closed"), case(3)]
    assert detect(cases)[0].case_count == 3
    assert detect(cases)[0].open_cases == 1
    assert detect([case(1), case(2), case(3, merged=True)]) == []
    assert detect([case(1), case(2), case(3, proactive=True)]) == []
    assert detect([case(1), case(2), case(3, refused=True)]) == []


def test_ranked_by_count_then_recency():
    cases = [case(d, category="E0101") for d in (5, 6, 7)]
    cases += [case(d, category="E0102") for d in (1, 8, 9)]
    cases += [case(d, category="E0103") for d in (10, 11, 12, 13)]
    assert [s.key.category for s in detect(cases)] == ["E0103", "E0102", "E0101"]


def test_a_decision_moves_the_period_start_so_decided_cases_are_not_counted_again():
    cases = [case(d) for d in (1, 3, 10, 12)]
    decided = NOW - timedelta(days=5)
    assert detect(cases, E0101=decided) == []  # only two cases since the decision
    [spot] = detect([*cases, case(0.5)], E0101=decided)
    assert spot.key.start == decided and spot.case_count == 3
    assert spot.id == f"{GRID}.E0101.{decided.astimezone(BEIJING):%Y%m%d%H%M%S}"
    assert spot.weekly == (0, 3)  # from the decision's week on
    # a decision older than the window changes nothing
    assert detect(cases, E0101=NOW - timedelta(days=60))[0].case_count == 4


def test_evidence_centroid_address_rework_and_reopen():
    cases = [
        case(1, lat=37.0, lon=112.0, address="3号楼", rework_count=2),
        case(2, lat=37.2, lon=112.2, address="3号楼", reopen_count=1),
        case(3, address="5号楼"),
    ]
    [spot] = detect(cases)
    assert spot.centroid == (37.1, 112.1)
    assert spot.address == "3号楼"
    assert (spot.reworked, spot.reopened) == (1, 1)
    e = h.evidence(spot)
    assert e["id"] == spot.id and e["case_count"] == 3 and e["weekly"] == [0, 0, 0, 3]
    assert [c["case_no"] for c in e["cases"]] == [c.case_no for c in reversed(cases)]
    assert e["location"] == {"lat": 37.1, "lon": 112.1, "address": "3号楼"}


def test_no_points_no_centroid():
    [spot] = detect([case(1), case(2), case(3)])
    assert spot.centroid is None and spot.address is None


def test_ids_round_trip_and_malformed_ones_are_not_found():
    key = HotspotKey(GRID, "E0101", MONDAY)
    assert h.parse_id(key.id) == key
    for bad in ("nope", f"{GRID}.E0101", f"{GRID}.E0101.2026", f".E0101.{MONDAY:%Y%m%d}000000"):
        with pytest.raises(NotFound) as err:
            h.parse_id(bad)
        assert err.value.code == "hotspot_not_found" and err.value.zh.startswith("热点")


def test_a_hotspot_can_be_decided_only_while_current():
    key = HotspotKey(GRID, "E0101", MONDAY - timedelta(weeks=3))
    h.check_current(key, None, NOW)
    h.check_current(key, key.start - timedelta(days=1), NOW)  # an older decision
    with pytest.raises(Conflict) as err:
        h.check_current(key, key.start + timedelta(days=1), NOW)
    assert err.value.code == "hotspot_superseded"
    for start in (MONDAY - timedelta(weeks=h.MAX_WEEKS), NOW + timedelta(days=1)):
        with pytest.raises(NotFound):
            h.check_current(HotspotKey(GRID, "E0101", start), None, NOW)


def test_accepting_needs_at_least_two_cases():
    key = HotspotKey(GRID, "E0101", MONDAY)
    with pytest.raises(NotFound):
        h.check_enough(None, key)
    with pytest.raises(NotFound):
        h.check_enough(h.cluster(key, [case(1)], NOW), key)
    assert h.check_enough(h.cluster(key, [case(1), case(2)], NOW), key).case_count == 2


def test_deciding_again_the_same_way_is_a_replay_the_other_way_a_conflict():
    h.check_decision("x", h.ACCEPTED, h.ACCEPTED)
    h.check_decision("x", h.DISMISSED, h.DISMISSED)
    with pytest.raises(Conflict) as err:
        h.check_decision("x", h.DISMISSED, h.ACCEPTED)
    assert err.value.code == "hotspot_decided" and "已被忽略" in err.value.zh


def test_the_proactive_description_quotes_the_evidence():
    cases = [case(d, rework_count=1 if d == 1 else 0) for d in range(1, 13)]
    [spot] = detect(cases)
    text = h.proactive_description(spot, "乱堆物料")
    assert text.startswith("未诉先办：本网格近4周同类问题（乱堆物料）反复出现12次（案件号：")
    assert text.endswith("等），其中返工1件，主动处置根源")
    assert text.count("YA-") == h.EVIDENCE_CASE_NOS
    small = h.proactive_description(detect(cases[1:4])[0], "乱堆物料")
    assert "等" not in small and "其中" not in small
