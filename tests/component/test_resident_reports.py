"""A resident's own report (群众上报, issue 16 part 5), against real PostgreSQL and the real
broker: Open311 without a token, rate-limited; the case waits (待核实) for the grid
worker's on-site check and enters the loop only when he accepts it; dismissed (不予受理),
the resident reads the reason on his request. Nobody without a key reads anything else."""

from __future__ import annotations

import io
import json
import uuid
from urllib.parse import urlencode

import pytest
from PIL import Image

from services.intake import demo as jdemo
from tests.helpers import bearer, fetch, fetchval, truncate
from tests.intake_app import running_intake

V2 = "/open311/v2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GRID = "YA/YA01/YA0101/YA0101-03"
WORKER = bearer("grid_worker", GRID, subject="wangfang", name="王芳", grids=(GRID,))
OTHER_WORKER = bearer(
    "grid_worker", "YA/YA01/YA0101/YA0101-01", grids=("YA/YA01/YA0101/YA0101-01",)
)
COMMUNITY = bearer("community", "YA/YA01/YA0101", subject="taoyuan")


def form(**change: str | None) -> str:
    lat, lon = jdemo.centre("YA0101-03")
    params: dict[str, str | None] = {
        "service_code": "E0101",
        "lat": str(lat),
        "long": str(lon),
        "address_string": "桃园小区5号楼2单元",
        "description": "单元门口堆放装修垃圾",
        "first_name": "明",
        "last_name": "李",
        "phone": "13912345678",
        "device_id": f"phone-{uuid.uuid4()}",
    }
    params.update(change)
    return urlencode({k: v for k, v in params.items() if v is not None})


@pytest.fixture(scope="module")
async def intake_app(pg_server, kafka_server):
    async with running_intake(
        pg_server,
        kafka_server,
        resident_reports_per_hour_per_client=6,
        resident_reports_per_hour_per_sender=2,
    ) as (client, dsn, _):
        yield client, dsn


@pytest.fixture
async def intake(intake_app):
    _, dsn = intake_app
    await truncate(dsn, "cases", "idempotency_keys", "resident_reports", "outbox")
    return intake_app


async def file(client, fmt: str = "json", headers: dict | None = None, **change: str | None):
    return await client.post(
        f"{V2}/requests.{fmt}", content=form(**change), headers={**FORM, **(headers or {})}
    )


async def events(dsn: str) -> list[dict]:
    rows = await fetch(dsn, "SELECT type, payload FROM outbox ORDER BY id")
    return [{"type": r["type"], **json.loads(r["payload"])["payload"]} for r in rows]


async def test_a_resident_files_without_a_token_and_follows_it_with_his_own(intake):
    client, dsn = intake
    resp = await file(client)
    assert resp.status_code == 201, resp.text
    [answer] = resp.json()
    request_id, receipt = answer["service_request_id"], answer["token"]
    assert request_id.startswith("YA") and len(receipt) >= 32
    assert "网格员将到现场核实" in answer["service_notice"]
    [case] = await fetch(dsn, "SELECT status, source, reporter, reported_by FROM cases")
    assert dict(case) == {
        "status": "to_verify",
        "source": "resident",
        "reporter": "李明",
        "reported_by": "resident",
    }
    [report] = await fetch(dsn, "SELECT contact, client_key, device_key FROM resident_reports")
    assert report["contact"] == "139****5678" and "127.0.0.1" not in report["client_key"]
    assert await events(dsn) == []  # not in the loop until verified

    mine = await client.get(f"{V2}/requests/{request_id}.json", params={"token": receipt})
    assert mine.status_code == 200, mine.text
    [view] = mine.json()
    assert (view["status"], view["status_notes"]) == ("open", "待核实")
    token = await client.get(f"{V2}/tokens/{receipt}.json")
    assert token.json() == [{"service_request_id": request_id, "token": receipt}]
    xml = await client.get(f"{V2}/requests/{request_id}.xml", params={"token": receipt})
    assert xml.status_code == 200 and b"<status>open</status>" in xml.content


async def test_without_a_key_nothing_else_can_be_read(intake):
    client, _ = intake
    staff = (
        await client.post(
            "/cases",
            json={"grid_code": "YA0101-03", "category": "E0101", "description": "私密"},
            headers=COMMUNITY,
        )
    ).json()
    answer = (await file(client)).json()[0]
    receipt = answer["token"]
    for path, params in (
        (f"{V2}/requests.json", {}),
        (f"{V2}/requests.json", {"token": receipt}),
        (f"{V2}/requests/{staff['case_no']}.json", {}),
        (f"{V2}/requests/{staff['id']}.json", {}),
        (f"{V2}/tokens/{staff['id']}.json", {}),
    ):
        resp = await client.get(path, params=params)
        assert resp.status_code == 401, (path, resp.status_code, resp.text)
    # a receipt opens its own request only; a made-up one opens nothing
    other = await client.get(f"{V2}/requests/{staff['case_no']}.json", params={"token": receipt})
    assert other.status_code == 404 and "私密" not in other.text
    made_up = await client.get(f"{V2}/tokens/{'x' * 32}.json")
    assert made_up.status_code == 404
    # the staff routes need a staff token as before
    assert (await client.get("/resident-reports")).status_code == 401
    assert (await client.get(f"/cases/{staff['id']}")).status_code == 401


async def test_a_bad_key_is_never_taken_for_a_resident(intake):
    client, dsn = intake
    for headers in ({"Authorization": "Bearer garbage"},):
        assert (await file(client, headers=headers)).status_code == 401
    assert (await file(client, api_key="garbage")).status_code == 401
    department = bearer("department", "YA", department_id="cg")
    assert (await file(client, headers=department)).status_code == 403
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 0


async def test_rate_limited_per_device_and_per_address(intake):
    client, dsn = intake
    assert (await file(client, device_id="d-1")).status_code == 201
    assert (await file(client, device_id="d-1")).status_code == 201
    third = await file(client, device_id="d-1")
    assert third.status_code == 429, third.text
    assert 1 <= int(third.headers["Retry-After"]) <= 3601
    [error] = third.json()
    assert error["code"] == 429 and "每小时最多 2 件" in error["description"]
    assert "at most 2 an hour" in error["description"]
    # the e-mail counts like a device
    assert (await file(client, device_id=None, email="LI@example.cn")).status_code == 201
    assert (await file(client, device_id=None, email="li@example.cn")).status_code == 201
    assert (await file(client, device_id=None, email="li@example.cn")).status_code == 429
    # and one address at most 6 an hour, whatever the devices
    assert (await file(client)).status_code == 201
    assert (await file(client)).status_code == 201
    over = await file(client, "xml")
    assert over.status_code == 429 and b"<code>429</code>" in over.content
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 6


async def test_the_grid_worker_sees_and_accepts_it_then_the_loop_starts(intake):
    client, dsn = intake
    answer = (await file(client)).json()[0]
    listed = await client.get("/resident-reports", headers=WORKER)
    [item] = listed.json()
    assert item["case_no"] == answer["service_request_id"]
    assert item["status"] == "to_verify" and item["status_label"] == "待核实"
    assert item["verification"]["state"] == "pending"
    assert item["verification"]["contact"] == "139****5678"
    assert (await client.get("/resident-reports", headers=OTHER_WORKER)).json() == []
    case_id = item["id"]

    # not whistled, fixed or dispatched before it is verified
    whistle = await client.post(f"/cases/{case_id}/whistle", json={}, headers=COMMUNITY)
    assert whistle.status_code == 409
    outside = await client.post(
        f"/resident-reports/{case_id}/accept", json={}, headers=OTHER_WORKER
    )
    assert outside.status_code == 403

    accepted = await client.post(
        f"/resident-reports/{case_id}/accept",
        json={"priority": "urgent", "category": "E0102", "note": "现场属实"},
        headers=WORKER,
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert (body["status"], body["priority"], body["category"]) == ("reported", "urgent", "E0102")
    assert body["verification"]["state"] == "accepted"
    assert body["verification"]["decided_by_name"] == "王芳"
    [reported] = await events(dsn)
    assert reported["type"] == "case.reported" and reported["source"] == "resident"
    assert reported["priority"] == "urgent" and reported["reporter"] == "李明"
    again = await client.post(f"/resident-reports/{case_id}/accept", json={}, headers=WORKER)
    assert again.status_code == 409
    assert len(await events(dsn)) == 1
    whistled = await client.post(f"/cases/{case_id}/whistle", json={}, headers=COMMUNITY)
    assert whistled.status_code == 200
    pending = await client.get("/resident-reports", headers=WORKER)
    assert pending.json() == []
    done = await client.get("/resident-reports", params={"state": "accepted"}, headers=WORKER)
    assert [r["id"] for r in done.json()] == [case_id]


async def test_dismissed_the_resident_reads_why(intake):
    client, dsn = intake
    first = await client.post(
        "/cases",
        json={"grid_code": "YA0101-03", "category": "E0101", "description": "装修垃圾"},
        headers=COMMUNITY,
    )
    answer = (await file(client)).json()[0]
    [item] = (await client.get("/resident-reports", headers=WORKER)).json()
    url = f"/resident-reports/{item['id']}/dismiss"

    for bad, code in (
        ({"reason": "duplicate"}, "duplicate_of_required"),
        ({"reason": "other"}, "note_required"),
        ({"reason": "duplicate", "duplicate_of": item["id"]}, "duplicate_of_itself"),
    ):
        resp = await client.post(url, json=bad, headers=WORKER)
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, code)
    assert (await client.post(url, json={"reason": "spam"}, headers=WORKER)).status_code == 422

    resp = await client.post(
        url,
        json={"reason": "duplicate", "duplicate_of": first.json()["id"], "note": "已在处理"},
        headers=WORKER,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "closed" and body["verification"]["reason_label"] == "重复上报"
    assert body["verification"]["duplicate_case_no"] == first.json()["case_no"]
    mine = await client.get(
        f"{V2}/requests/{answer['service_request_id']}.json", params={"token": answer["token"]}
    )
    [view] = mine.json()
    assert view["status"] == "closed"
    assert view["status_notes"].startswith(
        f"不予受理：重复上报（原案件 {first.json()['case_no']}）"
    )
    assert (
        "已在处理" in view["status_notes"] and "not taken on: a duplicate" in view["status_notes"]
    )
    # never in the loop: only the staff report's event; not rated, not reopened
    assert [e["type"] for e in await events(dsn)] == ["case.reported"]
    rate = await client.post(f"/cases/{item['id']}/rating", json={"score": 5}, headers=WORKER)
    assert rate.status_code == 409
    reopen = await client.post(
        f"/cases/{item['id']}/reopen", json={"reason": "还在"}, headers=COMMUNITY
    )
    assert reopen.status_code == 409
    accept = await client.post(f"/resident-reports/{item['id']}/accept", json={}, headers=WORKER)
    assert accept.status_code == 409


async def test_a_retry_with_the_same_key_is_one_report(intake):
    client, dsn = intake
    body = form(device_id="d-retry")
    headers = {**FORM, "Idempotency-Key": "resident-1"}
    first = await client.post(f"{V2}/requests.json", content=body, headers=headers)
    second = await client.post(f"{V2}/requests.json", content=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 1


async def test_a_report_outside_every_grid_is_refused(intake):
    client, dsn = intake
    resp = await file(client, lat="30.0", long="120.0")
    assert resp.status_code in (400, 404, 422), resp.text
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 0


async def test_nothing_reaches_the_loop_before_verification(intake):
    """No photo (its event would name a case nobody else knows yet) and no merge into it."""
    client, dsn = intake
    (await file(client)).json()
    [item] = (await client.get("/resident-reports", headers=WORKER)).json()
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(buf, "PNG")
    photo = await client.post(
        f"/cases/{item['id']}/photos",
        params={"kind": "before"},
        files={"file": ("p.png", buf.getvalue(), "image/png")},
        headers=WORKER,
    )
    assert photo.status_code == 409 and "待核实" in photo.json()["error"]["message"]
    staff = await client.post(
        "/cases",
        json={"grid_code": "YA0101-03", "category": "E0101", "description": "装修垃圾"},
        headers=COMMUNITY,
    )
    merge = await client.post(
        f"/cases/{staff.json()['id']}/merge",
        json={"primary_case_id": item["id"]},
        headers=COMMUNITY,
    )
    assert merge.status_code == 409
    assert [e["type"] for e in await events(dsn)] == ["case.reported"]  # the staff report's
