"""Dispatch against real PostgreSQL and the real broker: one app for the module (the Kafka
group join is the slow part); every test works on its own cases, so they do not interfere."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.dispatch.config import Settings
from services.dispatch.demo import seed_demo
from services.dispatch.main import create_app
from shared import db, demo
from shared.events import CaseWhistled, Envelope, Location, Priority, Topics, new_event
from tests.conftest import migrated_database
from tests.helpers import eventually, publish_event, read_topic, running_app

GRID = "YA/YA01/YA0101/YA0101-01"
_case_numbers = itertools.count(1)


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
        rows = await self.rows("SELECT payload FROM outbox WHERE key = $1 ORDER BY id", str(case_id))
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
            return bool(await self.val(
                "SELECT count(*) FROM inbox WHERE consumer = 'whistles' AND event_id = $1",
                event.event_id,
            ))

        await eventually(claimed, timeout=60, message=f"dispatch handled {event.type}")


def whistled(case_id: uuid.UUID | None = None, *, category: str = "E0101", area_path: str = GRID,
             departments: list[str] | None = None, note: str | None = None) -> Envelope:
    payload = CaseWhistled(
        case_no=f"YA20260501-{next(_case_numbers):04d}", area_path=area_path, category=category,
        priority=Priority.URGENT, grid_code=area_path.rsplit("/", 1)[-1],
        description="楼下空地乱堆建筑垃圾", location=Location(address="桃园小区3号楼"),
        departments=departments or [], note=note,
    )
    return new_event(payload, case_id=case_id or uuid.uuid4(), producer="intake")


@pytest.fixture(scope="module")
async def app(pg_server, kafka_server):
    dsn = await migrated_database(pg_server, "dispatch")
    settings = Settings(
        database_url=dsn, kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False, log_json=False, outbox_poll_interval_seconds=0.5,
    )
    await seed_demo(settings)
    await seed_demo(settings)  # idempotent: upserts
    async with running_app(create_app(settings)) as client:
        yield App(client, dsn, kafka_server.bootstrap)


async def rule_id(app: App, category: str, area_prefix: str) -> int:
    return await app.val(
        "SELECT id FROM routing_rules WHERE category_code = $1 AND area_prefix = $2",
        category, area_prefix,
    )


# --- reference data ----------------------------------------------------------------------


async def test_serves_the_demo_catalogue_departments_and_rules(app):
    categories = (await app.client.get("/categories")).json()
    assert categories == [
        {"code": c, "name": n, "parent_code": p} for c, n, p in sorted(demo.CATEGORIES)
    ]
    departments = (await app.client.get("/departments")).json()
    assert {(d["id"], d["name"], d["kind"]) for d in departments} == set(demo.DEPARTMENTS)
    rules = (await app.client.get("/routing-rules")).json()
    demo_rules = {(r["category_code"], r["area_prefix"], r["department_id"]) for r in rules}
    assert set(demo.ROUTING_RULES) <= demo_rules
    assert await app.val("SELECT count(*) FROM routing_rules") >= len(demo.ROUTING_RULES)
    e0103 = (await app.client.get("/routing-rules", params={"category": "E0103"})).json()
    assert [(r["area_prefix"], r["department_name"]) for r in e0103] == [
        ("YA", "榆安区住房和城乡建设局"), ("YA/YA02/YA0201", "锦绣物业公司"),
    ]


# --- routing (派单) ------------------------------------------------------------------------


async def test_whistle_creates_an_assignment_and_publishes_case_dispatched(app):
    event = whistled(note="请尽快清运")
    await app.whistle(event)
    (a,) = await app.assignments(event.case_id)
    rule = await rule_id(app, "E0101", "YA")
    assert (a["department_id"], a["role"], a["state"], a["rule_id"]) == (
        "cg", "lead", "dispatched", rule)
    assert a["reason"] == f"规则#{rule}：分类E0101在YA范围内由榆安区城市管理局主办"
    assert (a["priority"], a["note"], a["area_path"]) == ("urgent", "请尽快清运", GRID)

    (out,) = await app.outbox(event.case_id)
    assert out["type"] == "case.dispatched" and out["producer"] == "dispatch"
    assert out["causation_id"] == str(event.event_id)
    assert out["correlation_id"] == event.correlation_id
    p = out["payload"]
    assert (p["assignment_id"], p["department_id"], p["department_name"], p["role"]) == (
        str(a["id"]), "cg", "榆安区城市管理局", "lead")
    assert (p["rule_id"], p["reason"], p["case_no"], p["priority"]) == (
        rule, a["reason"], event.payload.case_no, "urgent")

    async def published() -> bool:
        records = await read_topic(app.bootstrap, Topics.DISPATCH)
        return any(r.key == str(event.case_id).encode() for r in records)

    await eventually(published, timeout=30, message="case.dispatched reached the topic")

    listed = (await app.client.get("/departments/cg/assignments",
                                   params={"state": "dispatched"})).json()
    mine = [x for x in listed if x["case_id"] == str(event.case_id)]
    assert [(x["role_label"], x["state_label"]) for x in mine] == [("主办", "已派单待报到")]


async def test_property_company_rule_beats_the_district_rule(app):
    inside = whistled(category="E0103", area_path="YA/YA02/YA0201/YA0201-02")
    outside = whistled(category="E0103", area_path="YA/YA02/YA0202/YA0202-01")
    await app.whistle(inside)
    await app.whistle(outside)
    (a,) = await app.assignments(inside.case_id)
    (b,) = await app.assignments(outside.case_id)
    assert (a["department_id"], a["rule_id"]) == (
        "wy-jx", await rule_id(app, "E0103", "YA/YA02/YA0201"))
    assert "锦绣物业公司主办" in a["reason"]
    assert (b["department_id"], b["rule_id"]) == ("zj", await rule_id(app, "E0103", "YA"))
    assert [o["payload"]["department_id"] for o in await app.outbox(inside.case_id)] == ["wy-jx"]


async def test_named_departments_lead_and_co_handle_unknown_ones_noted(app):
    event = whistled(departments=["zj", "nope", "cg"])
    await app.whistle(event)
    got = await app.assignments(event.case_id)
    assert [(a["department_id"], a["role"], a["rule_id"]) for a in got] == [
        ("zj", "lead", None), ("cg", "co", None)]
    assert all("点名部门“nope”不存在，已忽略" in a["reason"] for a in got)
    outs = await app.outbox(event.case_id)
    assert sorted((o["payload"]["department_id"], o["payload"]["role"]) for o in outs) == [
        ("cg", "co"), ("zj", "lead")]


async def test_the_same_whistle_twice_gives_one_assignment(app):
    event = whistled()
    await publish_event(app.bootstrap, event)
    await publish_event(app.bootstrap, event)  # redelivered
    again = whistled(event.case_id)  # a second whistle of the same case, a new event id
    await app.whistle(again)
    await app.handled(event)
    assert len(await app.assignments(event.case_id)) == 1
    assert [o["type"] for o in await app.outbox(event.case_id)] == ["case.dispatched"]
    assert await app.val("SELECT count(*) FROM inbox WHERE event_id = $1", event.event_id) == 1


async def test_unroutable_whistle_waits_for_manual_dispatch_until_named(app):
    event = whistled(area_path="XB/XB01/XB0101/XB0101-01", departments=["ghost"])
    await app.whistle(event)
    assert await app.assignments(event.case_id) == []
    (out,) = await app.outbox(event.case_id)
    assert out["type"] == "case.unroutable"
    reason = out["payload"]["reason"]
    assert reason.startswith("分类E0101在XB/XB01/XB0101/XB0101-01范围内没有匹配的派单规则")
    assert "点名部门“ghost”不存在" in reason
    waiting = (await app.client.get("/manual-dispatch")).json()
    mine = [w for w in waiting if w["case_id"] == str(event.case_id)]
    assert [(w["case_no"], w["reason"], w["departments"]) for w in mine] == [
        (event.payload.case_no, reason, ["ghost"])]

    # The community whistles again, naming the department: dispatched, out of the queue.
    named = whistled(event.case_id, area_path=event.payload.area_path, departments=["cg"])
    await app.whistle(named)
    assert [a["department_id"] for a in await app.assignments(event.case_id)] == ["cg"]
    waiting = (await app.client.get("/manual-dispatch")).json()
    assert str(event.case_id) not in {w["case_id"] for w in waiting}


# --- the department's side (报到, 办结) ----------------------------------------------------


async def test_sign_for_then_resolve_and_the_refusals_change_nothing(app):
    event = whistled(category="E0201")
    await app.whistle(event)
    (row,) = await app.assignments(event.case_id)
    url = f"/assignments/{row['id']}"
    c = app.client

    async def snapshot() -> tuple:
        a = (await app.assignments(event.case_id))[0]
        return a["state"], a["result"], a["updated_at"], len(await app.outbox(event.case_id))

    before = await snapshot()
    refusals = [
        (f"{url}/resolve", {"department_id": "xf", "result": "已整改"}, 409, "invalid_state"),
        (f"{url}/sign-for", {"department_id": "cg"}, 403, "not_your_assignment"),
        (f"{url}/sign-for", {"department_id": ""}, 422, "validation_error"),
        (f"{url}/sign-for", {"department_id": "xf", "extra": 1}, 422, "validation_error"),
        (f"/assignments/{uuid.uuid4()}/sign-for", {"department_id": "xf"}, 404,
         "assignment_not_found"),
    ]
    for path, body, status, code in refusals:
        resp = await c.post(path, json=body)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
        assert resp.json()["error"]["message"]
    assert await snapshot() == before

    signed = await c.post(f"{url}/sign-for", json={"department_id": "xf"},
                          headers={"X-Correlation-ID": "corr-sign-1"})
    assert signed.status_code == 200, signed.text
    assert (signed.json()["state"], signed.json()["state_label"]) == ("signed_for", "已报到办理中")
    again = await c.post(f"{url}/sign-for", json={"department_id": "xf"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_state")

    before = await snapshot()
    refusals = [
        ({"department_id": "xf", "result": ""}, 422, "validation_error"),
        ({"department_id": "xf"}, 422, "validation_error"),
        ({"department_id": "xf", "result": "   "}, 422, "result_required"),
        ({"department_id": "cg", "result": "已整改"}, 403, "not_your_assignment"),
    ]
    for body, status, code in refusals:
        resp = await c.post(f"{url}/resolve", json=body)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    assert await snapshot() == before

    done = await c.post(f"{url}/resolve", json={"department_id": "xf", "result": "已清除消防通道堆物"})
    assert done.status_code == 200, done.text
    got = (await c.get(url)).json()
    assert (got["state"], got["result"]) == ("resolved", "已清除消防通道堆物")
    assert got["signed_for_at"] and got["resolved_at"]
    twice = await c.post(f"{url}/resolve", json={"department_id": "xf", "result": "再次"})
    assert twice.status_code == 409

    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs] == ["case.dispatched", "case.signed_for", "case.resolved"]
    signed_for, resolved = outs[1], outs[2]
    assert signed_for["correlation_id"] == "corr-sign-1"
    assert signed_for["actor"]["subject"] == "xf"
    assert signed_for["payload"]["assignment_id"] == str(row["id"])
    assert resolved["payload"]["result"] == "已清除消防通道堆物"
    assert resolved["payload"]["department_id"] == "xf"


async def test_wrong_department_message_is_chinese_first_english_on_request(app):
    event = whistled(category="E0301")
    await app.whistle(event)
    (row,) = await app.assignments(event.case_id)
    path = f"/assignments/{row['id']}/sign-for"
    zh = await app.client.post(path, json={"department_id": "cg"})
    en = await app.client.post(path, json={"department_id": "cg"},
                               headers={"Accept-Language": "en"})
    assert zh.json()["error"]["message"] == "该派单属于榆安区司法局，部门“cg”无权办理"
    assert "belongs to department 'sf'" in en.json()["error"]["message"]


async def test_reading_assignments_and_unknowns(app):
    c = app.client
    assert (await c.get("/departments/nope/assignments")).json()["error"]["code"] == (
        "department_not_found")
    assert (await c.get("/departments/nope/assignments")).status_code == 404
    assert (await c.get("/departments/cg/assignments", params={"state": "lost"})).status_code == 422
    assert (await c.get(f"/assignments/{uuid.uuid4()}")).status_code == 404
    assert (await c.get("/assignments/not-a-uuid")).status_code == 422
    resolved = (await c.get("/departments/xf/assignments", params={"state": "resolved"})).json()
    assert all(a["state"] == "resolved" and a["department_id"] == "xf" for a in resolved)


# --- routing rules -------------------------------------------------------------------------


async def test_add_rule_refusals_change_nothing_and_a_new_rule_routes(app):
    c = app.client
    existing = await rule_id(app, "E0101", "YA")
    count = await app.val("SELECT count(*) FROM routing_rules")
    refusals = [
        ({"category_code": "E0101", "area_prefix": "YA", "department_id": "zj"}, 409,
         "rule_exists"),
        ({"category_code": "Z9999", "area_prefix": "YA", "department_id": "zj"}, 422,
         "unknown_category"),
        ({"category_code": "E0401", "area_prefix": "YA", "department_id": "nope"}, 422,
         "unknown_department"),
        ({"category_code": "E0401", "area_prefix": "YA//YA03", "department_id": "zj"}, 422,
         "validation_error"),
        ({"category_code": "E0401", "area_prefix": "/YA", "department_id": "zj"}, 422,
         "validation_error"),
        ({"category_code": "E0401", "department_id": "zj"}, 422, "validation_error"),
    ]
    for body, status, code in refusals:
        resp = await c.post("/routing-rules", json=body)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    conflict = await c.post("/routing-rules", json=refusals[0][0])
    assert f"规则#{existing}" in conflict.json()["error"]["message"]
    assert "榆安区城市管理局" in conflict.json()["error"]["message"]
    assert await app.val("SELECT count(*) FROM routing_rules") == count

    created = await c.post("/routing-rules", json={
        "category_code": "E0401", "area_prefix": "YA/YA03", "department_id": "zj"})
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (rule["area_prefix"], rule["department_name"]) == ("YA/YA03", "榆安区住房和城乡建设局")
    assert await app.val("SELECT count(*) FROM routing_rules") == count + 1

    inside = whistled(category="E0401", area_path="YA/YA03/YA0301/YA0301-02")
    outside = whistled(category="E0401", area_path="YA/YA01/YA0102/YA0102-01")
    await app.whistle(inside)
    await app.whistle(outside)
    assert [(a["department_id"], a["rule_id"]) for a in await app.assignments(inside.case_id)] == [
        ("zj", rule["id"])]
    assert [a["department_id"] for a in await app.assignments(outside.case_id)] == ["cg"]


# --- operations ----------------------------------------------------------------------------


async def test_health_readiness_and_asyncapi(app):
    ready = await app.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    spec = json.dumps((await app.client.get("/asyncapi.json")).json())
    for expected in (Topics.INTAKE, Topics.DISPATCH, "case.dispatched", "dispatch.whistles"):
        assert expected in spec
