"""The HTTP access log: one line per request with its correlation id, route template,
status, duration and size; none for probes and scrapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI, Request

from shared.auth import Principal, Role
from shared.http import install_error_handlers, install_observability
from shared.settings import BaseServiceSettings


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_observability(app, {})

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"item": item_id}

    @app.get("/mine")
    async def mine(request: Request) -> dict[str, str]:
        # What shared.auth.Rule does once a token is verified.
        request.state.principal = Principal(
            subject="wangli", name="王丽", role=Role.STREET, area="YA"
        )
        return {"ok": "yes"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def access_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "http_request"]


async def test_one_line_per_request_with_correlation_id_route_and_status(client):
    with structlog.testing.capture_logs() as logs:
        resp = await client.get("/items/42?api_key=secret", headers={"X-Correlation-ID": "abc"})
    assert resp.status_code == 200
    [line] = access_lines(logs)
    assert line["correlation_id"] == "abc"
    assert line["route"] == "/items/{item_id}"
    assert line["path"] == "/items/42"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert line["bytes"] == len(resp.content)
    assert line["duration_ms"] >= 0
    assert line["log_level"] == "info"
    assert "secret" not in repr(line)  # the query string is never logged
    assert "subject" not in line


async def test_a_request_without_id_gets_the_generated_one(client):
    with structlog.testing.capture_logs() as logs:
        resp = await client.get("/items/1")
    [line] = access_lines(logs)
    assert line["correlation_id"] == resp.headers["X-Correlation-ID"]
    assert len(line["correlation_id"]) >= 16


async def test_the_authenticated_subject_and_role_are_logged(client):
    with structlog.testing.capture_logs() as logs:
        await client.get("/mine")
    [line] = access_lines(logs)
    assert (line["subject"], line["role"]) == ("wangli", "street")


async def test_errors_are_logged_with_their_status(client):
    with structlog.testing.capture_logs() as logs:
        missing = await client.get("/nowhere", headers={"X-Correlation-ID": "n1"})
        failed = await client.get("/boom", headers={"X-Correlation-ID": "b1"})
    assert (missing.status_code, failed.status_code) == (404, 500)
    lines = {e["correlation_id"]: e for e in access_lines(logs)}
    assert lines["n1"]["status"] == 404 and lines["n1"]["route"] is None
    assert lines["b1"]["status"] == 500 and lines["b1"]["route"] == "/boom"
    assert lines["b1"]["log_level"] == "warning"


@pytest.mark.parametrize("path", ["/livez", "/healthz", "/readyz", "/metrics"])
async def test_probes_and_scrapes_are_not_logged(client, path):
    with structlog.testing.capture_logs() as logs:
        resp = await client.get(path)
    assert resp.status_code == 200
    assert access_lines(logs) == []


async def test_access_log_false_turns_the_lines_off() -> None:
    app = FastAPI()
    dsn = "postgresql://nobody@127.0.0.1:1/none"
    base = {"service_name": "quiet", "database_url": dsn, "environment": "embedded"}
    settings = BaseServiceSettings(**base, access_log=False)
    app.state.runtime = SimpleNamespace(settings=settings)
    install_observability(app, {})

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"item": item_id}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        with structlog.testing.capture_logs() as logs:
            resp = await c.get("/items/1")
    assert resp.status_code == 200 and resp.headers["X-Correlation-ID"]  # ids stay
    assert access_lines(logs) == []
    assert BaseServiceSettings(**base).access_log  # on unless turned off
