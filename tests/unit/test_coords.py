"""Positions from Chinese map apps: GCJ-02 (高德/腾讯/微信) and BD-09 (百度) to WGS-84,
checked against published reference points and the library's own round trip."""

from __future__ import annotations

import math

import pytest

from services.intake.coords import CoordSystem, from_wgs84, in_china, to_wgs84

# 天安门 (Tiananmen) as the three systems give it (to four decimals).
TIANANMEN = {
    CoordSystem.WGS84: (39.9087, 116.3975),
    CoordSystem.GCJ02: (39.9101, 116.4037),
    CoordSystem.BD09: (39.9165, 116.4101),
}
# Points across China (the demo district near 榆次, Shenzhen, Harbin, Urumqi, Sanya).
POINTS = [
    (37.8865, 112.536),
    (22.54, 114.06),
    (45.75, 126.63),
    (43.825, 87.617),
    (18.252, 109.512),
]


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


@pytest.mark.parametrize("system", [CoordSystem.GCJ02, CoordSystem.BD09])
def test_tiananmen_matches_the_reference_points(system):
    wgs = TIANANMEN[CoordSystem.WGS84]
    sent = from_wgs84(*wgs, system)
    assert metres(sent, TIANANMEN[system]) < 30  # the references are rounded to ~10 m
    assert metres(to_wgs84(*TIANANMEN[system], system), wgs) < 30
    # the shift is what makes a pin land in the wrong grid: hundreds of metres
    assert 400 < metres(sent, wgs) < 1500


@pytest.mark.parametrize("system", [CoordSystem.GCJ02, CoordSystem.BD09])
@pytest.mark.parametrize("point", POINTS)
def test_round_trip_is_within_a_metre(point, system):
    back = to_wgs84(*from_wgs84(*point, system), system)
    assert metres(back, point) < 1.0
    assert metres(from_wgs84(*point, system), point) > 100  # and the systems do differ


def test_wgs84_is_taken_as_sent():
    assert to_wgs84(37.8865, 112.536, CoordSystem.WGS84) == (37.8865, 112.536)


def test_outside_china_gcj02_is_wgs84():
    paris = (48.8566, 2.3522)
    assert not in_china(*paris) and in_china(37.8865, 112.536)
    assert to_wgs84(*paris, CoordSystem.GCJ02) == paris
    assert metres(to_wgs84(*from_wgs84(*paris, CoordSystem.BD09), CoordSystem.BD09), paris) < 1.0
