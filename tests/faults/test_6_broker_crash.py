"""Scenario 4: the broker crashes (SIGKILL) under the steady load. It keeps everything in
memory, so the stack's supervisor starts a new one, recreates the topics and has the
outboxes publish again what the lost broker may not have delivered; the idempotent
consumers make the second copies no-ops. Every accepted case converges, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.faults import scenario
from tests.faults.load import Load

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


async def test_broker_crash_and_restart_under_load(stack, results):
    async def inject(load: Load) -> str:
        await asyncio.sleep(6)
        proc = stack.kafka.process
        killed = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        back = await scenario.wait_restart(stack, "broker", killed)
        assert stack.kafka.process.pid != proc.pid
        restart = next(r for r in reversed(stack.restarts) if r.what == "broker")
        return (
            f"broker SIGKILL, a new one after {back:.1f}s; "
            f"{restart.republished} events published again from the "
            "outboxes"
        )

    await scenario.run(
        stack,
        results,
        "broker crash (4)",
        duration=20,
        inject=inject,
        faults="kill -9 broker",
        tag="crash",
        timeout=180,
    )
