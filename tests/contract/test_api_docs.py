"""The API documentation surface of every app, in process (no broker, no database): the
OpenAPI document declares the bearer scheme on exactly the operations that need it, the
AsyncAPI document lists every event a service publishes and the payload of every message it
consumes, and the docs pages load nothing from another host."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from shared import api_docs
from shared.broker import consumers_of
from shared.contract import EVENT_TYPES, Topics
from stack.stack import CONSOLE, SERVICES, module_of

DSN = "postgresql://x@127.0.0.1:1/x"
# The topic each service publishes on (notify publishes nothing).
OWN_TOPIC = {"intake": Topics.INTAKE, "dispatch": Topics.DISPATCH, "tracking": Topics.TRACKING}


def make_app(app: str, **settings: Any) -> FastAPI:
    module = module_of(app)
    config = importlib.import_module(f"{module}.config")
    values = {"environment": "test", "database_url": DSN, "log_json": False, **settings}
    return importlib.import_module(f"{module}.main").create_app(config.Settings(**values))


@pytest.fixture(scope="module")
def apps() -> dict[str, FastAPI]:
    return {app: make_app(app) for app in (*SERVICES, CONSOLE)}


async def get(app: FastAPI, path: str) -> httpx.Response:
    """Without the lifespan: the docs need neither the database nor the broker."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


def titles(schema: dict[str, Any], doc: dict[str, Any]) -> set[str]:
    """The event classes an envelope schema's payload may hold."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][unquote(schema["$ref"].rsplit("/", 1)[1])]
    payload = schema
    options = payload["properties"]["payload"]["anyOf"]
    return {option["$ref"].rsplit("/", 1)[1] for option in options}


def contract_classes(topic: str) -> set[str]:
    return {cls.__name__ for cls in EVENT_TYPES.values() if topic == cls.TOPIC}


@pytest.mark.parametrize("service", SERVICES)
async def test_asyncapi_lists_every_published_event_and_every_consumed_payload(apps, service):
    app = apps[service]
    doc = (await get(app, "/asyncapi.json")).json()
    messages = doc["components"]["messages"]
    published = {k: m for k, m in messages.items() if k.endswith(":Message")}
    if service in OWN_TOPIC:
        (message,) = published.values()
        assert titles(message["payload"], doc) == contract_classes(OWN_TOPIC[service])
    else:
        assert published == {}
    assert "EmptyPayload" not in json.dumps(doc), "a message without its payload"
    consumers = consumers_of(app.state.runtime.broker)
    assert consumers, "every service consumes something"
    subscribed = {k: m for k, m in messages.items() if k.endswith(":SubscribeMessage")}
    expected: dict[str, set[str]] = {}
    for consumer in consumers:
        for topic in consumer.topics:
            key = api_docs._subscribe_key(consumer.service, consumer.name, topic, consumer.topics)
            expected[key] = {c.__name__ for c in consumer._handlers if topic == c.TOPIC}
    assert {k: titles(m["payload"], doc) for k, m in subscribed.items()} == expected


def test_the_intake_counts_the_issue_names():
    assert len(contract_classes(Topics.INTAKE)) == 8
    assert len(contract_classes(Topics.DISPATCH)) == 12
    assert len(contract_classes(Topics.TRACKING)) == 7


@pytest.mark.parametrize("app_name", (*SERVICES, CONSOLE))
async def test_openapi_declares_the_bearer_scheme_on_secured_operations(apps, app_name):
    app = apps[app_name]
    doc = (await get(app, "/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["bearerAuth"] == api_docs.BEARER_SCHEME
    expected: dict[tuple[str, str], bool] = {}
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if isinstance(original, APIRoute) and original.include_in_schema:
            rules = api_docs.rules_of(route.dependant)
            for method in route.methods or ():
                expected[(route.path_format, method.lower())] = any(not r.public for r in rules)
    security = {
        (path, method): op.get("security")
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    found = {k: v is not None and {"bearerAuth": []} in v for k, v in security.items()}
    assert found == expected
    assert any(found.values()), "nothing secured: the scheme is declared on nothing"
    for path in ("/livez", "/readyz"):
        assert not found[(path, "get")], f"{path} is public"
    schemes = doc["components"]["securitySchemes"]
    if app_name != "intake":
        assert set(schemes) == {"bearerAuth"}
        assert all(v in (None, [{"bearerAuth": []}]) for v in security.values())
        return
    # Open311 discovery is public; its requests also take GeoReport's api_key, and filing a
    # request or reading one's own (a resident) needs no credential at all.
    assert not found[("/open311/discovery.json", "get")]
    assert security[("/cases", "post")] == [{"bearerAuth": []}]
    assert schemes["open311ApiKey"] == {
        "type": "apiKey",
        "in": "query",
        "name": "api_key",
        "description": schemes["open311ApiKey"]["description"],
    }
    key, resident = {"open311ApiKey": []}, {}
    assert security[("/open311/v2/requests.json", "post")] == [{"bearerAuth": []}, key, resident]
    assert security[("/open311/v2/requests.json", "get")] == [{"bearerAuth": []}, key]
    open311 = [v for (p, _), v in security.items() if p.startswith("/open311/v2/") and v]
    assert len(open311) >= 4 and all(key in v for v in open311)  # the services list is public


def test_the_bearer_check_can_fail():
    """A route without a rule is not marked; one with an allow() rule is."""
    from fastapi import Depends

    from shared.auth import PUBLIC, Role, allow

    app = FastAPI(docs_url=None, redoc_url=None)
    app.get("/open", dependencies=[Depends(PUBLIC)])(lambda: 1)
    app.get("/closed", dependencies=[Depends(allow(Role.ADMIN))])(lambda: 1)
    api_docs.declare_bearer(app)
    paths = app.openapi()["paths"]
    assert "security" not in paths["/open"]["get"]
    assert paths["/closed"]["get"]["security"] == [{"bearerAuth": []}]


ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.mark.parametrize(
    ("app_name", "page"),
    [*((s, p) for s in SERVICES for p in ("/docs", "/asyncapi")), (CONSOLE, "/docs")],
)
async def test_docs_pages_load_only_local_assets(apps, app_name, page):
    app = apps[app_name]
    response = await get(app, page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"https?://", html), "an asset from another host"
    assert "<script>" not in html, "an inline script (the gateway's CSP refuses it)"
    assets = [a for a in ASSET.findall(html) if not a.startswith("data:")]
    assert len(assets) == 3  # stylesheet, viewer, the script that starts it
    for asset in assets:
        served = await get(app, "/" + asset)  # relative to the page, which is at the root
        assert served.status_code == 200, asset
        assert "charset=utf-8" in served.headers["content-type"], asset
        assert len(served.content) > 1000 or asset.endswith("-init.js")
    document = re.search(r'data-(?:openapi|spec)-url="([^"]+)"', html)
    assert document and (await get(app, "/" + document.group(1))).status_code == 200


async def test_docs_are_not_served_in_production():
    prod = make_app("intake", environment="production", auth_secret=secrets.token_urlsafe(36))
    for path in ("/docs", "/asyncapi", "/asyncapi.json", "/openapi.json"):
        assert (await get(prod, path)).status_code == 404, path


# --- in a browser, with every request to another host refused ------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(apps) -> Iterator[dict[str, str]]:
    """intake and the gateway on loopback (no lifespan: the pages need no database)."""
    urls, servers, threads = {}, [], []
    for name in ("intake", CONSOLE):
        port = _free_port()
        config = uvicorn.Config(
            apps[name], host="127.0.0.1", port=port, lifespan="off", log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append(server)
        threads.append(thread)
        urls[name] = f"http://127.0.0.1:{port}"
    for url in urls.values():
        for _ in range(100):
            try:
                httpx.get(url + "/livez", timeout=1)
                break
            except httpx.HTTPError:
                threading.Event().wait(0.1)
    yield urls
    for server in servers:
        server.should_exit = True
    for thread in threads:
        thread.join(timeout=10)


async def test_the_pages_render_offline_in_a_browser(served):
    from playwright.async_api import expect

    from tests.e2e.console import assert_offline, launch_browser, new_context

    async with launch_browser() as browser:
        context = await new_context(browser)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        # The gateway sends its Content-Security-Policy: Swagger UI must run under it.
        response = await page.goto(served[CONSOLE] + "/docs")
        assert response and "script-src 'self'" in response.headers["content-security-policy"]
        await page.get_by_role("button", name=re.compile("Authorize")).wait_for()
        await page.goto(served["intake"] + "/docs")
        await page.get_by_role("button", name=re.compile("Authorize")).wait_for()
        await page.goto(served["intake"] + "/asyncapi")
        rendered = page.locator("#asyncapi .aui-root")
        await rendered.wait_for()
        for text in ("whistle.intake.events.v1", "intake.clocks", "CaseMerged", "CaseClockStarted"):
            await expect(rendered).to_contain_text(text)
        assert_offline(context)
        assert not errors, errors
        await context.close()
    await asyncio.sleep(0)


def test_the_vendored_viewers_are_the_recorded_files():
    readme = (api_docs.ASSETS / "README.md").read_text()
    recorded = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    assert set(recorded) == {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "asyncapi-standalone.js",
        "asyncapi.css",
    }
    for name, digest in recorded.items():
        assert hashlib.sha256((api_docs.ASSETS / name).read_bytes()).hexdigest() == digest, name
