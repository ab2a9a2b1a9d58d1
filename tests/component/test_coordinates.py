"""Positions from Chinese map apps (issue 16 part 6), against real PostgreSQL and the real
broker: a pin from 高德/腾讯/微信 (GCJ-02) or 百度 (BD-09) is 500 m off WGS-84 near the demo
district — more than a grid (350 m × 330 m). Declared, it is converted before the grid is
located; undeclared, it would land in the wrong grid."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from services.intake import demo as jdemo
from services.intake.coords import CoordSystem, from_wgs84
from tests.helpers import bearer, fetch
from tests.intake_app import running_intake

GRID = "YA0103-07"  # south-west of 迎泽街道: both shifts stay inside the street
STREET = bearer("street", "YA/YA01", subject="yingze")  # 迎泽街道: every grid near GRID
REPORT = {"category": "E0101", "description": "路口堆放建筑垃圾"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
async def intake(pg_server, kafka_server):
    async with running_intake(pg_server, kafka_server) as (client, dsn, _):
        yield client, dsn


def pin(system: CoordSystem) -> tuple[float, float]:
    """Where a map app in ``system`` shows the middle of GRID."""
    return from_wgs84(*jdemo.centre(GRID), system)


async def located(client, lat: float, lon: float, system: str | None = None) -> str:
    params = {"lat": lat, "lon": lon, **({"coord_system": system} if system else {})}
    resp = await client.get("/areas/locate", params=params, headers=STREET)
    assert resp.status_code == 200, resp.text
    return resp.json()["code"]


@pytest.mark.parametrize("system", [CoordSystem.GCJ02, CoordSystem.BD09])
async def test_a_map_app_pin_lands_in_the_right_grid_only_when_declared(intake, system):
    client, dsn = intake
    lat, lon = pin(system)
    wrong = await located(client, lat, lon)  # taken as WGS-84: another grid
    assert wrong != GRID and wrong.startswith("YA01")
    assert await located(client, lat, lon, system.value) == GRID

    undeclared = await client.post(
        "/cases", json={**REPORT, "location": {"lat": lat, "lon": lon}}, headers=STREET
    )
    assert undeclared.status_code == 201 and undeclared.json()["grid_code"] == wrong
    declared = await client.post(
        "/cases",
        json={**REPORT, "location": {"lat": lat, "lon": lon}, "coord_system": system.value},
        headers=STREET,
    )
    assert declared.status_code == 201, declared.text
    case = declared.json()
    assert case["grid_code"] == GRID
    # stored in WGS-84 (within a metre of the grid's middle), the pin as sent kept for audit
    centre = jdemo.centre(GRID)
    assert abs(case["location"]["lat"] - centre[0]) < 1e-5
    assert abs(case["location"]["lon"] - centre[1]) < 1e-5
    assert case["position_sent"] == {"coord_system": system.value, "lat": lat, "lon": lon}
    [row] = await fetch(
        dsn, "SELECT lat, lon, position_sent FROM cases WHERE id = $1::uuid", case["id"]
    )
    assert abs(row["lat"] - centre[0]) < 1e-5 and row["position_sent"] is not None
    # the event the loop hears carries the WGS-84 point too
    [payload] = await fetch(
        dsn, "SELECT payload->'payload'->'location' AS loc FROM outbox WHERE key = $1", case["id"]
    )
    assert f"{centre[0]:.4f}" in payload["loc"]


async def test_wgs84_is_the_default_and_keeps_no_copy(intake):
    client, _ = intake
    lat, lon = jdemo.centre(GRID)
    resp = await client.post(
        "/cases", json={**REPORT, "location": {"lat": lat, "lon": lon}}, headers=STREET
    )
    assert resp.json()["grid_code"] == GRID and resp.json()["position_sent"] is None


async def test_an_unknown_coordinate_system_is_422_and_changes_nothing(intake):
    client, dsn = intake
    before = len(await fetch(dsn, "SELECT id FROM cases"))
    lat, lon = pin(CoordSystem.GCJ02)
    resp = await client.post(
        "/cases",
        json={**REPORT, "location": {"lat": lat, "lon": lon}, "coord_system": "mars"},
        headers=STREET,
    )
    assert resp.status_code == 422 and "coord_system" in resp.json()["error"]["message"]
    bad = await client.get(
        "/areas/locate", params={"lat": lat, "lon": lon, "coord_system": "wgs-84"}, headers=STREET
    )
    assert bad.status_code == 422
    assert len(await fetch(dsn, "SELECT id FROM cases")) == before


async def test_open311_and_the_hotline_take_a_declared_system(intake):
    client, _ = intake
    lat, lon = pin(CoordSystem.GCJ02)
    key = STREET["Authorization"].removeprefix("Bearer ")
    body = {"api_key": key, "service_code": "E0101", "lat": lat, "long": lon}
    filed = await client.post(
        "/open311/v2/requests.json",
        content=urlencode({**body, "coord_system": "gcj02"}),
        headers=FORM,
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()[0]["service_request_id"]
    [case] = (await client.get("/cases", params={"q": request_id}, headers=STREET)).json()
    assert case["grid_code"] == GRID
    refused = await client.post(
        "/open311/v2/requests.json",
        content=urlencode({**body, "coord_system": "mars"}),
        headers=FORM,
    )
    assert refused.status_code == 400 and "coord_system" in refused.text

    ticket = {
        "ticket_no": "12345-COORD-1",
        "category": "E0101",
        "description": "市民来电：路口堆放建筑垃圾",
        "location": {"lat": lat, "lon": lon},
        "coord_system": "gcj02",
        "received_at": "2026-12-01T09:30:00+08:00",
    }
    imported = await client.post("/cases/import/hotline", json=ticket, headers=STREET)
    assert imported.status_code == 201, imported.text
    assert imported.json()["grid_code"] == GRID and imported.json()["source"] == "hotline"
