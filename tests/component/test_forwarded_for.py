"""Whose address a request comes from behind a proxy (FORWARDED_ALLOW_IPS): the residents'
rate limit (群众上报, per network address) counts each resident when the proxy in front is
trusted, and counts the proxy itself — everybody together — when it is not. The real
``serve`` command of intake, on real PostgreSQL and the real broker."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from shared import demo
from tests.component.test_resident_reports import FORM, V2, form
from tests.conftest import create_database, free_port
from tests.helpers import serving


@pytest.mark.parametrize(
    ("trusted", "counted_apart"),
    [
        ("127.0.0.1,::1", True),  # the gateway on this host: its X-Forwarded-For is believed
        ("10.0.0.0/8", False),  # a proxy outside the trusted network: its header is not
    ],
)
async def test_the_residents_limit_counts_the_address_the_trusted_proxy_saw(
    pg_server, kafka_server, trusted, counted_apart
):
    http = free_port()
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": await create_database(pg_server, "forwarded"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_server.bootstrap,
        "KAFKA_IDEMPOTENT_PRODUCER": "false",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(http),
        "FORWARDED_ALLOW_IPS": trusted,
        "RESIDENT_REPORTS_PER_HOUR_PER_CLIENT": "2",
        "LOG_JSON": "false",
    }
    url = f"http://127.0.0.1:{http}{V2}/requests.json"

    async def catalogue() -> None:  # the replica dispatch would sync
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            await conn.executemany(
                "INSERT INTO categories (code, name, parent_code) VALUES ($1, $2, $3)",
                demo.CATEGORIES,
            )
        finally:
            await conn.close()

    async with (
        serving("services.intake", env, seed=True, prepare=catalogue),
        httpx.AsyncClient(timeout=10) as c,
    ):

        async def report(address: str) -> int:
            headers = {**FORM, "X-Forwarded-For": address}
            body = form(device_id=f"phone-{uuid.uuid4()}")
            resp = await c.post(url, content=body, headers=headers)
            assert resp.status_code in (201, 429), resp.text
            return resp.status_code

        # three residents, one report each (each its own device)
        firsts = [await report(a) for a in ("203.0.113.7", "203.0.113.8", "198.51.100.9")]
        assert firsts == ([201, 201, 201] if counted_apart else [201, 201, 429])
        # one resident's third report is over the limit either way
        second = await report("203.0.113.7")
        assert second == (201 if counted_apart else 429)
        assert await report("203.0.113.7") == 429
