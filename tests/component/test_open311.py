"""Open311 GeoReport v2 over intake, against real PostgreSQL and the real broker: a client
files and reads requests exactly as the spec's examples do (form-encoded POST with api_key,
``.json``/``.xml`` suffixes, GeoReport's error arrays)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from shared import demo
from tests.intake_app import running_intake
from tests.helpers import bearer, fetchval, token, truncate

V2 = "/open311/v2"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
# 桃园社区 (YA/YA01/YA0101) signs in with its own token, used as GeoReport's api_key.
KEY = token("community", "YA/YA01/YA0101", subject="taoyuan", name="桃园社区书记")
LEAVES = sorted(code for code, _, parent in demo.CATEGORIES if parent)


def spec_example(**change: str) -> str:
    """The body of the spec's POST example (its parameters in its order), filing into our
    grid YA0101-01 through GeoReport's attribute mechanism."""
    params = {
        "api_key": KEY,
        "jurisdiction_id": "city.gov",
        "service_code": "E0101",
        "lat": "37.76524078",
        "long": "-122.4212043",
        "address_string": "1234 5th street",
        "email": "smit333@sfgov.edu",
        "device_id": "tt222111",
        "account_id": "123456",
        "first_name": "明",
        "last_name": "李",
        "phone": "111111111",
        "description": "A large sinkhole is destroying the street",
        "media_url": "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
        "attribute[grid_code]": "YA0101-01",
    }
    params.update(change)
    return urlencode({k: v for k, v in params.items() if v is not None})


@pytest.fixture(scope="module")
async def open311_app(pg_server, kafka_server):
    async with running_intake(pg_server, kafka_server, report_rate_limit_per_minute=50) as (
        client,
        dsn,
        _settings,
    ):
        yield client, dsn


@pytest.fixture
async def open311(open311_app):
    """One app for the module; each test starts from empty case tables."""
    _, dsn = open311_app
    await truncate(dsn, "cases", "idempotency_keys", "outbox", "inbox")
    return open311_app


async def nothing_written(dsn: str) -> bool:
    return (await fetchval(dsn, "SELECT count(*) FROM cases")) == 0 and (
        await fetchval(dsn, "SELECT count(*) FROM outbox")
    ) == 0


async def file(client, fmt: str = "json", **change: str):
    return await client.post(f"{V2}/requests.{fmt}", content=spec_example(**change), headers=FORM)


def georeport_error(resp, status: int) -> str:
    """The GeoReport error array (JSON); returns the descriptions joined."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert isinstance(body, list) and body, body
    assert all(e["code"] == status and " / " in e["description"] for e in body), body
    return " | ".join(e["description"] for e in body)


# --- services (public) ---------------------------------------------------------------------


async def test_service_list_and_definitions_are_public_in_both_formats(open311):
    client, _ = open311
    resp = await client.get(f"{V2}/services.json", params={"jurisdiction_id": "city.gov"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    services = resp.json()
    assert [s["service_code"] for s in services] == LEAVES
    pile = next(s for s in services if s["service_code"] == "E0101")
    assert pile["service_name"] == "乱堆物料" and pile["group"] == "事件·市容环境"
    assert pile["metadata"] is True and pile["type"] == "realtime"

    xml = await client.get(f"{V2}/services.xml")
    assert xml.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(xml.content)
    assert root.tag == "services"
    assert [s.findtext("service_code") for s in root.findall("service")] == LEAVES

    definition = (await client.get(f"{V2}/services/E0101.json")).json()
    assert definition["service_code"] == "E0101"
    assert [a["code"] for a in definition["attributes"]] == ["grid_code", "priority"]
    xml_def = ET.fromstring((await client.get(f"{V2}/services/E0101.xml")).content)
    assert xml_def.findtext("attributes/attribute/code") == "grid_code"

    assert "Z9999" in georeport_error(await client.get(f"{V2}/services/Z9999.json"), 404)
    georeport_error(await client.get(f"{V2}/services/E01.json"), 404)  # a group, not a service
    missing = ET.fromstring((await client.get(f"{V2}/services/Z9999.xml")).content)
    assert missing.tag == "errors" and missing.findtext("error/code") == "404"

    discovery = (await client.get("/open311/discovery.json")).json()
    assert discovery["endpoints"][0]["url"].endswith(V2)
    assert ET.fromstring((await client.get("/open311/discovery.xml")).content).tag == "discovery"


# --- filing and reading, as the spec's examples do -----------------------------------------


async def test_files_and_reads_a_request_exactly_as_the_spec_examples(open311):
    client, dsn = open311
    before = datetime.now(UTC)
    resp = await file(client)
    assert resp.status_code == 201, resp.text
    [answer] = resp.json()
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    request_id = answer["service_request_id"]
    assert request_id.startswith("YA") and answer["account_id"] == "taoyuan"
    assert resp.headers["Location"] == f"{V2}/requests/{request_id}.json"

    got = await client.get(
        f"{V2}/requests/{request_id}.json", params={"api_key": KEY, "jurisdiction_id": "city.gov"}
    )
    assert got.status_code == 200, got.text
    [request] = got.json()
    assert request["service_request_id"] == request_id
    assert request["status"] == "open" and request["status_notes"] == "已上报"
    assert request["service_code"] == "E0101" and request["service_name"] == "乱堆物料"
    assert request["description"] == "A large sinkhole is destroying the street"
    assert request["agency_responsible"] == "桃园社区"
    assert request["expected_datetime"] is None
    assert request["address"] == "1234 5th street"
    assert (request["lat"], request["long"]) == (37.76524078, -122.4212043)
    assert request["media_url"] is None and request["zipcode"] is None
    requested = datetime.fromisoformat(request["requested_datetime"])
    assert requested.tzinfo is not None and before - timedelta(seconds=5) <= requested
    assert datetime.fromisoformat(request["updated_datetime"]) >= requested

    # Filed through intake's own report: the case, its reporter, its event.
    assert (
        await fetchval(dsn, "SELECT reporter FROM cases WHERE case_no = $1", request_id) == "李明"
    )
    assert (
        await fetchval(dsn, "SELECT grid_code FROM cases WHERE case_no = $1", request_id)
        == "YA0101-01"
    )
    assert await fetchval(dsn, "SELECT array_agg(type) FROM outbox") == ["case.reported"]

    case_id = await fetchval(dsn, "SELECT id FROM cases WHERE case_no = $1", request_id)
    by_uuid = await client.get(f"{V2}/requests/{case_id}.json", params={"api_key": KEY})
    assert by_uuid.json() == got.json()
    tokens = await client.get(f"{V2}/tokens/{case_id}.json", params={"api_key": KEY})
    assert tokens.json() == [{"service_request_id": request_id, "token": str(case_id)}]


async def test_the_xml_variant(open311):
    client, _ = open311
    resp = await file(client, "xml", **{"attribute[priority]": "urgent"})
    assert resp.status_code == 201 and resp.headers["content-type"] == "text/xml; charset=utf-8"
    assert resp.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    filed = ET.fromstring(resp.content)
    assert filed.tag == "service_requests"
    request_id = filed.findtext("request/service_request_id")
    assert filed.findtext("request/service_notice").startswith("急事急议")

    got = ET.fromstring(
        (await client.get(f"{V2}/requests/{request_id}.xml", params={"api_key": KEY})).content
    )
    request = got.find("request")
    assert request.findtext("status") == "open" and request.findtext("service_code") == "E0101"
    assert request.find("expected_datetime") is not None  # present, empty
    assert request.findtext("expected_datetime") == ""
    listed = ET.fromstring(
        (await client.get(f"{V2}/requests.xml", params={"api_key": KEY})).content
    )
    assert [r.findtext("service_request_id") for r in listed.findall("request")] == [request_id]


async def test_a_point_inside_a_grid_needs_no_grid_code_nor_description(open311):
    from services.intake import demo as jurisdiction_demo  # boundary placement

    client, dsn = open311
    lat, lon = jurisdiction_demo.centre("YA0101-02")
    resp = await file(
        client, lat=str(lat), long=str(lon), description=None, **{"attribute[grid_code]": None}
    )
    assert resp.status_code == 201, resp.text
    request_id = resp.json()[0]["service_request_id"]
    assert (
        await fetchval(dsn, "SELECT grid_code FROM cases WHERE case_no = $1", request_id)
        == "YA0101-02"
    )
    # GeoReport's description is optional; ours is not: the service's name stands in.
    assert (
        await fetchval(dsn, "SELECT description FROM cases WHERE case_no = $1", request_id)
        == "乱堆物料"
    )


async def test_the_bearer_header_works_too_and_a_retry_with_the_same_key_is_one_case(open311):
    client, dsn = open311
    headers = {**FORM, "Authorization": f"Bearer {KEY}", "Idempotency-Key": "311-1"}
    body = spec_example(api_key=None)
    first = await client.post(f"{V2}/requests.json", content=body, headers=headers)
    second = await client.post(f"{V2}/requests.json", content=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 1


async def test_list_filters(open311):
    client, dsn = open311
    pile = (await file(client)).json()[0]["service_request_id"]
    lamp = (await file(client, service_code="C0101")).json()[0]["service_request_id"]
    await fetchval(
        dsn, "UPDATE cases SET status = 'closed', closed_at = now() WHERE case_no = $1", lamp
    )

    async def ids(**params) -> list[str]:
        resp = await client.get(f"{V2}/requests.json", params={"api_key": KEY, **params})
        assert resp.status_code == 200, resp.text
        return [r["service_request_id"] for r in resp.json()]

    assert await ids() == [lamp, pile]  # newest first
    assert await ids(service_code="E0101") == [pile]
    assert await ids(service_code="E0101,C0101") == [lamp, pile]
    assert await ids(status="closed") == [lamp]
    assert await ids(status="open") == [pile]
    now = datetime.now(UTC)
    window = {
        "start_date": (now - timedelta(hours=1)).isoformat(),
        "end_date": (now + timedelta(hours=1)).isoformat(),
    }
    assert await ids(**window) == [lamp, pile]
    assert await ids(start_date="2020-01-01T00:00:00Z", end_date="2020-02-01T00:00:00Z") == []
    assert await ids(service_request_id=f"{pile},nope", status="closed") == [pile]
    assert await ids(page_size="1", page="2") == [pile]
    closed = (
        await client.get(f"{V2}/requests.json", params={"api_key": KEY, "status": "closed"})
    ).json()[0]
    assert closed["status"] == "closed" and closed["status_notes"] == "已结案"

    for bad in (
        {"status": "pending"},
        {"start_date": "2026-01-01"},
        {"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-06-01T00:00:00Z"},
    ):
        resp = await client.get(f"{V2}/requests.json", params={"api_key": KEY, **bad})
        georeport_error(resp, 400)


async def test_tokens_and_unknown_requests(open311):
    client, _ = open311
    georeport_error(await client.get(f"{V2}/tokens/12345.json", params={"api_key": KEY}), 404)
    georeport_error(
        await client.get(f"{V2}/tokens/{uuid.uuid4()}.json", params={"api_key": KEY}), 404
    )
    georeport_error(
        await client.get(f"{V2}/requests/YA19990101-0001.json", params={"api_key": KEY}), 404
    )


# --- bad input: a GeoReport error, and nothing written -------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "needle"),
    [
        ({"service_code": "Z9999"}, 404, "service_code 'Z9999' not found"),
        ({"service_code": "E01"}, 404, "service_code 'E01' not found"),
        ({"service_code": None}, 400, "service_code is required"),
        ({"attribute[grid_code]": None, "lat": None, "long": None}, 400, "attribute[grid_code]"),
        ({"attribute[grid_code]": None}, 400, "not inside any grid"),
        ({"attribute[grid_code]": "NOPE"}, 400, "unknown grid 'NOPE'"),
        ({"lat": None, "long": None, "address_string": None}, 400, "location is required"),
        ({"long": None}, 400, "lat and long must be sent together"),
        ({"lat": "north"}, 400, "lat must be a number"),
        ({"attribute[priority]": "asap"}, 400, "attribute[priority]"),
    ],
)
async def test_bad_requests_are_refused_and_change_nothing(open311, change, status, needle):
    client, dsn = open311
    description = georeport_error(await file(client, **change), status)
    assert needle in description
    assert await nothing_written(dsn)


async def test_a_json_body_is_refused_with_how_to_send_it(open311):
    client, dsn = open311
    resp = await client.post(
        f"{V2}/requests.json",
        json={"service_code": "E0101"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert "x-www-form-urlencoded" in georeport_error(resp, 400)
    assert await nothing_written(dsn)


async def test_several_problems_come_back_as_several_errors(open311):
    client, dsn = open311
    body = urlencode({"api_key": KEY, "lat": "1"})
    resp = await client.post(f"{V2}/requests.json", content=body, headers=FORM)
    georeport_error(resp, 400)
    assert len(resp.json()) == 3
    assert await nothing_written(dsn)


# --- who may call ----------------------------------------------------------------------------


async def test_no_or_bad_key_is_401_in_georeport_format(open311):
    client, dsn = open311
    expired = token("community", "YA/YA01/YA0101", ttl=-10)
    # (no key at all is a resident's own report: tests/component/test_resident_reports.py)
    for key, needle in (("garbage", "invalid token"), (expired, "expired")):
        resp = await file(client, api_key=key)
        assert needle in georeport_error(resp, 401)
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    xml = await file(client, "xml", api_key="garbage")
    assert xml.status_code == 401 and ET.fromstring(xml.content).findtext("error/code") == "401"
    assert "send api_key=<token>" in georeport_error(await client.get(f"{V2}/requests.json"), 401)
    georeport_error(await client.get(f"{V2}/requests/x.json"), 401)
    georeport_error(await client.get(f"{V2}/tokens/{uuid.uuid4()}.json"), 401)
    georeport_error(await client.get(f"{V2}/requests/x.json", params={"api_key": "garbage"}), 401)
    assert await nothing_written(dsn)


async def test_roles_and_scope(open311):
    client, dsn = open311
    request_id = (await file(client)).json()[0]["service_request_id"]
    department = token("department", "YA", department_id="cg")
    supervisor = token("supervisor", "YA/YA01")
    other_street = token("street", "YA/YA02")
    outside_worker = token(
        "grid_worker", "YA/YA02/YA0201/YA0201-01", grids=("YA/YA02/YA0201/YA0201-01",)
    )

    assert "role" in georeport_error(await file(client, api_key=department), 403)
    assert "role" in georeport_error(await file(client, api_key=supervisor), 403)
    assert "YA0101-01" in georeport_error(await file(client, api_key=outside_worker), 403)
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 1

    one = f"{V2}/requests/{request_id}.json"
    assert (await client.get(one, params={"api_key": supervisor})).status_code == 200
    assert "YA/YA01/YA0101/YA0101-01" in georeport_error(
        await client.get(one, params={"api_key": other_street}), 403
    )
    georeport_error(await client.get(one, params={"api_key": department}), 403)
    listed = await client.get(f"{V2}/requests.json", params={"api_key": other_street})
    assert listed.status_code == 200 and listed.json() == []
    worker = await client.get(f"{V2}/requests.json", params={"api_key": outside_worker})
    assert worker.json() == []
    street = await client.get(f"{V2}/requests.json", headers=bearer("street", "YA/YA01"))
    assert [r["service_request_id"] for r in street.json()] == [request_id]


async def test_expected_datetime_and_agency_follow_the_dispatch(open311):
    client, dsn = open311
    [answer] = (await file(client)).json()
    request_id = answer["service_request_id"]
    # What intake learns from dispatch (assigned departments) and tracking (the sign-for
    # deadline, and the resolution forecast: expected_datetime is the latter, never the former).
    expected = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    await fetchval(
        dsn,
        "UPDATE cases SET assigned_departments = '{cg}',"
        " deadline_at = now() + interval '30 minutes', expected_resolution_at = $2,"
        " expected_basis = 'history' WHERE case_no = $1",
        request_id,
        expected,
    )
    one = f"{V2}/requests/{request_id}.json"
    [request] = (await client.get(one, params={"api_key": KEY})).json()
    assert datetime.fromisoformat(request["expected_datetime"]) == expected
    assert request["agency_responsible"] == "cg"
    # a forecast gone stale while the case is open is not shown as a past time
    await fetchval(
        dsn,
        "UPDATE cases SET expected_resolution_at = now() - interval '1 hour' WHERE case_no = $1",
        request_id,
    )
    [request] = (await client.get(one, params={"api_key": KEY})).json()
    assert request["expected_datetime"] is None
