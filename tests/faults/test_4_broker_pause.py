"""Scenario 2: the broker frozen (SIGSTOP) for 30 s under the steady load, then thawed
(SIGCONT). Reports and whistles keep being accepted (the outboxes hold the events); once the
broker answers again everything flows, nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.faults import scenario
from tests.faults.load import Load

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

PAUSE = 30.0


async def test_broker_frozen_for_30_seconds_under_load(stack, results):
    async def inject(load: Load) -> str:
        await asyncio.sleep(3)
        pid = stack.kafka.process.pid
        accepted_before = len(load.stats.accepted)
        os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            await asyncio.sleep(PAUSE)
        finally:
            os.kill(pid, signal.SIGCONT)
        during = len(load.stats.accepted) - accepted_before
        # The front door stayed open: the outbox takes the events while the broker is away.
        assert during >= 0.5 * scenario.RATE * PAUSE, f"only {during} accepted while frozen"
        assert stack.kafka.process.pid == pid, "the broker was replaced, not thawed"
        return (
            f"broker SIGSTOP {time.monotonic() - stopped:.0f}s; {during} cases accepted "
            "while it was frozen"
        )

    await scenario.run(
        stack,
        results,
        "broker SIGSTOP 30s (2)",
        duration=PAUSE + 5,
        inject=inject,
        faults="SIGSTOP/SIGCONT",
        tag="pause",
        timeout=180,
    )
