"""Scenario 1: SIGKILL of every service, several times each, under the steady load; the
stack's supervisor restarts each one. Nothing accepted is lost, nothing is doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from tests.faults import scenario
from tests.faults.load import Load

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

# Rotating victims on a fixed schedule, one every KILL_EVERY seconds, whether the last one
# is back yet or not (a restarted service takes 10-25 s to be ready on a loaded 2-core
# machine): each service twice, the gateway once.
VICTIMS = (
    "intake",
    "dispatch",
    "tracking",
    "notify",
    "web",
    "dispatch",
    "tracking",
    "notify",
    "intake",
)
KILL_EVERY = 3.0
DURATION = 30.0


async def ready(stack, name: str, since: float) -> float:
    """Seconds from ``since`` until ``name`` answers /readyz again."""
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(stack.url(name) + "/readyz")).status_code == 200:
                    return time.monotonic() - since
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.25)


async def kill(stack, name: str) -> float:
    """SIGKILL ``name`` and wait until it was restarted (not until it is ready); return the
    seconds until it was ready again."""
    proc = stack.processes[name]
    killed_at = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    await scenario.wait_restart(stack, name, killed_at, timeout=30)
    assert stack.processes[name].pid != proc.pid
    return killed_at


async def test_sigkill_of_each_service_under_load(stack, results):
    back: dict[str, list[float]] = {}

    async def inject(load: Load) -> str:
        waits = []
        for n, name in enumerate(VICTIMS):
            slot = 2 + n * KILL_EVERY
            await asyncio.sleep(max(0.0, slot - (time.monotonic() - load.started)))
            killed_at = await kill(stack, name)
            waits.append((name, asyncio.create_task(ready(stack, name, killed_at))))
        for name, task in waits:
            back.setdefault(name, []).append(await asyncio.wait_for(task, 120))
        return (
            f"{len(VICTIMS)} SIGKILLs every {KILL_EVERY:g}s, restarted by the supervisor; "
            "ready again after "
            + ", ".join(f"{k} {'/'.join(f'{t:.0f}' for t in v)}s" for k, v in back.items())
        )

    await scenario.run(
        stack,
        results,
        "SIGKILL services (1)",
        duration=DURATION,
        inject=inject,
        faults=f"{len(VICTIMS)}× kill -9",
        tag="kill",
        timeout=200,
    )
    assert sum(len(v) for v in back.values()) == len(VICTIMS)
