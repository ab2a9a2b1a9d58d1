"""Open311 GeoReport v2 mapping: services, the POST form, GET arguments, a case as a service
request, and the two formats. No infrastructure."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.intake.domain import open311 as domain
from services.intake.domain.open311 import CaseView, Category, Refused
from services.intake.api.open311.formats import errors, render, to_xml
from shared import demo
from shared.errors import NotFound

CATALOGUE = [Category(*c) for c in demo.CATEGORIES]
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)

# The GeoReport v2 spec's example POST, with our grid attribute added.
SPEC_FORM = {
    "api_key": "xyz",
    "jurisdiction_id": "city.gov",
    "service_code": "E0101",
    "lat": "37.76524078",
    "long": "-122.4212043",
    "address_string": "1234 5th street",
    "email": "smit333@sfgov.edu",
    "device_id": "tt222111",
    "account_id": "123456",
    "first_name": "john",
    "last_name": "smith",
    "phone": "111111111",
    "description": "A large sinkhole is destroying the street",
    "media_url": "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
    "attribute[grid_code]": "YA0101-01",
}


# --- services ------------------------------------------------------------------------------


def test_services_are_the_leaf_categories_grouped_by_their_parent():
    services = domain.services(CATALOGUE)
    leaves = sorted(c.code for c in CATALOGUE if c.parent_code)
    assert [s["service_code"] for s in services] == leaves
    lamp = next(s for s in services if s["service_code"] == "C0101")
    assert lamp == {
        "service_code": "C0101",
        "service_name": "路灯损坏",
        "description": "部件·公用设施：路灯损坏",
        "metadata": True,
        "type": "realtime",
        "keywords": "路灯损坏, 公用设施",
        "group": "部件·公用设施",
    }


def test_a_top_level_category_without_children_is_a_service_without_group():
    services = domain.services([Category("X01", "其他", None)])
    assert services[0]["service_code"] == "X01" and services[0]["group"] is None


def test_find_service_refuses_groups_and_unknown_codes():
    assert domain.find_service(CATALOGUE, "E0101")["service_name"] == "乱堆物料"
    for code in ("E01", "Z9999"):
        with pytest.raises(NotFound) as err:
            domain.find_service(CATALOGUE, code)
        assert err.value.code == "service_not_found" and code in err.value.zh


def test_service_definition_declares_grid_and_priority_attributes():
    definition = domain.service_definition("E0101")
    assert definition["service_code"] == "E0101"
    grid, priority = definition["attributes"]
    assert (grid["code"], grid["datatype"], grid["order"]) == ("grid_code", "string", 1)
    assert priority["datatype"] == "singlevaluelist" and priority["required"] is False
    assert [v["key"] for v in priority["values"]] == ["urgent", "normal", "minor"]


def test_discovery_names_the_spec_and_both_formats():
    doc = domain.discovery("http://x/open311/v2", production=False)
    endpoint = doc["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["type"] == "test" and endpoint["url"] == "http://x/open311/v2"
    assert set(endpoint["formats"]) == {"application/json", "text/xml"}
    assert domain.discovery("u", production=True)["endpoints"][0]["type"] == "production"


# --- POST requests -------------------------------------------------------------------------


def test_the_spec_example_form_becomes_a_report():
    new = domain.parse_new_request(SPEC_FORM)
    assert new == domain.NewRequest(
        service_code="E0101",
        grid_code="YA0101-01",
        description="A large sinkhole is destroying the street",
        priority="normal",
        lat=37.76524078,
        long=-122.4212043,
        address="1234 5th street",
        reporter="john smith",
        # kept for a resident's report (the rate limit counts device and e-mail; the phone,
        # masked, is how the grid worker calls back)
        device_id=SPEC_FORM["device_id"],
        email=SPEC_FORM["email"],
        phone=SPEC_FORM["phone"],
    )


def test_coord_system_is_checked():
    assert domain.parse_new_request({**SPEC_FORM, "coord_system": "GCJ02"}).coord_system == "gcj02"
    with pytest.raises(Refused) as err:
        domain.parse_new_request({**SPEC_FORM, "coord_system": "mars"})
    assert "coord_system" in err.value.zh and "coord_system" in err.value.en


def test_a_point_alone_is_enough_the_grid_is_found_by_boundary():
    form = {k: v for k, v in SPEC_FORM.items() if k != "attribute[grid_code]"}
    assert domain.parse_new_request(form).grid_code is None


def test_an_address_needs_a_grid_code():
    form = {"service_code": "E0101", "address_string": "桃园小区3号楼"}
    with pytest.raises(Refused) as err:
        domain.parse_new_request(form)
    assert len(err.value.problems) == 1
    zh, en = err.value.problems[0]
    assert "attribute[grid_code]" in zh and "attribute[grid_code]" in en
    assert domain.parse_new_request({**form, "attribute[grid_code]": "YA0101-01"}).lat is None


def test_empty_parameters_count_as_not_sent():
    form = {
        **SPEC_FORM,
        "description": "  ",
        "first_name": "",
        "last_name": "",
        "attribute[priority]": "",
    }
    new = domain.parse_new_request(form)
    assert new.description is None and new.reporter is None and new.priority == "normal"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"service_code": ""}, "service_code"),
        ({"lat": "north"}, "lat"),
        ({"lat": "91"}, "lat"),
        ({"long": "nan"}, "long"),
        ({"long": ""}, "lat and long"),
        ({"lat": "", "long": "", "address_string": ""}, "location"),
        ({"attribute[priority]": "asap"}, "priority"),
        ({"description": "x" * 2001}, "description"),
        ({"address_string": "x" * 501}, "address_string"),
    ],
)
def test_bad_forms_are_refused_saying_what_is_wrong(change, needle):
    with pytest.raises(Refused) as err:
        domain.parse_new_request({**SPEC_FORM, **change})
    assert err.value.status_code == 400
    assert any(needle in en for _, en in err.value.problems), err.value.problems


def test_every_problem_is_reported_at_once():
    with pytest.raises(Refused) as err:
        domain.parse_new_request({"lat": "1"})
    english = " | ".join(en for _, en in err.value.problems)
    assert "service_code" in english and "together" in english and "grid" in english
    assert len(err.value.problems) == 3


@pytest.mark.parametrize(
    ("first", "last", "name"),
    [
        ("明", "李", "李明"),
        ("john", "smith", "john smith"),
        (None, "王", "王"),
        ("Mary", None, "Mary"),
        (None, None, None),
        ("a" * 40, "b" * 40, ("a" * 40 + " " + "b" * 23)),
    ],
)
def test_reporter_name(first, last, name):
    assert domain.reporter_name(first, last) == name


def test_filed_answer_has_an_id_and_no_token():
    answer = domain.filed("YA20261122-0001", "urgent", "taoyuan")
    assert answer["service_request_id"] == "YA20261122-0001" and "token" not in answer
    assert answer["service_notice"].startswith("急事急议") and answer["account_id"] == "taoyuan"


# --- GET requests --------------------------------------------------------------------------


def test_query_defaults_to_the_last_90_days_and_1000_requests():
    q = domain.parse_query({}, NOW)
    assert (q.start, q.end) == (NOW - timedelta(days=90), NOW)
    assert (q.limit, q.offset, q.closed, q.service_codes) == (1000, 0, None, ())


def test_query_filters():
    q = domain.parse_query(
        {
            "service_code": "E0101, C0101",
            "status": "closed",
            "start_date": "2026-11-01T00:00:00Z",
            "page": "3",
            "page_size": "20",
        },
        NOW,
    )
    assert q.service_codes == ("E0101", "C0101") and q.closed is True
    assert q.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert q.end == q.start + timedelta(days=90)
    assert (q.limit, q.offset) == (20, 40)
    assert domain.parse_query({"status": "open"}, NOW).closed is False
    assert domain.parse_query({"status": "open,closed"}, NOW).closed is None
    only_end = domain.parse_query({"end_date": "2026-11-01T08:00:00+08:00"}, NOW)
    assert only_end.end - only_end.start == timedelta(days=90)


def test_service_request_id_overrides_every_other_argument():
    case_id = uuid4()
    q = domain.parse_query(
        {
            "service_request_id": f"YA20261122-0001,{case_id}",
            "status": "whatever",
            "start_date": "junk",
        },
        NOW,
    )
    assert q.case_nos == ("YA20261122-0001",) and q.case_ids == (case_id,)
    assert q.start is None and q.closed is None


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"status": "pending"}, "status"),
        ({"start_date": "2026-11-01"}, "timezone"),
        ({"end_date": "yesterday"}, "end_date"),
        ({"start_date": "2026-11-02T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}, "after"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}, "90 days"),
        ({"page_size": "1001"}, "page_size"),
        ({"page": "0"}, "page"),
    ],
)
def test_bad_queries_are_refused(params, needle):
    with pytest.raises(Refused) as err:
        domain.parse_query(params, NOW)
    assert needle in err.value.en


def test_parse_ref_and_token():
    case_id = uuid4()
    assert domain.parse_ref(str(case_id)) == case_id
    assert domain.parse_ref("YA20261122-0001") == "YA20261122-0001"
    assert domain.token_id(str(case_id)) == case_id
    with pytest.raises(NotFound):
        domain.token_id("12345")


# --- a case as a service request -----------------------------------------------------------

CASE = CaseView(
    id=uuid4(),
    case_no="YA20261122-0001",
    area_path="YA/YA01/YA0101/YA0101-01",
    category="E0101",
    category_name="乱堆物料",
    description="楼下空地乱堆建筑垃圾",
    priority="normal",
    lat=37.7,
    lon=112.7,
    address="桃园小区3号楼",
    status="reported",
    departments=[],
    community_name="桃园社区",
    reported_at=NOW,
    updated_at=NOW + timedelta(hours=1),
    closed_at=None,
)


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("reported", "open"),
        ("whistled", "open"),
        ("unroutable", "open"),
        ("dispatched", "open"),
        ("signed_for", "open"),
        ("resolved", "open"),
        ("closed", "closed"),
        ("rework", "open"),
    ],
)
def test_only_closed_is_closed(status, shown):
    assert domain.open_or_closed(status) == shown


def test_a_case_reads_as_a_service_request():
    request = domain.service_request(CASE)
    assert request == {
        "service_request_id": "YA20261122-0001",
        "status": "open",
        "status_notes": "已上报",
        "service_name": "乱堆物料",
        "service_code": "E0101",
        "description": "楼下空地乱堆建筑垃圾",
        "agency_responsible": "桃园社区",
        "service_notice": domain.NOTICES["normal"],
        "requested_datetime": "2026-11-22T11:00:00+08:00",
        "updated_datetime": "2026-11-22T12:00:00+08:00",
        "expected_datetime": None,
        "address": "桃园小区3号楼",
        "address_id": None,
        "zipcode": None,
        "lat": 37.7,
        "long": 112.7,
        "media_url": None,
    }


def test_closed_case_shows_its_closing_time_and_the_departments():
    closed = replace(
        CASE,
        status="closed",
        departments=["cg", "zj"],
        closed_at=NOW + timedelta(days=1),
        updated_at=NOW + timedelta(days=2),
    )
    request = domain.service_request(closed)
    assert request["status"] == "closed" and request["status_notes"] == "已结案"
    assert request["updated_datetime"] == "2026-11-23T11:00:00+08:00"
    assert request["agency_responsible"] == "cg、zj"
    assert datetime.fromisoformat(request["requested_datetime"]) == NOW
    assert domain.agency_responsible([], None) == "社区"


# --- the formats ---------------------------------------------------------------------------


def test_xml_follows_the_spark_convention():
    services = domain.services(CATALOGUE)[:2]
    root = ET.fromstring(to_xml("services", services))
    assert root.tag == "services" and [e.tag for e in root] == ["service", "service"]
    assert root[0].findtext("service_code") == services[0]["service_code"]
    assert root[0].findtext("metadata") == "true"
    definition = ET.fromstring(to_xml("service_definition", domain.service_definition("E0101")))
    values = definition.findall("attributes/attribute/values/value")
    assert [v.findtext("key") for v in values] == ["urgent", "normal", "minor"]
    request = ET.fromstring(to_xml("service_requests", [domain.service_request(CASE)]))
    assert request.find("request/expected_datetime").text is None
    assert to_xml("errors", []).startswith(b'<?xml version="1.0" encoding="utf-8"?>')


def test_errors_in_both_formats():
    problems = [("缺少 service_code", "service_code is required")]
    as_json = errors("json", 400, problems)
    assert as_json.status_code == 400 and as_json.media_type.startswith("application/json")
    assert json.loads(as_json.body) == [
        {"code": 400, "description": "缺少 service_code / service_code is required"}
    ]
    as_xml = ET.fromstring(errors("xml", 404, problems).body)
    assert as_xml.tag == "errors" and as_xml.findtext("error/code") == "404"
    assert render("xml", "services", []).media_type == "text/xml; charset=utf-8"


def test_our_errors_become_georeport_errors():
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from services.intake.api.open311.formats import error_response
    from shared.auth import Unauthenticated
    from shared.errors import Invalid, RateLimited

    unknown_grid = error_response("json", Invalid("网格“X”不存在", "unknown grid 'X'"))
    assert unknown_grid.status_code == 400  # GeoReport: 400 for any other bad request
    assert json.loads(unknown_grid.body) == [
        {"code": 400, "description": "网格“X”不存在 / unknown grid 'X'"}
    ]
    anonymous = error_response("xml", Unauthenticated("需要登录", "authentication required"))
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
    busy = error_response("json", RateLimited("太频繁", "too many", retry_after=60))
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "60"
    invalid = error_response(
        "json", RequestValidationError([{"loc": ("query", "page"), "msg": "bad", "type": "x"}])
    )
    assert invalid.status_code == 400 and "page" in json.loads(invalid.body)[0]["description"]
    assert error_response("json", HTTPException(413, "too big")).status_code == 413
    assert error_response("json", RuntimeError("boom")) is None  # the app answers 500
