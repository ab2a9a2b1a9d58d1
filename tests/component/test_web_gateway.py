"""The console's gateway (web/) on real PostgreSQL: sign-in with hashed passwords, rotating
refresh tokens, the administrator's user management, and the proxy in front of a real HTTP
upstream (bodies, headers, errors, a live stream cut when its token expires)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from asgi_correlation_id.context import correlation_id

from shared.auth import verify
from shared.http import install_observability
from tests.conftest import create_database, free_port
from tests.helpers import TEST_KEYS, bearer, fetchval, running_app, token
from web.config import Settings
from web.demo import seed_demo
from web.main import create_app

from shared import db, migrations
from shared.service import migration_sources
from pathlib import Path

WEB_MIGRATIONS = Path(__file__).resolve().parents[2] / "web" / "migrations"
PASSWORD = "whistle-demo"


def upstream_app() -> FastAPI:
    """A real service stand-in: echoes what reached it (and the correlation id it works under,
    from the services' own middleware), streams events forever."""
    app = FastAPI()
    install_observability(app, {})

    @app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(rest: str, request: Request) -> dict:
        body = await request.body()
        return {
            "method": request.method,
            "path": rest,
            "query": request.url.query,
            "headers": dict(request.headers),
            "body": body.decode(),
            "correlation_id": correlation_id.get(),
        }

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            n = 0
            while True:
                n += 1
                yield f"id: {n}\nevent: tick\ndata: {n}\n\n".encode()
                await asyncio.sleep(0.1)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/metrics")
    async def metrics() -> str:
        return "secret"

    return app


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            upstream_app(), host="127.0.0.1", port=port, log_config=None, access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture(scope="module")
async def gateway(pg_server, upstream):
    dsn = await create_database(pg_server, "web")
    conn = await db.connect_once(dsn)
    try:
        await migrations.apply(conn, migration_sources(WEB_MIGRATIONS))
    finally:
        await conn.close()
    settings = Settings(
        database_url=dsn,
        environment="test",
        log_json=False,
        intake_url=upstream + "/echo",
        dispatch_url="http://127.0.0.1:9",
        tracking_url=upstream,
        notify_url=upstream,
        access_token_ttl_seconds=60,
        login_max_failures=3,
        demo_password=PASSWORD,
    )
    await seed_demo(settings)
    async with running_app(create_app(settings)) as client:
        yield client, dsn


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    client.cookies.clear()
    return await client.post("/api/auth/login", json={"username": username, "password": password})


def admin() -> dict[str, str]:
    return bearer("admin", subject="admin")


# --- sign-in ---------------------------------------------------------------------------------


async def test_login_mints_a_short_token_with_the_assigned_scope(gateway):
    client, dsn = gateway
    r = await login(client, "WangFang")  # usernames are case-insensitive
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expires_in"] == 60 and body["user"]["role"] == "grid_worker"
    who = verify(TEST_KEYS, body["access_token"])
    assert who.subject == "wangfang"
    assert who.grids == ("YA/YA01/YA0101/YA0101-03", "YA/YA01/YA0101/YA0101-04")
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
    cookie = r.headers["set-cookie"]
    assert "whistle_refresh=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/api/auth" in cookie
    assert r.headers["cache-control"] == "no-store"
    stored = await fetchval(dsn, "SELECT password_hash FROM users WHERE username = 'wangfang'")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_wrong_password_and_unknown_user_get_the_same_answer_then_a_lock(gateway):
    client, dsn = gateway
    unknown = await login(client, "nobody", "whatever-1")
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "bad_credentials"
    for _ in range(2):
        wrong = await login(client, "jinxiu", "wrong-password")
        assert wrong.status_code == 401
        assert wrong.json()["error"] == unknown.json()["error"]
    assert (await login(client, "jinxiu", "wrong-password")).status_code == 401  # 3rd: locked
    locked = await login(client, "jinxiu")
    assert locked.status_code == 401 and locked.json()["error"]["code"] == "login_locked"
    assert "分钟后再试" in locked.json()["error"]["message"]
    await fetchval(
        dsn,
        "UPDATE users SET locked_until = now() - interval '1 s'"
        " WHERE username = 'jinxiu' RETURNING 1",
    )
    assert (await login(client, "jinxiu")).status_code == 200
    assert await fetchval(dsn, "SELECT failed_logins FROM users WHERE username = 'jinxiu'") == 0


async def test_refresh_rotates_and_a_replayed_token_ends_the_session(gateway):
    client, _ = gateway
    assert (await login(client, "taoyuan")).status_code == 200
    first = client.cookies.get("whistle_refresh")
    r = await client.post("/api/auth/refresh")
    assert r.status_code == 200 and verify(TEST_KEYS, r.json()["access_token"]).subject == "taoyuan"
    second = client.cookies.get("whistle_refresh")
    assert second and second != first
    # The first token again (stolen and replayed): refused, and the whole family ends.
    client.cookies.set("whistle_refresh", first, path="/api/auth")
    replay = await client.post("/api/auth/refresh")
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "session_expired"
    client.cookies.set("whistle_refresh", second, path="/api/auth")
    assert (await client.post("/api/auth/refresh")).status_code == 401


async def test_logout_ends_the_session(gateway):
    client, _ = gateway
    await login(client, "yingze")
    out = await client.post("/api/auth/logout")
    assert out.status_code == 204 and "whistle_refresh=" in out.headers["set-cookie"]
    assert (await client.post("/api/auth/refresh")).status_code == 401
    client.cookies.clear()
    assert (await client.post("/api/auth/refresh")).status_code == 401


async def test_me_reads_the_user_as_assigned(gateway):
    client, _ = gateway
    r = await client.get("/api/auth/me", headers=bearer("community", subject="taoyuan"))
    assert r.status_code == 200 and r.json()["name"] == "桃园社区书记"
    assert (await client.get("/api/auth/me")).status_code == 401


# --- the administrator -----------------------------------------------------------------------


async def test_admin_assigns_grids_and_the_next_token_carries_them(gateway):
    client, _ = gateway
    new = {
        "username": "zhaolei",
        "name": "网格员赵磊",
        "role": "grid_worker",
        "area": "YA/YA02/YA0201",
        "grids": ["YA/YA02/YA0201/YA0201-01"],
        "password": "s3cret-pass",
    }
    r = await client.post("/api/auth/users", json=new, headers=admin())
    assert r.status_code == 201, r.text
    assert (await client.post("/api/auth/users", json=new, headers=admin())).status_code == 409
    r = await login(client, "zhaolei", "s3cret-pass")
    assert verify(TEST_KEYS, r.json()["access_token"]).grids == ("YA/YA02/YA0201/YA0201-01",)
    grids = ["YA/YA02/YA0201/YA0201-01", "YA/YA02/YA0201/YA0201-02"]
    p = await client.patch("/api/auth/users/zhaolei", json={"grids": grids}, headers=admin())
    assert p.status_code == 200 and p.json()["grids"] == grids
    r = await client.post("/api/auth/refresh")
    assert verify(TEST_KEYS, r.json()["access_token"]).grids == tuple(grids)
    # Disabled: the session ends and sign-in is refused.
    p = await client.patch("/api/auth/users/zhaolei", json={"disabled": True}, headers=admin())
    assert p.json()["disabled"] is True
    assert (await client.post("/api/auth/refresh")).status_code == 401
    refused = await login(client, "zhaolei", "s3cret-pass")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "user_disabled"
    # A new password from the administrator works once enabled again.
    await client.patch(
        "/api/auth/users/zhaolei",
        json={"disabled": False, "password": "another-1"},
        headers=admin(),
    )
    assert (await login(client, "zhaolei", "s3cret-pass")).status_code == 401
    assert (await login(client, "zhaolei", "another-1")).status_code == 200
    listed = await client.get("/api/auth/users", params={"role": "grid_worker"}, headers=admin())
    assert {"wangfang", "zhaolei"} <= {u["username"] for u in listed.json()}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"role": "grid_worker", "grids": []}, "grids_required"),
        ({"role": "grid_worker", "grids": ["YA/YA03/YA0301/YA0301-01"]}, "grid_outside_area"),
        ({"role": "department"}, "department_required"),
        ({"role": "community", "department_id": "cg"}, "department_not_allowed"),
        ({"role": "community", "grids": ["YA/YA02/YA0201/YA0201-01"]}, "grids_not_allowed"),
        ({"username": "Bad Name!"}, "invalid_username"),
        ({"password": "short"}, "weak_password"),
        ({"area": "YA//x"}, "invalid_area"),
    ],
)
async def test_inconsistent_users_are_refused_and_nothing_changes(gateway, change, code):
    client, dsn = gateway
    body = {
        "username": "newuser",
        "name": "新用户",
        "role": "community",
        "area": "YA/YA02/YA0201",
        "password": "long-enough",
        **change,
    }
    r = await client.post("/api/auth/users", json=body, headers=admin())
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
    assert await fetchval(dsn, "SELECT count(*) FROM users WHERE username = 'newuser'") == 0


async def test_only_the_administrator_manages_users(gateway):
    client, _ = gateway
    assert (await client.get("/api/auth/users")).status_code == 401
    r = await client.get("/api/auth/users", headers=bearer("supervisor"))
    assert r.status_code == 403
    r = await client.patch("/api/auth/users/nobody", json={"name": "x"}, headers=admin())
    assert r.status_code == 404
    r = await client.patch("/api/auth/users/admin", json={"disabled": True}, headers=admin())
    assert r.status_code == 409 and r.json()["error"]["code"] == "cannot_change_self"


# --- the proxy -------------------------------------------------------------------------------


async def test_proxy_passes_requests_through_without_the_refresh_cookie(gateway):
    client, _ = gateway
    client.cookies.set("whistle_refresh", "must-not-leak", path="/")
    r = await client.post(
        "/api/intake/cases/abc?x=1&x=2",
        content=b'{"a": 1}',
        headers={
            "Authorization": "Bearer abc",
            "Content-Type": "application/json",
            "Accept-Language": "en",
            "X-Correlation-ID": "corr-1",
        },
    )
    client.cookies.clear()
    assert r.status_code == 200, r.text
    echoed = r.json()
    assert echoed["method"] == "POST" and echoed["path"] == "cases/abc"
    assert echoed["query"] == "x=1&x=2" and echoed["body"] == '{"a": 1}'
    headers = echoed["headers"]
    assert headers["authorization"] == "Bearer abc" and headers["accept-language"] == "en"
    assert headers["x-correlation-id"] == "corr-1" and "cookie" not in headers
    assert headers["x-forwarded-proto"] == "http"


async def test_the_service_works_under_the_gateways_correlation_id(gateway):
    client, _ = gateway
    r = await client.get("/api/intake/cases")  # the browser sends no X-Correlation-ID
    assert r.status_code == 200, r.text
    made = r.headers.get_list("x-correlation-id")
    assert len(made) == 1 and made[0], made  # one id, the gateway's, not the service's too
    echoed = r.json()
    assert echoed["headers"]["x-correlation-id"] == made[0]
    assert echoed["correlation_id"] == made[0]  # what the service's log lines carry


async def test_proxy_refuses_unknown_services_internal_paths_and_reports_a_down_service(gateway):
    client, _ = gateway
    unknown = await client.get("/api/payroll/x")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert (await client.get("/api/notify/metrics")).status_code == 404
    down = await client.get("/api/dispatch/categories")
    assert down.status_code == 502 and down.json()["error"]["code"] == "upstream_unavailable"
    assert "派单服务暂时不可用" in down.json()["error"]["message"]


async def test_a_live_stream_ends_when_its_token_expires(gateway):
    client, _ = gateway
    short = token("supervisor", ttl=2)
    started = time.monotonic()
    r = await client.get(
        "/api/tracking/stream", headers={"Authorization": f"Bearer {short}"}, timeout=20
    )
    took = time.monotonic() - started
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-accel-buffering"] == "no"
    assert r.text.count("event: tick") >= 3  # it streamed until then
    assert 0.5 < took < 6, took


async def test_console_addresses_serve_the_console_with_a_strict_policy(gateway):
    client, _ = gateway
    page = await client.get("/assignments/0b1f")
    assert page.status_code == 200 and '<div id="app">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    rating = await client.get("/ratings/some-token")
    assert rating.status_code == 200 and "rate.js" in rating.text
    asset = await client.get("/static/vendor/preact-htm.mjs", headers={"Accept-Encoding": "gzip"})
    assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    assert asset.headers["content-encoding"] == "gzip"  # phones on a weak signal
    assert (await client.get("/static/nothing.js")).status_code == 404
    config = (await client.get("/api/auth/config")).json()
    assert config["demo_users"] == [] and config["demo_password"] is None  # not embedded
