"""Scenario 6: duplicate reports and duplicate whistles. The same report with one
Idempotency-Key sent ten times in parallel, then the same whistle ten times in parallel,
under the steady load: exactly one case, one whistle, one assignment per department."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter

import httpx
import pytest

from tests.faults import scenario
from tests.faults.invariants import _fetch
from tests.faults.load import CATEGORIES, GRIDS, Case, Load, departments_for, report_body

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

COPIES = 10
ROUNDS = 6


async def duplicate_round(
    load: Load, client: httpx.AsyncClient, n: int
) -> tuple[Case, Counter, Counter]:
    grid, category = GRIDS[(3 * n) % len(GRIDS)], CATEGORIES[(5 * n + 3) % len(CATEGORIES)]
    case = Case(
        key=f"dup-{n}-{uuid.uuid4().hex[:8]}",
        grid=grid,
        category=category,
        departments=departments_for(category),
        started_at=time.monotonic(),
    )
    intake = load.stack.url("intake")
    headers = {**load.ids.worker[grid], "Idempotency-Key": case.key}
    reports = await asyncio.gather(
        *(
            client.post(f"{intake}/cases", json=report_body(case), headers=headers)
            for _ in range(COPIES)
        )
    )
    report_codes = Counter(r.status_code for r in reports)
    ids = {r.json()["id"] for r in reports if r.status_code in (200, 201)}
    assert report_codes == {201: 1, 200: COPIES - 1}, (report_codes, [r.text for r in reports])
    assert len(ids) == 1, ids
    case.case_id = ids.pop()
    whistles = await asyncio.gather(
        *(
            client.post(
                f"{intake}/cases/{case.case_id}/whistle",
                json={"note": "重复吹哨"},
                headers=load.ids.community[case.community],
            )
            for _ in range(COPIES)
        )
    )
    whistle_codes = Counter(r.status_code for r in whistles)
    assert whistle_codes == {200: 1, 409: COPIES - 1}, (whistle_codes, [r.text for r in whistles])
    case.whistled = True
    return case, report_codes, whistle_codes


async def test_duplicate_reports_and_whistles_have_one_effect(stack, results):
    rounds: list[Case] = []

    async def inject(load: Load) -> str:
        await asyncio.sleep(2)
        async with httpx.AsyncClient(timeout=30) as client:  # outlives the load's client
            for n in range(ROUNDS):
                case, _, _ = await duplicate_round(load, client, n)
                rounds.append(case)
                load.stats.cases.append(case)  # checked with the load's cases
                await asyncio.sleep(0.5)
        return (
            f"{ROUNDS} rounds × {COPIES} parallel reports (1×201 + {COPIES - 1}×200, one "
            f"id) and whistles (1×200 + {COPIES - 1}×409)"
        )

    async def check(load: Load) -> None:
        ids = [c.case_id for c in rounds]
        # One case.reported and one case.whistled per case left intake.
        rows = await _fetch(
            stack.dsn("intake"),
            "SELECT key, type, count(*) AS n FROM outbox WHERE key = ANY($1) GROUP BY 1, 2",
            ids,
        )
        events = {(r["key"], r["type"]): r["n"] for r in rows}
        for c in rounds:
            assert events.get((c.case_id, "case.reported")) == 1, events
            assert events.get((c.case_id, "case.whistled")) == 1, events
        # Dispatch: one assignment per routed department; each dispatch event once.
        rows = await _fetch(
            stack.dsn("dispatch"),
            "SELECT case_id::text, department_id, count(*) AS n FROM assignments"
            " WHERE case_id = ANY($1::uuid[]) GROUP BY 1, 2",
            ids,
        )
        got = {(r["case_id"], r["department_id"]): r["n"] for r in rows}
        want = {(c.case_id, d): 1 for c in rounds for d in c.departments}
        assert got == want
        rows = await _fetch(
            stack.dsn("dispatch"),
            "SELECT payload FROM outbox WHERE key = ANY($1) AND type = 'case.dispatched'",
            ids,
        )
        departments = Counter(
            (
                json.loads(r["payload"])["case_id"],
                json.loads(r["payload"])["payload"]["department_id"],
            )
            for r in rows
        )
        assert departments == Counter(want), departments

    row, _ = await scenario.run(
        stack,
        results,
        "duplicates (6)",
        duration=12,
        inject=inject,
        faults=f"{ROUNDS}×{COPIES} same key",
        check=check,
        tag="dup",
    )
    assert row.duplicates == 0
