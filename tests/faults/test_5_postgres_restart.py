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
        if scenario.supervised(stack):
            back = await scenario.wait_restart(stack, "postgres", stopped)
        else:  # a stack without a supervisor: restart by hand (the note says so)
            await asyncio.to_thread(proc.wait, 30)
            await asyncio.to_thread(stack.postgres.start)
            back = time.monotonic() - stopped
        assert stack.postgres.process.pid != proc.pid
        how = "supervisor" if scenario.supervised(stack) else "MANUAL restart (no supervisor)"
        failed = sum(n for k, n in load.stats.statuses.items() if not k.endswith(("200", "201")))
        return (f"PostgreSQL fast stop, back after {back:.1f}s ({how}); "
                f"{failed} failed attempts retried so far")

    await scenario.run(stack, results, "PostgreSQL fast stop (3)", duration=20, inject=inject,
                       faults="SIGINT postgres", tag="pg", timeout=180)
