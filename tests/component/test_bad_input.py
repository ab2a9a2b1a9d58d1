"""Bad input on every service: a NUL character (U+0000) in any text input is refused with
422 ``nul_character`` before anything is written (PostgreSQL's text cannot hold it; it used
to answer 500) — in a JSON body field, a query parameter, a path parameter, a form field."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from PIL import Image

from tests.four_services import Service, four_services
from tests.helpers import as_user, token

ADMIN, COMMAND, TAOYUAN = as_user("admin"), as_user("command"), as_user("taoyuan")
EN = {"Accept-Language": "en"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REPORT = {"grid_code": "YA0101-03", "category": "E0101", "description": "楼道堆放杂物",
          "priority": "normal"}


@pytest.fixture(scope="module")
async def services(pg_server, kafka_server):
    async with four_services(pg_server, kafka_server) as running:
        yield running


async def refused(service: Service, method: str, url: str, where: str, **kwargs: Any) -> None:
    """The request answers 422 nul_character naming ``where`` (Chinese first, English on
    request) and leaves every table of the service as it was."""
    before = await service.row_counts()
    headers = kwargs.pop("headers", {})
    zh = await service.client.request(method, url, headers=headers, **kwargs)
    en = await service.client.request(method, url, headers={**headers, **EN}, **kwargs)
    for resp in (zh, en):
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == "nul_character", resp.text
        assert where in resp.json()["error"]["message"]
    assert "不允许包含空字符" in zh.json()["error"]["message"]
    assert "NUL character (U+0000) is not allowed" in en.json()["error"]["message"]
    assert await service.row_counts() == before


async def test_intake_refuses_nul(services) -> None:
    intake = services["intake"]
    await refused(intake, "POST", "/cases", "body.description", headers=TAOYUAN,
                  json={**REPORT, "description": "楼道\x00杂物"})
    await refused(intake, "POST", "/cases", "body.location.address", headers=TAOYUAN,
                  json={**REPORT, "location": {"address": "3号楼\x00"}})
    await refused(intake, "GET", "/cases", "query.q", headers=COMMAND, params={"q": "垃圾\x00"})
    await refused(intake, "PUT", "/areas/YA01%00", "path", headers=ADMIN, json={"name": "迎泽"})
    key = token("community", "YA/YA01/YA0101", subject="taoyuan", name="桃园社区书记")
    form = {"api_key": key, "service_code": "E0101", "lat": "37.7", "long": "-122.4",
            "description": "路面\x00塌陷", "attribute[grid_code]": "YA0101-01"}
    # GeoReport (Open311) answers in its own shape, with its status for invalid input (400).
    before = await intake.row_counts()
    resp = await intake.client.post("/open311/v2/requests.json", headers=FORM, data=form)
    assert resp.status_code == 400, resp.text
    assert "form.description: 不允许包含空字符" in resp.json()[0]["description"]
    assert await intake.row_counts() == before


async def test_dispatch_refuses_nul(services) -> None:
    dispatch = services["dispatch"]
    department = (await dispatch.client.get("/departments/cg", headers=ADMIN)).json()
    body = {k: department[k] for k in ("name", "kind", "area_path") if k in department}
    await refused(dispatch, "PUT", "/departments/cg", "body.name", headers=ADMIN,
                  json={**body, "name": "城管\x00局"})
    await refused(dispatch, "GET", "/routing-rules", "query.category", headers=ADMIN,
                  params={"category": "E01\x00"})
    await refused(dispatch, "PUT", "/departments/cg%00", "path", headers=ADMIN, json=body)
    await refused(dispatch, "POST", "/routing-rules", "form.category", headers={**ADMIN, **FORM},
                  data={"category": "E01\x00", "department_id": "cg"})


async def test_tracking_refuses_nul(services) -> None:
    tracking = services["tracking"]
    case_id = uuid.uuid4()
    await refused(tracking, "POST", f"/cases/{case_id}/urge", "body.note", headers=COMMAND,
                  json={"note": "请尽快\x00处理"})
    await refused(tracking, "GET", "/overdue", "query.area", headers=COMMAND,
                  params={"area": "YA\x00"})
    await refused(tracking, "GET", "/sla/policy-versions/1%00", "path", headers=ADMIN)
    await refused(tracking, "POST", f"/cases/{case_id}/urge", "form.note",
                  headers={**COMMAND, **FORM}, data={"note": "请尽快\x00处理"})


async def test_notify_refuses_nul(services) -> None:
    notify = services["notify"]
    recipient = {"id": "nul-test", "name": "值班室\x00", "kind": "department",
                 "department_id": "cg"}
    await refused(notify, "POST", "/recipients", "body.name", headers=ADMIN, json=recipient)
    await refused(notify, "GET", "/deliveries", "query.recipient_id", headers=ADMIN,
                  params={"recipient_id": "cg\x00"})
    await refused(notify, "PUT", "/recipients/nul%00test", "path", headers=ADMIN,
                  json={**recipient, "name": "值班室"})
    await refused(notify, "POST", "/recipients", "form.name", headers={**ADMIN, **FORM},
                  data={"id": "nul-test", "name": "值班室\x00", "kind": "department"})


async def test_intake_keeps_nul_bytes_of_an_uploaded_file(services) -> None:
    """A file part is bytes, and an image is full of zero bytes: only text fields are checked."""
    intake = services["intake"]
    case = await intake.client.post("/cases", json=REPORT, headers=TAOYUAN)
    assert case.status_code == 201, case.text
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 0)).save(buf, format="PNG")
    assert b"\x00" in buf.getvalue()
    resp = await intake.client.post(
        f"/cases/{case.json()['id']}/photos", params={"kind": "before"}, headers=TAOYUAN,
        files={"file": ("photo.png", buf.getvalue(), "image/png")})
    assert resp.status_code in (200, 201), resp.text
    # ... but a text part of the same multipart form may not hold NUL.
    await refused(intake, "POST", f"/cases/{case.json()['id']}/photos", "form.note",
                  params={"kind": "before"}, headers=TAOYUAN, data={"note": "前\x00"},
                  files={"file": ("photo.png", buf.getvalue(), "image/png")})


async def test_a_nul_free_request_still_works(services) -> None:
    """The check is no filter on ordinary text: an escaped backslash is not NUL."""
    resp = await services["intake"].client.post(
        "/cases", json={**REPORT, "description": "路径 C:\\u0000 是文字"}, headers=TAOYUAN)
    assert resp.status_code == 201, resp.text
    case = await services["intake"].client.get(f"/cases/{resp.json()['id']}", headers=TAOYUAN)
    assert case.json()["description"] == "路径 C:\\u0000 是文字"

