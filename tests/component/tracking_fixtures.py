"""What tracking's component tests share: the demo calendar's days, a case's facts and the
events dispatch and intake publish about it, a migrated and seeded tracking database per test
(its handlers driven by events and an injected clock), the settings of the service on that
database and the real broker, and — for the boards — the service served by uvicorn on a
loopback port (one a test module: the Kafka group join is the slow part), the demo users'
tokens and reading an error.

Times are Asia/Shanghai wall clock in the demo calendar (08:30–12:00, 13:30–17:30 Mon–Fri);
2026-03-02 is a Monday. Under the demo policy a 市容环境 (E01) normal case must be signed
for in 2 working hours (warning at 80 %) and resolved in 3 working days; a 电梯困人 (C0501)
urgent case in 15 minutes, on site in 30 and resolved in 12 hours (calendar time).

A test module takes a fixture as ``pool = tracking_fixtures.pool`` or
``service = tracking_fixtures.service``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from services.tracking import consumers, handlers
from services.tracking.config import Settings
from services.tracking.demo import seed_demo
from services.tracking.domain.board import Board
from services.tracking.handlers.boards import BoardQuery
from services.tracking.main import create_app
from shared import db
from shared.auth import Principal, Role
from shared.contract import CaseClosed, CaseDispatched, Priority, new_event
from tests.conftest import free_port, migrated_database
from tests.helpers import as_user, eventually

CN = ZoneInfo("Asia/Shanghai")


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """Day 0 is Monday 2026-03-02."""
    return datetime(2026, 3, 2, hh, mm, tzinfo=CN) + timedelta(days=day)


MON = at(0, 9)
# 市容环境/乱堆物料, normal, 桃园社区 (YA/YA01/YA0101)
HERE = {
    "case_no": "YA-A",
    "area_path": "YA/YA01/YA0101/YA0101-01",
    "category": "E0101",
    "priority": Priority.NORMAL,
}
# 电梯困人, urgent, 锦绣社区 (YA/YA02/YA0201)
LIFT = {
    "case_no": "YA-L",
    "area_path": "YA/YA02/YA0201/YA0201-02",
    "category": "C0501",
    "priority": Priority.URGENT,
}

DISTRICT = Principal(subject="command", name="区指挥中心", role=Role.DISTRICT, area="YA")


def dispatched(case, assignment, when, facts=HERE, department="cg", role="lead"):
    return new_event(
        CaseDispatched(
            **facts,
            assignment_id=assignment,
            department_id=department,
            department_name=f"部门{department}",
            role=role,
            rule_id=1,
            reason="test",
            description="楼道堆物",
        ),
        case_id=case,
        producer="dispatch",
        occurred_at=when,
    )


def step(cls, case, assignment, when, facts=HERE, department="cg", **fields):
    return new_event(
        cls(**facts, assignment_id=assignment, department_id=department, **fields),
        case_id=case,
        producer="dispatch",
        occurred_at=when,
    )


def closed(case, when, facts=HERE):
    return new_event(
        CaseClosed(**facts, note="核查通过"), case_id=case, producer="intake", occurred_at=when
    )


# --- tracking's handlers on a database of their own ------------------------------------------


@pytest.fixture
async def pool(pg_server, pool_factory):
    """A migrated tracking database with the demo calendar and policy, for one test."""
    dsn = await migrated_database(pg_server, "tracking")
    settings = Settings(environment="test", database_url=dsn)
    await seed_demo(settings)
    await seed_demo(settings)  # idempotent
    return await pool_factory(dsn)


async def record(pool, *events, sign_for=None):
    """Each event recorded as the consumer does it, one transaction each."""
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await consumers.record(conn, event, sign_for_deadline=sign_for)


async def items(pool, now, which=Board.OVERDUE, who=DISTRICT, limit=100, offset=0, **query):
    return await handlers.read_board(
        pool, who, which, BoardQuery(**query), now=now, limit=limit, offset=offset
    )


async def drain(pool, f, after):
    """The board feed's changes after a position, three at a time: (changes, new position)."""
    got = []
    while True:
        batch = await handlers.feed_changes(pool, f, after, limit=3)
        got += [(r["change"], r["case_no"], r["clock"]) for r in batch.changes]
        after = batch.position
        if not batch.more:
            return got, after


# --- the service, on the real broker -------------------------------------------------------------


async def service_settings(pg_server, kafka_server, **overrides: Any) -> Settings:
    """The settings of a tracking service on a migrated, seeded database of its own and the
    real broker, with short poll intervals."""
    dsn = await migrated_database(pg_server, "tracking")
    settings = Settings(
        **{
            "environment": "test",
            "database_url": dsn,
            "kafka_bootstrap_servers": kafka_server.bootstrap,
            "kafka_idempotent_producer": False,
            "log_json": False,
            "outbox_poll_interval_seconds": 0.5,
            "timer_poll_interval_seconds": 0.2,
            **overrides,
        }
    )
    await seed_demo(settings)
    await seed_demo(settings)  # idempotent: the thresholds once
    return settings


@asynccontextmanager
async def served(app) -> AsyncIterator[tuple[uvicorn.Server, asyncio.Task, httpx.AsyncClient]]:
    """The app served by uvicorn on a loopback port (ASGITransport buffers whole responses,
    so a live stream needs a real server)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_config=None,
            timeout_graceful_shutdown=10,
        )
    )
    task = asyncio.create_task(server.serve())

    async def started():
        if task.done():
            task.result()  # raises what stopped it
        return server.started

    await eventually(started, timeout=60, interval=0.05, message="uvicorn started")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(30)
        ) as client:
            yield server, task, client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


class Service:
    def __init__(self, server, serving, client, pool, bootstrap):
        self.server, self.serving, self.client, self.pool = server, serving, client, pool
        self.bootstrap = bootstrap


@pytest.fixture(scope="module")
async def service(pg_server, kafka_server):
    """Tracking served by uvicorn, with a pool on its database to record events directly."""
    settings = await service_settings(
        pg_server,
        kafka_server,
        outbox_poll_interval_seconds=0.3,
        board_stream_poll_seconds=0.1,
        board_stream_heartbeat_seconds=1,
    )
    dsn = settings.database_url.get_secret_value()
    pool = await db.create_pool(dsn, min_size=1, max_size=4, attempts=3)
    try:
        async with served(create_app(settings)) as (server, serving, client):
            yield Service(server, serving, client, pool, kafka_server.bootstrap)
    finally:
        await pool.close()


async def record_now(service, *events):
    await record(service.pool, *events)


# Demo users (shared/demo.py USERS).
COMMAND, SUP_YINGZE, TAOYUAN = as_user("command"), as_user("sup-yingze"), as_user("taoyuan")
CG, WANGFANG = as_user("cg-duty"), as_user("wangfang")
EN = {"Accept-Language": "en"}


def error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]
