"""Bad input on every service: a NUL character (U+0000) in any text input is refused with
422 ``nul_character`` before anything is written (PostgreSQL's text cannot hold it; it used
to answer 500) — in a JSON body field, a query parameter, a path parameter, a form field."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance
from sse_starlette import EventSourceResponse

from shared.auth import Principal, Role, Rule, mint
from shared.demo import USERS
from tests.four_services import Service, four_services
from tests.helpers import TEST_KEYS, as_user, settled, token

ADMIN, COMMAND, TAOYUAN = as_user("admin"), as_user("command"), as_user("taoyuan")
EN = {"Accept-Language": "en"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REPORT = {
    "grid_code": "YA0101-03",
    "category": "E0101",
    "description": "楼道堆放杂物",
    "priority": "normal",
}


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
    await refused(
        intake,
        "POST",
        "/cases",
        "body.description",
        headers=TAOYUAN,
        json={**REPORT, "description": "楼道\x00杂物"},
    )
    await refused(
        intake,
        "POST",
        "/cases",
        "body.location.address",
        headers=TAOYUAN,
        json={**REPORT, "location": {"address": "3号楼\x00"}},
    )
    await refused(intake, "GET", "/cases", "query.q", headers=COMMAND, params={"q": "垃圾\x00"})
    await refused(intake, "PUT", "/areas/YA01%00", "path", headers=ADMIN, json={"name": "迎泽"})
    key = token("community", "YA/YA01/YA0101", subject="taoyuan", name="桃园社区书记")
    form = {
        "api_key": key,
        "service_code": "E0101",
        "lat": "37.7",
        "long": "-122.4",
        "description": "路面\x00塌陷",
        "attribute[grid_code]": "YA0101-01",
    }
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
    await refused(
        dispatch,
        "PUT",
        "/departments/cg",
        "body.name",
        headers=ADMIN,
        json={**body, "name": "城管\x00局"},
    )
    await refused(
        dispatch,
        "GET",
        "/routing-rules",
        "query.category",
        headers=ADMIN,
        params={"category": "E01\x00"},
    )
    await refused(dispatch, "PUT", "/departments/cg%00", "path", headers=ADMIN, json=body)
    await refused(
        dispatch,
        "POST",
        "/routing-rules",
        "form.category",
        headers={**ADMIN, **FORM},
        data={"category": "E01\x00", "department_id": "cg"},
    )


async def test_tracking_refuses_nul(services) -> None:
    tracking = services["tracking"]
    case_id = uuid.uuid4()
    await refused(
        tracking,
        "POST",
        f"/cases/{case_id}/urge",
        "body.note",
        headers=COMMAND,
        json={"note": "请尽快\x00处理"},
    )
    await refused(
        tracking, "GET", "/overdue", "query.area", headers=COMMAND, params={"area": "YA\x00"}
    )
    await refused(tracking, "GET", "/sla/policy-versions/1%00", "path", headers=ADMIN)
    await refused(
        tracking,
        "POST",
        f"/cases/{case_id}/urge",
        "form.note",
        headers={**COMMAND, **FORM},
        data={"note": "请尽快\x00处理"},
    )


async def test_notify_refuses_nul(services) -> None:
    notify = services["notify"]
    recipient = {
        "id": "nul-test",
        "name": "值班室\x00",
        "kind": "department",
        "department_id": "cg",
    }
    await refused(notify, "POST", "/recipients", "body.name", headers=ADMIN, json=recipient)
    await refused(
        notify,
        "GET",
        "/deliveries",
        "query.recipient_id",
        headers=ADMIN,
        params={"recipient_id": "cg\x00"},
    )
    await refused(
        notify,
        "PUT",
        "/recipients/nul%00test",
        "path",
        headers=ADMIN,
        json={**recipient, "name": "值班室"},
    )
    await refused(
        notify,
        "POST",
        "/recipients",
        "form.name",
        headers={**ADMIN, **FORM},
        data={"id": "nul-test", "name": "值班室\x00", "kind": "department"},
    )


async def test_intake_keeps_nul_bytes_of_an_uploaded_file(services) -> None:
    """A file part is bytes, and an image is full of zero bytes: only text fields are checked."""
    intake = services["intake"]
    case = await intake.client.post("/cases", json=REPORT, headers=TAOYUAN)
    assert case.status_code == 201, case.text
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 0)).save(buf, format="PNG")
    assert b"\x00" in buf.getvalue()
    resp = await intake.client.post(
        f"/cases/{case.json()['id']}/photos",
        params={"kind": "before"},
        headers=TAOYUAN,
        files={"file": ("photo.png", buf.getvalue(), "image/png")},
    )
    assert resp.status_code in (200, 201), resp.text
    # The new case travels through the services and back to intake: let it arrive first,
    # so the row counts below see only what the refused request might have changed.
    await settled(s.dsn for s in services.values())
    # ... but a text part of the same multipart form may not hold NUL.
    await refused(
        intake,
        "POST",
        f"/cases/{case.json()['id']}/photos",
        "form.note",
        params={"kind": "before"},
        headers=TAOYUAN,
        data={"note": "前\x00"},
        files={"file": ("photo.png", buf.getvalue(), "image/png")},
    )


async def test_a_nul_free_request_still_works(services) -> None:
    """The check is no filter on ordinary text: an escaped backslash is not NUL."""
    resp = await services["intake"].client.post(
        "/cases", json={**REPORT, "description": "路径 C:\\u0000 是文字"}, headers=TAOYUAN
    )
    assert resp.status_code == 201, resp.text
    case = await services["intake"].client.get(f"/cases/{resp.json()['id']}", headers=TAOYUAN)
    assert case.json()["description"] == "路径 C:\\u0000 是文字"


# --- schemathesis: every operation of the four OpenAPI documents ---------------------------

# Per operation and generation mode (valid input, then invalid input). Derandomized: the
# same requests on every run, so a finding is reproducible and the budget is fixed.
EXAMPLES = 10
# A live stream (text/event-stream) ends when the token that opened it expires
# (shared/sse.py): its calls carry a token that expires within STREAM_TOKEN_SECONDS (a
# token's expiry is in whole seconds: 1-2 s from now), fewer examples, sent together.
STREAM_EXAMPLES = 5
STREAM_TOKEN_SECONDS = 2
# A made-up path id finds nothing (404) and no stream opens: the valid examples of a stream
# are also sent once more with a path id that exists and the caller may read (demo data).
KNOWN_PATH_PARAMETERS = {"recipient_id": "sup-district"}
CHECKS = [not_a_server_error, response_schema_conformance]
# Who calls: for each route, a demo user whose role its rule admits (the broadest first),
# so the generated calls reach the handlers instead of stopping at 401/403.
CALLERS = ["admin", "command", "supervisor", "yingze", "taoyuan", "wangfang", "cg-duty"]


def rule_of(route: APIRoute) -> Rule | None:
    todo = [route.dependant]
    while todo:
        dependant = todo.pop()
        if isinstance(dependant.call, Rule):
            return dependant.call
        todo.extend(dependant.dependencies)
    return None


def caller_for(route: APIRoute, ttl_seconds: int | None = None) -> dict[str, str]:
    rule = rule_of(route)
    if rule is None or rule.public:
        return {}
    users = {u.subject: u for u in USERS}
    subject = next((s for s in CALLERS if Role(users[s].role) in rule.roles), "admin")
    if ttl_seconds is None:
        return as_user(subject)
    user = users[subject]
    principal = Principal(
        subject=user.subject,
        name=user.name,
        role=Role(user.role),
        area=user.area,
        department_id=user.department_id,
        grids=user.grids,
    )
    return {"Authorization": f"Bearer {mint(TEST_KEYS, principal, ttl_seconds)}"}


def routes_by_operation(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    found: dict[tuple[str, str], APIRoute] = {}
    stack = list(app.routes)
    while stack:
        route = stack.pop(0)
        if isinstance(route, APIRoute):
            for method in route.methods:
                found[(method, route.path_format)] = route
        elif hasattr(route, "original_router"):
            stack[:0] = list(route.original_router.routes)
    return found


def draw(operation: Any, mode: GenerationMode, examples: int = EXAMPLES) -> list[Any]:
    cases: list[Any] = []

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(operation.as_strategy(generation_mode=mode))
    def collect(case: Any) -> None:
        cases.append(case)

    try:
        collect()
    except hypothesis.errors.Unsatisfiable:
        return []  # invalid input is impossible: an operation without parameters or body
    return cases[:examples]


async def send(
    client: httpx.AsyncClient, case: Any, headers: dict[str, str]
) -> httpx.Response | None:
    """The generated request, encoded as schemathesis encodes it; None if no HTTP client
    could send it (e.g. a header value with a line break)."""
    kwargs = case.as_transport_kwargs(base_url="http://test", headers=headers)
    fields = ("method", "url", "headers", "params", "data", "json", "files", "cookies")
    try:
        prepared = requests.Request(**{k: kwargs[k] for k in fields if k in kwargs}).prepare()
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        return await client.request(
            prepared.method or "GET",
            prepared.url or "",
            headers=dict(prepared.headers),
            content=body,
        )
    except (
        requests.RequestException,
        httpx.InvalidURL,
        httpx.LocalProtocolError,
        ValueError,
        UnicodeError,
    ):
        return None


def pin_path(operation: Any, case: Any) -> Any | None:
    """``case`` with its path parameters set to ids that exist, or None if it has none."""
    known = {k: v for k, v in KNOWN_PATH_PARAMETERS.items() if k in (case.path_parameters or {})}
    if not known:
        return None
    return operation.Case(
        path_parameters={**case.path_parameters, **known},
        headers=dict(case.headers or {}),
        cookies=case.cookies,
        query=case.query,
    )


async def send_stream(
    client: httpx.AsyncClient, case: Any, route: APIRoute
) -> tuple[httpx.Response | None, float]:
    """A live stream's call with a token about to expire, and how long it took to end (the
    ASGI transport answers once the app has sent the whole response)."""
    started = time.monotonic()
    async with asyncio.timeout(STREAM_TOKEN_SECONDS + 15):  # a stream that never ends fails
        response = await send(client, case, caller_for(route, STREAM_TOKEN_SECONDS))
    return response, time.monotonic() - started


async def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(services) -> None:
    """Every operation of the four OpenAPI documents, valid and invalid input: no 5xx and
    every documented response matches its schema. Live event streams (text/event-stream)
    too: they are called with a token that expires within seconds, and a stream ends when
    its token expires."""
    started = time.monotonic()
    findings: list[str] = []
    figures = {
        "operations": 0,
        "requests": 0,
        "unsendable": 0,
        "stream_operations": 0,
        "stream_requests": 0,
        "live_streams": 0,
    }
    longest_stream = stream_seconds = 0.0
    stream_statuses: dict[str, int] = {}
    for name, service in services.items():
        # A 500 must come back as a response to check, not as the app's exception.
        client = httpx.AsyncClient(
            base_url="http://test",
            transport=httpx.ASGITransport(app=service.app, raise_app_exceptions=False),
        )
        schema = schemathesis.openapi.from_dict(service.app.openapi())
        routes = routes_by_operation(service.app)
        for result in schema.get_all_operations():
            operation = result.ok()
            route = routes[(operation.method.upper(), operation.path)]
            streams = route.response_class is EventSourceResponse
            figures["stream_operations" if streams else "operations"] += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if streams:
                    # Each call lasts until its token expires: sent together, not in turn.
                    cases = draw(operation, mode, STREAM_EXAMPLES)
                    if mode is GenerationMode.POSITIVE:
                        cases += [pinned for c in cases if (pinned := pin_path(operation, c))]
                    at = time.monotonic()
                    sent = await asyncio.gather(*(send_stream(client, c, route) for c in cases))
                    stream_seconds += time.monotonic() - at
                else:
                    headers = caller_for(route)
                    cases = draw(operation, mode)
                    sent = [(await send(client, c, headers), 0.0) for c in cases]
                for case, (response, seconds) in zip(cases, sent, strict=True):
                    if response is None:
                        figures["unsendable"] += 1
                        continue
                    figures["stream_requests" if streams else "requests"] += 1
                    if streams:
                        key = f"{operation.path} {response.status_code}"
                        stream_statuses[key] = stream_statuses.get(key, 0) + 1
                    if streams and response.status_code == 200:
                        assert response.headers["content-type"].startswith("text/event-stream"), (
                            response.headers
                        )
                        figures["live_streams"] += 1
                        longest_stream = max(longest_stream, seconds)
                    try:
                        case.validate_response(response, checks=CHECKS)
                    except (Exception, BaseExceptionGroup) as failure:  # FailureGroup
                        findings.append(
                            f"{name} {operation.label} [{mode.value}] "
                            f"{response.status_code}: {str(failure)[:600]}"
                        )
        await client.aclose()
    print(
        f"schemathesis: {figures} streams: {stream_statuses} (longest {longest_stream:.1f} s, "
        f"all streams {stream_seconds:.1f} s) in "
        f"{time.monotonic() - started:.0f} s"
    )
    assert not findings, f"{len(findings)} findings:\n" + "\n\n".join(findings)
    # Both streams were opened for real (200), not only refused.
    assert {k.split()[0] for k in stream_statuses if k.endswith(" 200")} == {
        "/boards/stream",
        "/recipients/{recipient_id}/stream",
    }
    # A stream opened with a token 1-2 s from expiry ends by then (plus a heartbeat's slack).
    assert longest_stream <= STREAM_TOKEN_SECONDS + 3
