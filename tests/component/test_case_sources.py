"""Where every case came from (案件来源, issue 16 part 5) and the 12345 hotline import
(接诉即办), against real PostgreSQL and the real broker."""

from __future__ import annotations

import json

import pytest

from services.intake import demo as jdemo
from tests.helpers import bearer, fetch, fetchval, truncate
from tests.intake_app import running_intake

COMMUNITY = bearer("community", "YA/YA01/YA0101", subject="taoyuan")
REPORT = {"grid_code": "YA0101-03", "category": "E0101", "description": "楼道堆放杂物"}
TICKET = {
    "ticket_no": "GD20261201000123",
    "category": "E0101",
    "description": "市民来电反映：桃园小区5号楼楼道堆放杂物，影响通行",
    "priority": "normal",
    "location": {"address": "桃园小区5号楼"},
    "grid_code": "YA0101-03",
    "received_at": "2026-12-01T09:30:00+08:00",
    "caller": "张先生",
    "caller_contact": "13812345678",
}


@pytest.fixture(scope="module")
async def intake_app(pg_server, kafka_server):
    async with running_intake(pg_server, kafka_server) as (client, dsn, _):
        yield client, dsn


@pytest.fixture
async def intake(intake_app):
    _, dsn = intake_app
    await truncate(dsn, "cases", "idempotency_keys", "hotline_tickets", "outbox")
    return intake_app


async def reported_source(dsn: str, case_id: str) -> str:
    payload = await fetchval(
        dsn, "SELECT payload FROM outbox WHERE key = $1 AND type = 'case.reported'", case_id
    )
    return json.loads(payload)["payload"]["source"]


async def test_a_report_records_its_source_default_grid_patrol(intake):
    client, dsn = intake
    patrol = (await client.post("/cases", json=REPORT, headers=COMMUNITY)).json()
    assert (patrol["source"], patrol["source_label"]) == ("grid_patrol", "网格巡查")
    assert await reported_source(dsn, patrol["id"]) == "grid_patrol"

    resp = await client.post("/cases", json={**REPORT, "source": "wechat_group"}, headers=COMMUNITY)
    assert resp.status_code == 201
    chat = resp.json()
    assert (chat["source"], chat["source_label"]) == ("wechat_group", "微信群")
    assert await reported_source(dsn, chat["id"]) == "wechat_group"
    read = (await client.get(f"/cases/{chat['id']}", headers=COMMUNITY)).json()
    assert read["source"] == "wechat_group"

    listed = await client.get("/cases", params={"source": "wechat_group"}, headers=COMMUNITY)
    assert [c["id"] for c in listed.json()] == [chat["id"]]
    both = await client.get("/cases", headers=COMMUNITY)
    assert {c["source"] for c in both.json()} == {"grid_patrol", "wechat_group"}


async def test_an_unknown_or_reserved_source_is_422_and_changes_nothing(intake):
    client, dsn = intake
    unknown = await client.post("/cases", json={**REPORT, "source": "tv_news"}, headers=COMMUNITY)
    assert unknown.status_code == 422 and "source" in unknown.json()["error"]["message"]
    proactive = await client.post(
        "/cases", json={**REPORT, "source": "proactive"}, headers=COMMUNITY
    )
    assert proactive.status_code == 422
    assert proactive.json()["error"]["code"] == "invalid_source"
    assert "未诉先办" in proactive.json()["error"]["message"]
    en = await client.post(
        "/cases",
        json={**REPORT, "source": "proactive"},
        headers={**COMMUNITY, "Accept-Language": "en"},
    )
    assert "cannot declare source 'proactive'" in en.json()["error"]["message"]
    bad_filter = await client.get("/cases", params={"source": "tv_news"}, headers=COMMUNITY)
    assert bad_filter.status_code == 422
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 0


async def test_a_hotline_ticket_becomes_a_case_once(intake):
    client, dsn = intake
    first = await client.post("/cases/import/hotline", json=TICKET, headers=COMMUNITY)
    assert first.status_code == 201, first.text
    case = first.json()
    assert case["source"] == "hotline" and case["ticket_no"] == TICKET["ticket_no"]
    assert case["grid_code"] == "YA0101-03" and case["status"] == "reported"
    assert case["reporter"] == "12345热线（张先生）"
    assert case["reported_at"].startswith("2026-12-01T01:30:00")  # the call, not the import
    assert first.headers["Location"] == f"/cases/{case['id']}"
    assert await reported_source(dsn, case["id"]) == "hotline"
    # the caller's number is kept masked only
    [row] = await fetch(dsn, "SELECT caller_contact FROM hotline_tickets")
    assert row["caller_contact"] == "138****5678"

    again = await client.post("/cases/import/hotline", json=TICKET, headers=COMMUNITY)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == case["id"]
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 1
    assert await fetchval(dsn, "SELECT count(*) FROM outbox") == 1

    changed = await client.post(
        "/cases/import/hotline", json={**TICKET, "description": "另一件事"}, headers=COMMUNITY
    )
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "hotline_ticket_differs"
    assert case["case_no"] in changed.json()["error"]["message"]
    listed = await client.get("/cases", params={"source": "hotline"}, headers=COMMUNITY)
    assert [c["id"] for c in listed.json()] == [case["id"]]


async def test_a_hotline_ticket_is_placed_by_its_position(intake):
    client, _ = intake
    lat, lon = jdemo.centre("YA0101-04")
    ticket = {
        **TICKET,
        "ticket_no": "GD-2",
        "grid_code": None,
        "location": {"lat": lat, "lon": lon},
    }
    resp = await client.post("/cases/import/hotline", json=ticket, headers=COMMUNITY)
    assert resp.status_code == 201 and resp.json()["grid_code"] == "YA0101-04"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"ticket_no": ""}, "ticket_no"),
        ({"ticket_no": "含 空格"}, "ticket_no"),
        ({"received_at": "2999-01-01T00:00:00+08:00"}, "received_at"),
        ({"received_at": "2026-12-01T09:30:00"}, "received_at"),  # no timezone
        ({"grid_code": None}, "grid_code"),  # and no point
        ({"category": "Z9999"}, "Z9999"),
        ({"coord_system": "mars"}, "coord_system"),
        ({"source": "resident"}, "source"),  # not a field of a ticket
    ],
)
async def test_a_bad_ticket_is_refused_and_changes_nothing(intake, change, needle):
    client, dsn = intake
    resp = await client.post("/cases/import/hotline", json={**TICKET, **change}, headers=COMMUNITY)
    assert resp.status_code == 422, resp.text
    assert needle in resp.json()["error"]["message"]
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 0
    assert await fetchval(dsn, "SELECT count(*) FROM hotline_tickets") == 0


async def test_who_may_import(intake):
    client, dsn = intake
    worker = bearer("grid_worker", "YA/YA01/YA0101/YA0101-03", grids=("YA/YA01/YA0101/YA0101-03",))
    assert (
        await client.post("/cases/import/hotline", json=TICKET, headers=worker)
    ).status_code == 403
    other = bearer("community", "YA/YA02/YA0201")
    resp = await client.post("/cases/import/hotline", json=TICKET, headers=other)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "out_of_scope"
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 0
    district = bearer("district", "YA")
    assert (
        await client.post("/cases/import/hotline", json=TICKET, headers=district)
    ).status_code == 201
    # an imported ticket is not shown to a centre outside its grid either
    again = await client.post("/cases/import/hotline", json=TICKET, headers=other)
    assert again.status_code == 403
