"""A request that meets the database or broker away for a moment (a restart) gets 503 with
Retry-After, not 500: clients and the console retry it (issue 13's fault suite saw 500s
during a PostgreSQL fast stop); a real bug stays a 500."""

from __future__ import annotations

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.http import install_error_handlers


def app_raising(exc: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.AdminShutdownError(
            "terminating connection due to administrator command"
        ),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        ConnectionRefusedError(111, "Connect call failed"),
    ],
)
def test_a_dependency_away_is_503_with_retry_after(exc):
    client = app_raising(exc)
    resp = client.get("/boom")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
    assert resp.json()["error"] == {"code": "unavailable", "message": "服务暂时不可用，请稍后重试"}
    en = client.get("/boom", headers={"Accept-Language": "en"})
    assert en.json()["error"]["message"] == "Temporarily unavailable, please retry"


def test_a_bug_is_still_500():
    resp = app_raising(KeyError("oops")).get("/boom")
    assert resp.status_code == 500 and resp.json()["error"]["code"] == "internal_error"
