"""Messages name the place and the category, from intake's and dispatch's public reference
endpoints — the real apps, on real PostgreSQL, served over real sockets — and still go out,
with codes, while those are down.

notify starts while intake and dispatch are unreachable: a dispatch reaches the desk's inbox
and its webhook with ``YA/YA01/YA0101/YA0101-03`` and ``E0101``. Then intake and dispatch
come up: notify picks up their names on its next try (capped backoff), and the next dispatch
says ``迎泽街道 › 桃园社区 › 桃园社区第3网格`` and ``乱堆物料``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from services.dispatch.config import Settings as DispatchSettings
from services.dispatch.demo import seed_demo as seed_dispatch
from services.dispatch.main import create_app as create_dispatch
from services.intake.config import Settings as IntakeSettings
from services.intake.demo import seed_demo as seed_intake
from services.intake.main import create_app as create_intake
from services.notify.config import Settings
from services.notify.main import create_app
from shared.contract import CaseDispatched, Priority, new_event
from tests.component.notify_fixtures import Endpoint, add_recipient, inbox_of, staff
from tests.conftest import free_port, migrated_database
from tests.helpers import eventually, publish_event, running_app

GRID = "YA/YA01/YA0101/YA0101-03"
PLACE = "迎泽街道 › 桃园社区 › 桃园社区第3网格"


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan run (database pool, broker), not yet listening."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        yield manager.app


@asynccontextmanager
async def listening(app, port: int) -> AsyncIterator[None]:
    """uvicorn serving ``app`` on 127.0.0.1:``port`` in this event loop."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())

    async def up():
        assert not task.done(), task.exception()
        return server.started

    await eventually(up, timeout=15, interval=0.05, message="the server listens")
    try:
        yield
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
def endpoint():
    ep = Endpoint()
    yield ep
    ep.close()


@pytest.fixture(scope="module")
async def owners(pg_server, kafka_server):
    """The real intake and dispatch apps with the demo tree and catalogue, started but not
    listening yet, and the ports notify expects them on."""
    common = {
        "environment": "test",
        "kafka_bootstrap_servers": kafka_server.bootstrap,
        "kafka_idempotent_producer": False,
        "log_json": False,
        "outbox_poll_interval_seconds": 0.5,
    }
    ports = {"intake": free_port(), "dispatch": free_port()}
    dispatch_settings = DispatchSettings(
        **common, database_url=await migrated_database(pg_server, "dispatch")
    )
    intake_settings = IntakeSettings(
        **common,
        database_url=await migrated_database(pg_server, "intake"),
        dispatch_url=f"http://127.0.0.1:{ports['dispatch']}",
    )
    await seed_dispatch(dispatch_settings)
    await seed_intake(intake_settings)
    async with (
        started(create_dispatch(dispatch_settings)) as dispatch,
        started(create_intake(intake_settings)) as intake,
    ):
        yield {"intake": intake, "dispatch": dispatch}, ports


@pytest.fixture(scope="module")
async def notify(pg_server, kafka_server, owners):
    _, ports = owners
    settings = Settings(
        environment="test",
        database_url=await migrated_database(pg_server, "notify"),
        kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False,
        log_json=False,
        delivery_poll_interval_seconds=0.2,
        delivery_timeout_seconds=2,
        public_base_url="https://whistle.example.gov.cn",
        intake_url=f"http://127.0.0.1:{ports['intake']}",
        dispatch_url=f"http://127.0.0.1:{ports['dispatch']}/",
        reference_refresh_seconds=1,  # retries back off up to a second
    )
    app = create_app(settings)
    async with running_app(app) as client:
        yield client, app, kafka_server.bootstrap


def dispatched(department_id: str):
    return new_event(
        CaseDispatched(
            case_no=f"YA-{uuid.uuid4().hex[:8]}",
            area_path=GRID,
            category="E0101",
            priority=Priority.NORMAL,
            assignment_id=uuid.uuid4(),
            department_id=department_id,
            department_name="榆安区城市管理局",
            role="lead",
            rule_id=6,
            reason="E0101 × YA → cg",
            description="楼下空地乱堆建筑垃圾",
        ),
        case_id=uuid.uuid4(),
        producer="dispatch",
    )


async def delivered(
    client, endpoint: Endpoint, bootstrap: str, dept: str, path: str
) -> tuple[dict, dict]:
    """Publish a dispatch for ``dept``; its inbox message and the webhook's body."""
    event = dispatched(dept)
    await publish_event(bootstrap, event)

    async def both():
        inbox = await inbox_of(client, f"duty-{dept}", staff(dept))
        message = next((m for m in inbox if m["event_id"] == str(event.event_id)), None)
        posts = [json.loads(r.body) for r in endpoint.at(path)]
        post = next((p for p in posts if p["data"]["event_id"] == str(event.event_id)), None)
        return (message, post) if message and post else None

    return await eventually(both, timeout=45, message="the message reached inbox and webhook")


async def test_messages_name_place_and_category_and_use_codes_while_the_owners_are_down(
    notify, owners, endpoint
):
    client, app, bootstrap = notify
    apps, ports = owners
    reference = app.state.reference_names
    dept, path = f"cg-{uuid.uuid4().hex[:8]}", f"/ok/{uuid.uuid4().hex[:8]}"
    await add_recipient(
        client,
        id=f"duty-{dept}",
        name="城管值班室",
        kind="department",
        department_id=dept,
        webhook_url=endpoint.url + path,
    )

    # intake and dispatch unreachable: the message goes out at once, with codes
    message, body = await delivered(client, endpoint, bootstrap, dept, path)
    assert f"位置：{GRID}。" in message["body"] and "（E0101）" in message["body"]
    assert f"Area: {GRID}." in message["body_en"]
    assert body["data"]["text"] == {"zh": message["body"], "en": message["body_en"]}
    assert body["data"]["category_name"] is None and body["data"]["area_name"] is None
    assert body["data"]["facts"]["category"] == "E0101"

    # they come up: notify takes their names on its next try
    async with (
        listening(apps["dispatch"], ports["dispatch"]),
        listening(apps["intake"], ports["intake"]),
    ):

        async def named():
            known = reference.known
            return known.place(GRID) == PLACE and known.category("E0101") == "乱堆物料"

        await eventually(named, timeout=30, message="notify loaded the names")
        message, body = await delivered(client, endpoint, bootstrap, dept, path)

    assert f"位置：{PLACE}。" in message["body"], message["body"]
    assert "（事件·市容环境 › 乱堆物料）" in message["body"]
    assert (
        f"Area: {PLACE}." in message["body_en"]
        and "(事件·市容环境 › 乱堆物料)" in message["body_en"]
    )
    assert "E0101" not in message["body"] + message["body_en"]
    assert "YA/YA01" not in message["body"] + message["body_en"]
    data = body["data"]
    assert data["text"] == {"zh": message["body"], "en": message["body_en"]}
    assert (data["category"], data["category_name"]) == ("E0101", "乱堆物料")
    assert (data["area_path"], data["area_name"]) == (GRID, PLACE)
    assert (data["facts"]["category"], data["facts"]["area"]) == ("乱堆物料", PLACE)
