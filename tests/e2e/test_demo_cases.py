"""``make up``'s demo cases on the real stack: each taken as far as it should go, once — a
restart adds nothing."""

from __future__ import annotations

import asyncio

import pytest

from stack.demo_cases import CASES, seed_demo_cases
from tests.e2e.test_loop import as_
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

LAST_EVENT = {
    "dispatched": "case.dispatched",
    "signed_for": "case.signed_for",
    "urged": "case.urged",
    "paused": "case.pause_decided",
    "resolved": "case.resolved",
}


async def test_demo_cases_are_taken_through_the_loop_once(stack, http):
    said: list[str] = []
    added = await asyncio.to_thread(seed_demo_cases, stack, said.append)
    assert list(added) == [c.key for c in CASES]
    assert said == [
        f"  Demo cases   {len(CASES)} cases reported, whistled and dispatched "
        "(see the inboxes, /overdue, /near-overdue and /kpi)"
    ]
    assert await asyncio.to_thread(seed_demo_cases, stack, said.append) == {}  # a restart
    assert len(said) == 1

    tracking, supervisor = stack.url("tracking"), as_(stack, "supervisor")

    async def timeline(case_id: str) -> dict:
        resp = await http.get(f"{tracking}/cases/{case_id}/timeline", headers=supervisor)
        return resp.json() if resp.status_code == 200 else {"events": [], "clocks": []}

    for demo in CASES:

        async def reached(case_id: str = added[demo.key], last: str = LAST_EVENT[demo.then]):
            return [e["type"] for e in (await timeline(case_id))["events"]].count(last) == 1

        await eventually(reached, message=f"{demo.key} reached {LAST_EVENT[demo.then]}")
    paused = next(d for d in CASES if d.then == "paused")

    async def standing_still():
        clocks = (await timeline(added[paused.key]))["clocks"]
        return any(c["state"] == "paused" for c in clocks)

    await eventually(standing_still, message="the paused case's clock stands still")
