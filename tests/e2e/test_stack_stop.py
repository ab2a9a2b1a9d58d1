"""Stopping the embedded stack under load loses nothing (issue 13, point 7).

The broker keeps messages in memory: what is published and not yet consumed when it stops is
gone. ``Stack.stop()`` must drain first. This test has its OWN stack (not the session one):
it whistles cases over HTTP as fast as it can, stops the stack at once, starts a new one on
the same data folder (PostgreSQL keeps its data, the broker starts empty) and checks that
every whistled case reached dispatch (an assignment) and tracking (its clocks).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.auth import Principal, Role, mint
from stack.stack import APPS, SERVICES, Stack, StackConfig
from tests.conftest import free_port

pytestmark = pytest.mark.e2e

CASES = 60


def config_in(folder: Path) -> StackConfig:
    return StackConfig(
        data_dir=folder,
        pg_port=free_port(),
        kafka_port=free_port(),
        ports={s: free_port() for s in APPS},
        # a slow relay: more sits in outboxes and in the broker when stop() is called
        env={"*": {"OUTBOX_POLL_INTERVAL_SECONDS": "2", "LOG_LEVEL": "WARNING"}},
    )


def report(n: int) -> dict:
    return {
        "grid_code": "YA0101-03",
        "category": "E0101",
        "priority": "normal",
        "description": f"单元门口乱堆装修垃圾，堵塞通道（停机测试 {n}）",
        "location": {"address": "桃园小区5号楼2单元"},
        "reporter": "网格员王芳",
    }


async def whistle_cases(stack: Stack, n: int) -> list[str]:
    """Report and whistle ``n`` cases, all at once; the ids of those whistled."""
    # intake lets one person report 30 cases a minute: grid workers of one grid share the load
    grid = "YA/YA01/YA0101/YA0101-03"
    workers = [
        {
            "Authorization": "Bearer "
            + mint(
                stack.token_keys(),
                Principal(
                    subject=f"stop-test-{w}",
                    name=f"网格员{w}",
                    role=Role.GRID_WORKER,
                    area=grid,
                    grids=(grid,),
                ),
                3600,
            )
        }
        for w in range(max(1, -(-n // 25)))
    ]
    community = {"Authorization": f"Bearer {stack.mint_demo_token('taoyuan')}"}
    intake = stack.url("intake")

    async def one(client: httpx.AsyncClient, i: int) -> str:
        created = await client.post(
            f"{intake}/cases", json=report(i), headers=workers[i % len(workers)]
        )
        assert created.status_code == 201, created.text
        case_id = created.json()["id"]
        whistled = await client.post(
            f"{intake}/cases/{case_id}/whistle", json={"note": "请尽快清运"}, headers=community
        )
        assert whistled.status_code == 200, whistled.text
        return case_id

    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(one(client, i) for i in range(n))))


async def missing(stack: Stack, case_ids: list[str]) -> dict[str, list[str]]:
    """Cases without an assignment in dispatch, without a clock in tracking."""
    left: dict[str, list[str]] = {}
    for service, sql in (
        ("dispatch", "SELECT DISTINCT case_id::text FROM assignments WHERE case_id = ANY($1)"),
        ("tracking", "SELECT DISTINCT case_id::text FROM clocks WHERE case_id = ANY($1)"),
    ):
        conn = await asyncpg.connect(stack.dsn(service))
        try:
            seen = {r[0] for r in await conn.fetch(sql, case_ids)}
        finally:
            await conn.close()
        left[service] = sorted(set(case_ids) - seen)
    return left


async def all_arrive(stack: Stack, case_ids: list[str], within: float) -> dict[str, list[str]]:
    deadline = time.monotonic() + within
    while True:
        left = await missing(stack, case_ids)
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


def tails(stack: Stack) -> None:
    for s in (*SERVICES, "stack-stop"):
        log = stack.config.log_dir / f"{s}.log"
        if log.exists():
            print(
                f"--- {s}.log (tail) ---",
                *log.read_text(errors="replace").splitlines()[-10:],
                sep="\n",
            )


def stop_under_load_then_restart(folder: Path, make=Stack) -> tuple[int, dict[str, list[str]]]:
    """Whistle CASES cases, stop at once, restart on the same folder; what never arrived."""
    first = make(config_in(folder))
    try:
        first.start()
        case_ids = asyncio.run(whistle_cases(first, CASES))
    finally:
        first.stop()
    shouted = folder / "logs" / "stack-stop.log"  # what stop() could not drain, if anything
    assert not shouted.exists(), shouted.read_text()
    second = Stack(config_in(folder))
    try:
        second.start()
        # what an outbox still held is sent by the new stack; what the broker held is gone
        return len(case_ids), asyncio.run(all_arrive(second, case_ids, within=20))
    finally:
        second.stop()
        tails(second)


def test_stopping_the_stack_under_load_loses_no_whistled_case(tmp_path):
    started = time.monotonic()
    whistled, left = stop_under_load_then_restart(tmp_path)
    print(f"{whistled} cases whistled; stop + restart took {time.monotonic() - started:.0f}s")
    assert whistled == CASES
    assert left == {"dispatch": [], "tracking": []}, left
