"""What dispatch's component tests share: dispatch on real PostgreSQL and the real broker
(one app a test module: the Kafka group join is the slow part), the demo users' tokens, a
whistle as intake publishes it, and the steps most tests take — a case routed to one
department, signed for, resolved — and the check that a refusal changes nothing. Every test
works on its own cases, so tests do not interfere.

A test module takes the app fixture as ``app = dispatch_fixtures.app``."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.dispatch.config import Settings
from services.dispatch.demo import seed_demo
from services.dispatch.main import create_app
from shared import db
from shared.contract import (
    Actor,
    CaseWhistled,
    Envelope,
    Location,
    Priority,
    new_event,
)
from tests.conftest import migrated_database
from tests.helpers import (
    as_user,
    eventually,
    publish_event,
    running_app,
)

GRID = "YA/YA01/YA0101/YA0101-01"  # 桃园社区, 迎泽街道
GRID_JINXIU = "YA/YA02/YA0201/YA0201-02"  # 锦绣社区, 锦园街道
GRID_BEIGUAN = "YA/YA04/YA0401/YA0401-01"  # 北关社区: no liaison units in the demo
_case_numbers = itertools.count(1)

# Demo users (shared/demo.py USERS).
CG, XF, SF, ZJ = (as_user(f"{d}-duty") for d in ("cg", "xf", "sf", "zj"))
ADMIN, COMMAND, SUPERVISOR = as_user("admin"), as_user("command"), as_user("supervisor")
TAOYUAN, JINXIU = as_user("taoyuan"), as_user("jinxiu")  # communities YA0101, YA0201
YINGZE, DONGHU = as_user("yingze"), as_user("donghu")  # streets YA01, YA03
WANGFANG = as_user("wangfang")  # grid worker in YA0101
WY, JT = as_user("wy-jx-duty"), as_user("jt-duty")  # 锦绣物业, 交通局
HB, GS, RS = as_user("hb-duty"), as_user("gs-duty"), as_user("rs-duty")  # 生态环境, 供水, 人社
# The community whistling, as intake puts it in the envelope.
TAOYUAN_ACTOR = Actor(subject="taoyuan", role="community", name="桃园社区书记")


@dataclass
class App:
    client: httpx.AsyncClient
    dsn: str
    bootstrap: str

    async def val(self, sql: str, *args: Any) -> Any:
        conn = await db.connect_once(self.dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        conn = await db.connect_once(self.dsn)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    async def outbox(self, case_id: uuid.UUID) -> list[dict[str, Any]]:
        """The payloads this service wrote for one case, oldest first."""
        rows = await self.rows(
            "SELECT payload FROM outbox WHERE key = $1 ORDER BY id", str(case_id)
        )
        return [r["payload"] for r in rows]

    async def assignments(self, case_id: uuid.UUID) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT * FROM assignments WHERE case_id = $1 ORDER BY role DESC, department_id",
            case_id,
        )

    async def whistle(self, event: Envelope) -> None:
        """Publish a whistle as intake would, and wait until dispatch handled it."""
        await publish_event(self.bootstrap, event)
        await self.handled(event)

    async def handled(self, event: Envelope) -> None:
        async def claimed() -> bool:
            return bool(
                await self.val(
                    "SELECT count(*) FROM inbox WHERE consumer = 'whistles' AND event_id = $1",
                    event.event_id,
                )
            )

        await eventually(claimed, timeout=60, message=f"dispatch handled {event.type}")


def whistled(
    case_id: uuid.UUID | None = None,
    *,
    category: str = "E0101",
    area_path: str = GRID,
    departments: list[str] | None = None,
    note: str | None = None,
    actor: Actor | None = TAOYUAN_ACTOR,
    priority: Priority = Priority.URGENT,
) -> Envelope:
    payload = CaseWhistled(
        case_no=f"YA20260501-{next(_case_numbers):04d}",
        area_path=area_path,
        category=category,
        priority=priority,
        grid_code=area_path.rsplit("/", 1)[-1],
        description="楼下空地乱堆建筑垃圾",
        location=Location(address="桃园小区3号楼"),
        departments=departments or [],
        note=note,
    )
    return new_event(payload, case_id=case_id or uuid.uuid4(), producer="intake", actor=actor)


@pytest.fixture(scope="module")
async def app(pg_server, kafka_server):
    dsn = await migrated_database(pg_server, "dispatch")
    settings = Settings(
        database_url=dsn,
        kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False,
        log_json=False,
        outbox_poll_interval_seconds=0.5,
        environment="test",
    )
    await seed_demo(settings)
    await seed_demo(settings)  # idempotent: upserts
    async with running_app(create_app(settings)) as client:
        yield App(client, dsn, kafka_server.bootstrap)


async def rule_id(app: App, category: str, area_prefix: str) -> int:
    return await app.val(
        "SELECT id FROM routing_rules WHERE category_code = $1 AND area_prefix = $2",
        category,
        area_prefix,
    )


# --- the steps most tests take ----------------------------------------------------------


async def routed(app: App, **whistle: Any) -> tuple[Envelope, dict[str, Any]]:
    """A fresh case whistled and routed to one department: the whistle and its assignment."""
    event = whistled(**whistle)
    await app.whistle(event)
    (a,) = await app.assignments(event.case_id)
    return event, a


async def sign_for(app: App, assignment_id: Any, who: dict[str, str]) -> None:
    """报到, which must succeed."""
    signed = await app.client.post(f"/assignments/{assignment_id}/sign-for", headers=who)
    assert signed.status_code == 200, signed.text


async def signed_for(
    app: App, who: dict[str, str], **whistle: Any
) -> tuple[Envelope, dict[str, Any]]:
    """A fresh case routed to one department, and signed for by ``who`` (of that department)."""
    event, a = await routed(app, **whistle)
    await sign_for(app, a["id"], who)
    return event, a


async def sign_and_resolve(
    app: App, assignment_id: Any, who: dict[str, str], **body: Any
) -> httpx.Response:
    await sign_for(app, assignment_id, who)
    return await app.client.post(
        f"/assignments/{assignment_id}/resolve", headers=who, json={"result": "已处理", **body}
    )


async def resolved_flags(app: App, case_id: uuid.UUID) -> list[tuple[str, bool]]:
    """Each case.resolved written: the department, and whether the case as a whole was."""
    return [
        (o["payload"]["department_id"], o["payload"]["case_resolved"])
        for o in await app.outbox(case_id)
        if o["type"] == "case.resolved"
    ]


async def joint_case(app: App, case_no: str, area_path: str) -> tuple[uuid.UUID, dict[str, Any]]:
    """A case whistled (without an actor) naming cg as lead and zj as co-handler: its id and
    the assignments' ids by department."""
    case_id = uuid.uuid4()
    whistle = new_event(
        CaseWhistled(
            case_no=case_no,
            area_path=area_path,
            category="E0101",
            priority=Priority.NORMAL,
            grid_code="YA0101-01",
            description="联合处置",
            location=Location(),
            departments=["cg", "zj"],
        ),
        case_id=case_id,
        producer="intake",
    )
    await publish_event(app.bootstrap, whistle)

    async def both():
        rows = await app.rows(
            "SELECT id, department_id FROM assignments WHERE case_id = $1", case_id
        )
        return rows if len(rows) == 2 else None

    rows = await eventually(both, message="2 assignments")
    return case_id, {r["department_id"]: r["id"] for r in rows}


# --- refusals change nothing ---------------------------------------------------------------

State = Callable[[App, uuid.UUID], Awaitable[Any]]


async def case_state(app: App, case_id: uuid.UUID) -> tuple:
    """Everything a refusal must leave alone: the case's assignments, notes, queue, outbox."""
    return (
        [
            (a["id"], a["department_id"], a["state"], a["exit_reason"], a["updated_at"])
            for a in await app.assignments(case_id)
        ],
        await app.val("SELECT count(*) FROM assignments"),
        await app.val("SELECT count(*) FROM assignment_notes"),
        await app.val("SELECT count(*) FROM manual_dispatch WHERE cleared_at IS NULL"),
        await app.val("SELECT count(*) FROM outbox"),
        [o["type"] for o in await app.outbox(case_id)],
    )


async def refused(app: App, case_id: uuid.UUID, refusals: list, state: State = case_state) -> None:
    """Each (path, headers, body, status, code) POSTed is refused with that status and error
    code (any code when None) and a message, and ``state`` of the case is as it was."""
    before = await state(app, case_id)
    for path, who, body, status, code in refusals:
        resp = await app.client.post(path, json=body, headers=who)
        error = resp.json()["error"]
        assert resp.status_code == status, (path, body, resp.text)
        if code is not None:
            assert error["code"] == code, (path, body, resp.text)
        assert error["message"], resp.text
    assert await state(app, case_id) == before
