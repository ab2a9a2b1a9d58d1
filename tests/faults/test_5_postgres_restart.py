"""Scenario 3: PostgreSQL fast stop (SIGINT to the server) under the steady load; the
stack's supervisor starts it again. Requests that failed meanwhile are retried with their
Idempotency-Key; every accepted case converges, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.faults import scenario
from tests.faults.load import Load

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


async def test_postgres_fast_stop_and_restart_under_load(stack, results):
    async def inject(load: Load) -> str:
        await asyncio.sleep(5)
        proc = stack.postgres.process
        stopped = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)  # fast shutdown: abort transactions, disconnect
        back = await scenario.wait_restart(stack, "postgres", stopped)
        assert stack.postgres.process.pid != proc.pid
        failed = sum(n for k, n in load.stats.statuses.items() if not k.endswith(("200", "201")))
        return (
            f"PostgreSQL fast stop, back after {back:.1f}s (supervisor); "
            f"{failed} failed attempts retried so far"
        )

    await scenario.run(
        stack,
        results,
        "PostgreSQL fast stop (3)",
        duration=20,
        inject=inject,
        faults="SIGINT postgres",
        tag="pg",
        timeout=180,
    )
