"""Metrics on a port of their own (METRICS_PORT, set in the Kubernetes manifests): the real
``serve`` command of the console's gateway, on real PostgreSQL, answers /metrics only on the
metrics port, so the Ingress (which routes to the HTTP port) never exposes them."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from tests.conftest import create_database, free_port
from tests.helpers import serving
from web.config import Settings


async def test_metrics_are_served_on_their_own_port_and_not_on_the_http_port(pg_server):
    http, metrics = free_port(), free_port()
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": await create_database(pg_server, "metrics"),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(http),
        "METRICS_PORT": str(metrics),
        "LOG_JSON": "false",
    }
    async with serving("web", env) as output, httpx.AsyncClient(timeout=5) as client:
        # A counted request (the probes are not counted), then the scrape.
        assert (await client.get(f"http://127.0.0.1:{http}/openapi.json")).status_code == 200
        on_http = await client.get(f"http://127.0.0.1:{http}/metrics")
        assert on_http.status_code == 404, on_http.text
        own = await client.get(f"http://127.0.0.1:{metrics}/metrics")
        assert own.status_code == 200
        assert own.headers["content-type"].startswith("text/plain")
        assert 'handler="/openapi.json"' in own.text  # the app's own registry
        assert "python_info" in own.text
    assert b"metrics_listening" in output[0], output[0].decode()[-2000:]


def test_the_metrics_port_must_differ_from_the_http_port():
    with pytest.raises(ValidationError, match="METRICS_PORT must differ from HTTP_PORT"):
        Settings(environment="test", database_url="postgresql:///x", metrics_port=8100)
