"""Dispatch against real PostgreSQL and the real broker: one app for the module (the Kafka
group join is the slow part); every test works on its own cases, so they do not interfere.
Every request carries a bearer token of a demo user (or a made-up one), as in production."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.dispatch.config import Settings
from services.dispatch import demo as dispatch_demo
from services.dispatch.demo import seed_demo
from services.dispatch.main import create_app
from shared import db, demo
from shared.auth import Role, TokenKeys
from shared.contract import (
    Actor,
    CasePhotoAdded,
    CaseWhistled,
    Envelope,
    Location,
    Priority,
    Topics,
    new_event,
)
from tests.conftest import migrated_database
from tests.helpers import (
    as_user,
    bearer,
    eventually,
    publish_event,
    read_topic,
    running_app,
    token,
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


# --- reference data ----------------------------------------------------------------------


async def test_serves_the_demo_catalogue_departments_and_rules(app):
    c = app.client
    categories = await c.get("/categories")  # public: intake's sync and Open311 read it bare
    assert categories.status_code == 200, categories.text
    assert [(c["code"], c["name"], c["parent_code"]) for c in categories.json()] == sorted(
        demo.CATEGORIES
    )
    by_code = {c["code"]: c for c in categories.json()}
    assert {
        "category_class": "event",
        "class_zh": "事件",
        "department_kind": "property",
        "department_kind_zh": "物业企业",
    }.items() <= by_code["E0103"].items()
    assert by_code["E0102"]["department_kind"] == "functional"  # inherited from E01
    assert by_code["C0101"]["category_class"] == "component"
    for role in Role:  # every role may read the departments
        resp = await c.get("/departments", headers=bearer(role, department_id="cg"))
        assert resp.status_code == 200, (role, resp.text)
    departments = (await c.get("/departments", headers=WANGFANG)).json()
    # shared/demo.py's, and dispatch's own (a street office, a volunteer team)
    assert set(demo.DEPARTMENTS) <= {(d["id"], d["name"], d["kind"]) for d in departments}
    rules = (await c.get("/routing-rules", headers=COMMAND)).json()
    demo_rules = {
        (r["category_code"], r["area_prefix"], r["department_id"], tuple(r["co_department_ids"]))
        for r in rules
    }
    assert set(demo.ROUTING_RULES) <= demo_rules
    assert await app.val("SELECT count(*) FROM routing_rules") >= len(demo.ROUTING_RULES)
    e0403 = (await c.get("/routing-rules", params={"category": "E0403"}, headers=ADMIN)).json()
    assert [(r["area_prefix"], r["department_name"], r["co_department_names"]) for r in e0403] == [
        ("YA", "榆安区生态环境分局", ["榆安区城市管理局"])
    ]
    assert (await c.get("/routing-rules", headers=SUPERVISOR)).status_code == 200
    for who in (CG, TAOYUAN, YINGZE, WANGFANG):
        denied = await c.get("/routing-rules", headers=who)
        assert (denied.status_code, denied.json()["error"]["code"]) == (403, "role_not_allowed")


# --- authentication ------------------------------------------------------------------------


async def test_no_token_or_a_bad_one_is_401_and_changes_nothing(app):
    event = whistled(category="E0201")
    await app.whistle(event)
    (row,) = await app.assignments(event.case_id)
    other_key = TokenKeys("HS256", "x" * 40, "x" * 40, "whistle", "whistle")
    cases = [
        ({}, "unauthenticated"),
        ({"Authorization": "Basic eGY6eGY="}, "unauthenticated"),
        ({"Authorization": "Bearer "}, "unauthenticated"),
        ({"Authorization": "Bearer not.a.jwt"}, "invalid_token"),
        (
            {
                "Authorization": f"Bearer {token(Role.DEPARTMENT, department_id='xf', keys=other_key)}"
            },
            "invalid_token",
        ),
        (
            {"Authorization": f"Bearer {token(Role.DEPARTMENT, department_id='xf', ttl=-60)}"},
            "token_expired",
        ),
    ]
    requests = [
        ("GET", "/departments", None),
        ("GET", "/routing-rules", None),
        (
            "POST",
            "/routing-rules",
            {"category_code": "E0401", "area_prefix": "YA/YA04", "department_id": "zj"},
        ),
        ("GET", "/departments/xf/assignments", None),
        ("GET", f"/assignments/{row['id']}", None),
        ("POST", f"/assignments/{row['id']}/sign-for", {}),
        ("POST", f"/assignments/{row['id']}/resolve", {"result": "已整改"}),
        ("GET", "/manual-dispatch", None),
    ]
    rules = await app.val("SELECT count(*) FROM routing_rules")
    for headers, code in cases:
        for method, path, body in requests:
            resp = await app.client.request(method, path, json=body, headers=headers)
            assert (resp.status_code, resp.json()["error"]["code"]) == (401, code), (
                method,
                path,
                headers,
                resp.text,
            )
            assert resp.json()["error"]["message"]
    (after,) = await app.assignments(event.case_id)
    assert (after["state"], after["updated_at"]) == (row["state"], row["updated_at"])
    assert [o["type"] for o in await app.outbox(event.case_id)] == ["case.dispatched"]
    assert await app.val("SELECT count(*) FROM routing_rules") == rules
    expired = await app.client.get(
        "/departments",
        headers={"Authorization": f"Bearer {token(Role.ADMIN, ttl=-60)}", "Accept-Language": "en"},
    )
    assert expired.json()["error"]["message"] == "the token has expired"


# --- routing (派单) ------------------------------------------------------------------------


async def test_whistle_creates_an_assignment_and_publishes_case_dispatched(app):
    event = whistled(note="请尽快清运")
    await app.whistle(event)
    (a,) = await app.assignments(event.case_id)
    rule = await rule_id(app, "E0101", "YA")
    assert (a["department_id"], a["role"], a["state"], a["rule_id"]) == (
        "cg",
        "lead",
        "dispatched",
        rule,
    )
    assert a["reason"] == f"规则#{rule}：分类E0101在YA范围内由榆安区城市管理局主办"
    assert (a["priority"], a["note"], a["area_path"]) == ("urgent", "请尽快清运", GRID)

    (out,) = await app.outbox(event.case_id)
    assert out["type"] == "case.dispatched" and out["producer"] == "dispatch"
    assert out["causation_id"] == str(event.event_id)
    assert out["correlation_id"] == event.correlation_id
    # Routing the whistle is the community's act: its actor travels on.
    assert out["actor"] == {"subject": "taoyuan", "role": "community", "name": "桃园社区书记"}
    p = out["payload"]
    assert (p["assignment_id"], p["department_id"], p["department_name"], p["role"]) == (
        str(a["id"]),
        "cg",
        "榆安区城市管理局",
        "lead",
    )
    assert (p["rule_id"], p["reason"], p["case_no"], p["priority"]) == (
        rule,
        a["reason"],
        event.payload.case_no,
        "urgent",
    )

    async def published() -> bool:
        records = await read_topic(app.bootstrap, Topics.DISPATCH)
        return any(r.key == str(event.case_id).encode() for r in records)

    await eventually(published, timeout=30, message="case.dispatched reached the topic")

    listed = (
        await app.client.get(
            "/departments/cg/assignments", headers=CG, params={"state": "dispatched"}
        )
    ).json()
    mine = [x for x in listed if x["case_id"] == str(event.case_id)]
    assert [(x["role_label"], x["state_label"]) for x in mine] == [("主办", "已派单待报到")]


async def test_the_compounds_property_company_beats_the_district_rule(app):
    inside = whistled(category="E0103", area_path=GRID_JINXIU)
    outside = whistled(category="E0103", area_path="YA/YA02/YA0202/YA0202-01")
    await app.whistle(inside)
    await app.whistle(outside)
    (a,) = await app.assignments(inside.case_id)
    (b,) = await app.assignments(outside.case_id)
    assert (a["department_id"], a["rule_id"], a["basis"]) == ("wy-jx", None, "area_default")
    assert "锦绣物业公司服务的区域（YA/YA02/YA0201），由其主办" in a["reason"]
    assert (b["department_id"], b["rule_id"]) == ("zj", await rule_id(app, "E0103", "YA"))
    assert [o["payload"]["department_id"] for o in await app.outbox(inside.case_id)] == ["wy-jx"]


async def test_named_departments_lead_and_co_handle_unknown_ones_noted(app):
    event = whistled(departments=["zj", "nope", "cg"])
    await app.whistle(event)
    got = await app.assignments(event.case_id)
    assert [(a["department_id"], a["role"], a["rule_id"]) for a in got] == [
        ("zj", "lead", None),
        ("cg", "co", None),
    ]
    assert all("点名部门“nope”不存在，已忽略" in a["reason"] for a in got)
    outs = await app.outbox(event.case_id)
    assert sorted((o["payload"]["department_id"], o["payload"]["role"]) for o in outs) == [
        ("cg", "co"),
        ("zj", "lead"),
    ]


async def test_the_same_whistle_twice_gives_one_assignment(app):
    event = whistled(actor=None)  # an envelope without an actor: routed by the system
    await publish_event(app.bootstrap, event)
    await publish_event(app.bootstrap, event)  # redelivered
    again = whistled(event.case_id)  # a second whistle of the same case, a new event id
    await app.whistle(again)
    await app.handled(event)
    assert len(await app.assignments(event.case_id)) == 1
    (out,) = await app.outbox(event.case_id)
    assert out["type"] == "case.dispatched"
    assert out["actor"] == {"subject": "system:dispatch", "role": "system", "name": "自动派单"}
    assert await app.val("SELECT count(*) FROM inbox WHERE event_id = $1", event.event_id) == 1


async def test_unroutable_whistle_waits_for_manual_dispatch_in_its_area_until_named(app):
    # 独居老人帮扶 in 北关社区: no rule, no volunteer team there, no liaison units.
    grid = "YA/YA04/YA0401/YA0401-05"
    event = whistled(category="E0501", area_path=grid, departments=["ghost"])
    await app.whistle(event)
    assert await app.assignments(event.case_id) == []
    (out,) = await app.outbox(event.case_id)
    assert out["type"] == "case.unroutable"
    assert out["actor"]["subject"] == "taoyuan"
    reason = out["payload"]["reason"]
    assert reason.startswith(f"分类E0501在{grid}范围内没有匹配的派单规则")
    assert "点名部门“ghost”不存在" in reason

    async def queued_for(headers: dict[str, str]) -> list[dict[str, Any]]:
        resp = await app.client.get("/manual-dispatch", headers=headers, params={"limit": 200})
        assert resp.status_code == 200, resp.text
        return [w for w in resp.json() if w["case_id"] == str(event.case_id)]

    beiguan = bearer(Role.COMMUNITY, "YA/YA04/YA0401")
    mine = await queued_for(beiguan)
    assert [(w["case_no"], w["reason"], w["departments"]) for w in mine] == [
        (event.payload.case_no, reason, ["ghost"])
    ]
    for above in (bearer(Role.STREET, "YA/YA04"), COMMAND, SUPERVISOR):
        assert len(await queued_for(above)) == 1
    for elsewhere in (TAOYUAN, YINGZE, JINXIU, DONGHU, as_user("sup-yingze")):
        assert await queued_for(elsewhere) == []
    for who in (WANGFANG, CG, ADMIN):
        denied = await app.client.get("/manual-dispatch", headers=who)
        assert (denied.status_code, denied.json()["error"]["code"]) == (403, "role_not_allowed")

    # The community whistles again, naming the department: dispatched, out of the queue.
    named = whistled(event.case_id, category="E0501", area_path=grid, departments=["mz"])
    await app.whistle(named)
    assert [a["department_id"] for a in await app.assignments(event.case_id)] == ["mz"]
    assert await queued_for(beiguan) == []


# --- the department's side (报到, 办结) ----------------------------------------------------


async def test_sign_for_then_resolve_and_the_refusals_change_nothing(app):
    event = whistled(category="E0201")
    await app.whistle(event)
    (row,) = await app.assignments(event.case_id)
    assert row["department_id"] == "xf"
    url = f"/assignments/{row['id']}"
    c = app.client

    async def snapshot() -> tuple:
        (a,) = await app.assignments(event.case_id)
        return (
            a["state"],
            a["result"],
            a["signed_for_at"],
            a["resolved_at"],
            a["updated_at"],
            await app.val("SELECT count(*) FROM assignments"),
            [o["type"] for o in await app.outbox(event.case_id)],
        )

    before = await snapshot()
    refusals = [
        (f"{url}/resolve", XF, {"result": "已整改"}, 409, "invalid_state"),
        # Another department: refused before the state is looked at.
        (f"{url}/sign-for", CG, None, 403, "not_your_assignment"),
        (f"{url}/sign-for", CG, {}, 403, "not_your_assignment"),
        (f"{url}/resolve", CG, {"result": "已整改"}, 403, "not_your_assignment"),
        # A department token naming xf in the body changes nothing: the token decides.
        (f"{url}/sign-for", CG, {"department_id": "xf"}, 422, "validation_error"),
        (f"{url}/sign-for", XF, {"department_id": "xf"}, 422, "validation_error"),
        # Only departments sign for and resolve, whatever their area.
        (f"{url}/sign-for", TAOYUAN, None, 403, "role_not_allowed"),
        (f"{url}/sign-for", COMMAND, None, 403, "role_not_allowed"),
        (f"{url}/resolve", SUPERVISOR, {"result": "已整改"}, 403, "role_not_allowed"),
        (f"{url}/sign-for", ADMIN, None, 403, "role_not_allowed"),
        (f"/assignments/{uuid.uuid4()}/sign-for", XF, None, 404, "assignment_not_found"),
    ]
    for path, who, body, status, code in refusals:
        resp = await c.post(path, json=body, headers=who)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), (
            path,
            body,
            resp.text,
        )
        assert resp.json()["error"]["message"]
    assert await snapshot() == before

    # No body at all: the token says who signs for it.
    signed = await c.post(f"{url}/sign-for", headers={**XF, "X-Correlation-ID": "corr-sign-1"})
    assert signed.status_code == 200, signed.text
    assert (signed.json()["state"], signed.json()["state_label"]) == ("signed_for", "已报到办理中")
    again = await c.post(f"{url}/sign-for", json={}, headers=XF)  # an empty object is fine too
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_state")
    # A stranger learns nothing about the state: 403, not 409.
    stranger = await c.post(f"{url}/sign-for", headers=CG)
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (403, "not_your_assignment")

    before = await snapshot()
    refusals = [
        ({"result": ""}, XF, 422, "validation_error"),
        ({}, XF, 422, "validation_error"),
        ({"department_id": "xf", "result": "已整改"}, XF, 422, "validation_error"),
        ({"result": "   "}, XF, 422, "result_required"),
        ({"result": "已整改"}, CG, 403, "not_your_assignment"),
        (
            {"result": "已整改"},
            bearer(Role.DEPARTMENT, department_id="xf-other"),
            403,
            "not_your_assignment",
        ),
    ]
    for body, who, status, code in refusals:
        resp = await c.post(f"{url}/resolve", json=body, headers=who)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    assert await snapshot() == before

    done = await c.post(f"{url}/resolve", json={"result": "已清除消防通道堆物"}, headers=XF)
    assert done.status_code == 200, done.text
    got = (await c.get(url, headers=XF)).json()
    assert (got["state"], got["result"]) == ("resolved", "已清除消防通道堆物")
    assert got["signed_for_at"] and got["resolved_at"]
    twice = await c.post(f"{url}/resolve", json={"result": "再次"}, headers=XF)
    assert twice.status_code == 409

    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs] == ["case.dispatched", "case.signed_for", "case.resolved"]
    signed_for, resolved = outs[1], outs[2]
    assert signed_for["correlation_id"] == "corr-sign-1"
    # The acting person, from the token, travels in the envelope.
    assert signed_for["actor"] == {
        "subject": "xf-duty",
        "role": "department",
        "name": "榆安区消防救援大队值班员",
    }
    assert signed_for["payload"]["assignment_id"] == str(row["id"])
    assert resolved["actor"]["subject"] == "xf-duty"
    assert resolved["actor"]["role"] == "department"
    assert resolved["payload"]["result"] == "已清除消防通道堆物"
    assert resolved["payload"]["department_id"] == "xf"


async def test_wrong_department_message_is_chinese_first_english_on_request(app):
    event = whistled(category="E0303")
    await app.whistle(event)
    (row,) = await app.assignments(event.case_id)
    path = f"/assignments/{row['id']}/sign-for"
    zh = await app.client.post(path, headers=CG)
    en = await app.client.post(path, headers={**CG, "Accept-Language": "en"})
    assert zh.json()["error"]["message"] == "只能办理本部门的派单（本部门：cg，派单部门：rs）"
    assert "(yours: cg, assigned: rs)" in en.json()["error"]["message"]
    assert (await app.client.post(path, headers=as_user("rs-duty"))).status_code == 200


# --- reading assignments -------------------------------------------------------------------


async def test_reading_an_assignment_needs_its_department_or_an_area_above_it(app):
    event = whistled(category="E0202")  # xf, in 桃园社区 (迎泽街道)
    await app.whistle(event)
    (row,) = await app.assignments(event.case_id)
    url = f"/assignments/{row['id']}"
    for who in (XF, TAOYUAN, YINGZE, COMMAND, SUPERVISOR, as_user("sup-yingze")):
        resp = await app.client.get(url, headers=who)
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == str(row["id"])
    for who, code in [
        (DONGHU, "out_of_scope"),  # a street outside the case's area
        (JINXIU, "out_of_scope"),  # another community
        (bearer(Role.STREET, "YA/YA0"), "out_of_scope"),  # a string prefix is not a parent
        (bearer(Role.SUPERVISOR, "YA/YA02"), "out_of_scope"),
        (CG, "not_your_assignment"),  # another department
        (WANGFANG, "role_not_allowed"),
        (ADMIN, "role_not_allowed"),
    ]:
        resp = await app.client.get(url, headers=who)
        assert (resp.status_code, resp.json()["error"]["code"]) == (403, code), resp.text
    outside = await app.client.get(url, headers={**DONGHU, "Accept-Language": "en"})
    assert "may not act on area YA/YA01/YA0101/YA0101-01" in outside.json()["error"]["message"]


async def test_department_lists_are_filtered_to_the_readers_subtree(app):
    taoyuan = whistled(category="E0102")  # cg, 桃园社区
    jinxiu = whistled(category="E0102", area_path=GRID_JINXIU)  # cg, 锦绣社区
    await app.whistle(taoyuan)
    await app.whistle(jinxiu)
    ours = {str(taoyuan.case_id): "taoyuan", str(jinxiu.case_id): "jinxiu"}

    async def seen_by(headers: dict[str, str]) -> set[str]:
        resp = await app.client.get(
            "/departments/cg/assignments", headers=headers, params={"limit": 200}
        )
        assert resp.status_code == 200, resp.text
        rows = resp.json()
        assert all(r["department_id"] == "cg" for r in rows)
        return {ours[r["case_id"]] for r in rows if r["case_id"] in ours}

    assert await seen_by(CG) == {"taoyuan", "jinxiu"}
    assert await seen_by(COMMAND) == {"taoyuan", "jinxiu"}
    assert await seen_by(SUPERVISOR) == {"taoyuan", "jinxiu"}
    assert await seen_by(TAOYUAN) == {"taoyuan"}
    assert await seen_by(YINGZE) == {"taoyuan"}
    assert await seen_by(as_user("sup-yingze")) == {"taoyuan"}
    assert await seen_by(JINXIU) == {"jinxiu"}
    assert await seen_by(DONGHU) == set()
    # Whole path segments only, and LIKE wildcards in a code match nothing but themselves.
    assert await seen_by(bearer(Role.STREET, "YA/YA0")) == set()
    assert await seen_by(bearer(Role.STREET, "YA/YA0_")) == set()
    assert await seen_by(bearer(Role.DISTRICT, "Y%")) == set()
    community_rows = (
        await app.client.get("/departments/cg/assignments", headers=TAOYUAN, params={"limit": 200})
    ).json()
    assert community_rows
    assert all(r["area_path"].startswith("YA/YA01/YA0101/") for r in community_rows)


async def test_reading_department_lists_and_unknowns(app):
    c = app.client
    for who, status, code in [
        (COMMAND, 404, "department_not_found"),
        (CG, 403, "not_your_assignment"),  # department staff see no other inbox, real or not
    ]:
        resp = await c.get("/departments/nope/assignments", headers=who)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code)
    for who, code in [
        (CG, "not_your_assignment"),
        (ZJ, "not_your_assignment"),
        (WANGFANG, "role_not_allowed"),
        (ADMIN, "role_not_allowed"),
    ]:
        resp = await c.get("/departments/xf/assignments", headers=who)
        assert (resp.status_code, resp.json()["error"]["code"]) == (403, code)
    assert (await c.get("/departments/zj/assignments", headers=ZJ)).status_code == 200
    assert (
        await c.get("/departments/cg/assignments", params={"state": "lost"}, headers=CG)
    ).status_code == 422
    assert (await c.get(f"/assignments/{uuid.uuid4()}", headers=XF)).status_code == 404
    assert (await c.get("/assignments/not-a-uuid", headers=XF)).status_code == 422
    resolved = (
        await c.get("/departments/xf/assignments", params={"state": "resolved"}, headers=XF)
    ).json()
    assert all(a["state"] == "resolved" and a["department_id"] == "xf" for a in resolved)


# --- routing rules -------------------------------------------------------------------------


async def test_only_admin_adds_rules_refusals_change_nothing_and_a_new_rule_routes(app):
    c = app.client
    existing = await rule_id(app, "E0101", "YA")
    count = await app.val("SELECT count(*) FROM routing_rules")
    good = {"category_code": "E0401", "area_prefix": "YA/YA03", "department_id": "zj"}
    for who in (COMMAND, SUPERVISOR, CG, DONGHU, TAOYUAN, WANGFANG):
        denied = await c.post("/routing-rules", json=good, headers=who)
        assert (denied.status_code, denied.json()["error"]["code"]) == (403, "role_not_allowed")
        assert "系统管理员" in denied.json()["error"]["message"]
    refusals = [
        (
            {"category_code": "E0101", "area_prefix": "YA", "department_id": "zj"},
            409,
            "rule_exists",
        ),
        (
            {"category_code": "Z9999", "area_prefix": "YA", "department_id": "zj"},
            422,
            "unknown_category",
        ),
        (
            {"category_code": "E0401", "area_prefix": "YA", "department_id": "nope"},
            422,
            "unknown_department",
        ),
        (
            {"category_code": "E0401", "area_prefix": "YA//YA03", "department_id": "zj"},
            422,
            "validation_error",
        ),
        (
            {"category_code": "E0401", "area_prefix": "/YA", "department_id": "zj"},
            422,
            "validation_error",
        ),
        ({"category_code": "E0401", "department_id": "zj"}, 422, "validation_error"),
    ]
    for body, status, code in refusals:
        resp = await c.post("/routing-rules", json=body, headers=ADMIN)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    conflict = await c.post("/routing-rules", json=refusals[0][0], headers=ADMIN)
    assert f"规则#{existing}" in conflict.json()["error"]["message"]
    assert "榆安区城市管理局" in conflict.json()["error"]["message"]
    assert await app.val("SELECT count(*) FROM routing_rules") == count

    created = await c.post("/routing-rules", json=good, headers=ADMIN)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (rule["area_prefix"], rule["department_name"]) == ("YA/YA03", "榆安区住房和城乡建设局")
    assert await app.val("SELECT count(*) FROM routing_rules") == count + 1

    inside = whistled(category="E0401", area_path="YA/YA03/YA0301/YA0301-02")
    outside = whistled(category="E0401", area_path="YA/YA01/YA0102/YA0102-01")
    await app.whistle(inside)
    await app.whistle(outside)
    assert [(a["department_id"], a["rule_id"]) for a in await app.assignments(inside.case_id)] == [
        ("zj", rule["id"])
    ]
    assert [a["department_id"] for a in await app.assignments(outside.case_id)] == ["cg"]


# --- operations ----------------------------------------------------------------------------


async def test_health_readiness_and_asyncapi_are_open(app):
    ready = await app.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert (await app.client.get("/livez")).status_code == 200
    spec = json.dumps((await app.client.get("/asyncapi.json")).json())
    for expected in (Topics.INTAKE, Topics.DISPATCH, "case.dispatched", "dispatch.whistles"):
        assert expected in spec


async def test_a_joint_case_is_resolved_when_its_last_department_reports(app):
    """Named departments: cg leads (主办), zj co-handles (协办); only the last report resolves
    the case as a whole — whichever order they come in."""
    case_id = uuid.uuid4()
    whistle = new_event(
        CaseWhistled(
            case_no="YA-J-1",
            area_path=GRID,
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

    ids = {r["department_id"]: r["id"] for r in await eventually(both, message="2 assignments")}
    for dept, who in (("zj", ZJ), ("cg", CG)):  # the co-handler reports first
        assert (
            await app.client.post(f"/assignments/{ids[dept]}/sign-for", json={}, headers=who)
        ).status_code == 200
        assert (
            await app.client.post(
                f"/assignments/{ids[dept]}/resolve", json={"result": "完成"}, headers=who
            )
        ).status_code == 200
    payloads = await app.rows(
        "SELECT payload FROM outbox WHERE key = $1 AND type = 'case.resolved' ORDER BY id",
        str(case_id),
    )
    flags = [
        (p["payload"]["payload"]["department_id"], p["payload"]["payload"]["case_resolved"])
        for p in payloads
    ]
    assert flags == [("zj", False), ("cg", True)]


# --- 退单, 转办, 办理进展, the inbox's filters and orders ----------------------------------

WY, JT = as_user("wy-jx-duty"), as_user("jt-duty")


async def _state(app: App, case_id: uuid.UUID) -> tuple:
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


async def _refused(app: App, case_id: uuid.UUID, refusals: list) -> None:
    before = await _state(app, case_id)
    for path, who, body, status, code in refusals:
        resp = await app.client.post(path, json=body, headers=who)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), (
            path,
            body,
            resp.text,
        )
        assert resp.json()["error"]["message"]
    assert await _state(app, case_id) == before


async def test_reject_reroutes_to_the_next_candidate_then_to_the_community(app):
    # E0103 in 锦绣社区: the property company's rule (YA0201) first, 住建局's (YA) next.
    event = whistled(category="E0103", area_path=GRID_JINXIU)
    await app.whistle(event)
    (first,) = await app.assignments(event.case_id)
    assert first["department_id"] == "wy-jx"
    url = f"/assignments/{first['id']}"
    await _refused(
        app,
        event.case_id,
        [
            (f"{url}/reject", WY, {"reason": "   "}, 422, "reason_required"),
            (f"{url}/reject", WY, {"reason": ""}, 422, "validation_error"),
            (f"{url}/reject", WY, {}, 422, "validation_error"),
            (f"{url}/reject", WY, {"reason": "x", "department_id": "zj"}, 422, "validation_error"),
            (f"{url}/reject", ZJ, {"reason": "不是我们的"}, 403, "not_your_assignment"),
            (f"{url}/reject", JINXIU, {"reason": "不是我们的"}, 403, "role_not_allowed"),
            (
                f"/assignments/{uuid.uuid4()}/reject",
                WY,
                {"reason": "x"},
                404,
                "assignment_not_found",
            ),
        ],
    )

    resp = await app.client.post(
        f"{url}/reject", json={"reason": "违建不属物业管理范围"}, headers=WY
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["state"], body["state_label"], body["exit_reason"]) == (
        "rejected",
        "已退单",
        "违建不属物业管理范围",
    )
    rows = await app.assignments(event.case_id)
    assert sorted((a["department_id"], a["state"]) for a in rows) == [
        ("wy-jx", "rejected"),
        ("zj", "dispatched"),
    ]
    second = next(a for a in rows if a["department_id"] == "zj")
    assert second["role"] == "lead"
    assert second["rule_id"] == await rule_id(app, "E0103", "YA")
    assert "退单后改派" in second["reason"] and "违建不属物业管理范围" in second["reason"]
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs] == ["case.dispatched", "case.rejected", "case.dispatched"]
    rejected, redispatched = outs[1], outs[2]
    assert rejected["actor"]["subject"] == "wy-jx-duty"
    assert rejected["payload"]["reason"] == "违建不属物业管理范围"
    assert rejected["payload"]["assignment_id"] == str(first["id"])
    assert redispatched["payload"]["department_id"] == "zj"
    assert redispatched["payload"]["assignment_id"] == str(second["id"])
    assert "退单后改派" in redispatched["payload"]["reason"]
    # Rejecting again is a conflict; the rejected one stays as it is.
    await _refused(
        app,
        event.case_id,
        [
            (f"{url}/reject", WY, {"reason": "再退"}, 409, "invalid_state"),
            (
                f"{url}/transfer",
                WY,
                {"to_department_id": "cg", "reason": "x"},
                409,
                "invalid_state",
            ),
        ],
    )

    # 住建局 rejects too: the community's liaison units (包联) come next, in their order.
    resp = await app.client.post(
        f"/assignments/{second['id']}/reject", json={"reason": "属物业维修责任"}, headers=ZJ
    )
    assert resp.status_code == 200, resp.text
    rows = await app.assignments(event.case_id)
    third = next(a for a in rows if a["state"] == "dispatched")
    assert (third["department_id"], third["basis"], third["role"]) == ("gs", "liaison", "lead")
    assert "YA/YA02/YA0201的包联单位（第1位）榆安供水公司主办" in third["reason"]
    resp = await app.client.post(
        f"/assignments/{third['id']}/reject",
        json={"reason": "非供水设施"},
        headers=as_user("gs-duty"),
    )
    assert resp.status_code == 200, resp.text
    fourth = next(a for a in await app.assignments(event.case_id) if a["state"] == "dispatched")
    assert fourth["department_id"] == "tx"

    # The last candidate rejects too: the community arbitrates (待人工派单), announced.
    resp = await app.client.post(
        f"/assignments/{fourth['id']}/reject",
        json={"reason": "非通信设施"},
        headers=as_user("tx-duty"),
    )
    assert resp.status_code == 200, resp.text
    rows = await app.assignments(event.case_id)
    assert sorted((a["department_id"], a["state"]) for a in rows) == [
        ("gs", "rejected"),
        ("tx", "rejected"),
        ("wy-jx", "rejected"),
        ("zj", "rejected"),
    ]
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs][3:] == [
        "case.rejected",
        "case.dispatched",
        "case.rejected",
        "case.dispatched",
        "case.rejected",
        "case.unroutable",
    ]
    reason = outs[-1]["payload"]["reason"]
    assert "退单" in reason and "锦绣物业公司" in reason and "榆安区住房和城乡建设局" in reason
    assert "社区协调" in reason
    assert outs[-1]["actor"]["subject"] == "tx-duty"
    queued = (
        await app.client.get("/manual-dispatch", headers=JINXIU, params={"limit": 200})
    ).json()
    assert [w["reason"] for w in queued if w["case_id"] == str(event.case_id)] == [reason]

    # The community arbitrates: it dispatches by hand, even to a department that rejected.
    url = f"/manual-dispatch/{event.case_id}"
    await _refused(
        app,
        event.case_id,
        [
            (url, JINXIU, {"department_id": "ghost"}, 422, "unknown_department"),
            (
                url,
                JINXIU,
                {"department_id": "zj", "co_department_ids": ["zj"]},
                422,
                "invalid_dispatch",
            ),
            (url, JINXIU, {}, 422, "validation_error"),
            (url, TAOYUAN, {"department_id": "zj"}, 403, "out_of_scope"),
            (url, WY, {"department_id": "zj"}, 403, "role_not_allowed"),
            (url, SUPERVISOR, {"department_id": "zj"}, 403, "role_not_allowed"),
            (
                f"/manual-dispatch/{uuid.uuid4()}",
                JINXIU,
                {"department_id": "zj"},
                404,
                "not_waiting",
            ),
        ],
    )
    resp = await app.client.post(
        url,
        headers=JINXIU,
        json={
            "department_id": "zj",
            "co_department_ids": ["wy-jx"],
            "note": "协调会议定：住建局牵头",
        },
    )
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert [(m["department_id"], m["role"], m["basis"], m["basis_label"]) for m in made] == [
        ("zj", "lead", "manual", "人工派单"),
        ("wy-jx", "co", "manual", "人工派单"),
    ]
    assert (
        made[0]["reason"]
        == "人工派单：锦绣社区书记指定榆安区住房和城乡建设局主办；协调会议定：住建局牵头"
    )
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs][-2:] == ["case.dispatched", "case.dispatched"]
    assert outs[-1]["actor"]["subject"] == "jinxiu"
    queued = (
        await app.client.get("/manual-dispatch", headers=JINXIU, params={"limit": 200})
    ).json()
    assert [w for w in queued if w["case_id"] == str(event.case_id)] == []
    again = await app.client.post(url, headers=JINXIU, json={"department_id": "cg"})
    assert (again.status_code, again.json()["error"]["code"]) == (404, "not_waiting")


async def test_reject_only_before_sign_for(app):
    event = whistled(category="E0201")
    await app.whistle(event)
    (row,) = await app.assignments(event.case_id)
    url = f"/assignments/{row['id']}"
    assert (await app.client.post(f"{url}/sign-for", headers=XF)).status_code == 200
    await _refused(
        app,
        event.case_id,
        [
            (f"{url}/reject", XF, {"reason": "不是我们的"}, 409, "invalid_state"),
        ],
    )


async def test_transfer_hands_the_assignment_on_and_the_refusals_change_nothing(app):
    event = whistled(category="E0201")
    await app.whistle(event)
    (row,) = await app.assignments(event.case_id)
    assert row["department_id"] == "xf"
    url = f"/assignments/{row['id']}"
    ok = {"to_department_id": "zj", "reason": "属违建，住建局处理"}
    await _refused(
        app,
        event.case_id,
        [
            (
                f"{url}/transfer",
                XF,
                {"to_department_id": "nope", "reason": "x"},
                422,
                "unknown_department",
            ),
            (
                f"{url}/transfer",
                XF,
                {"to_department_id": "xf", "reason": "x"},
                422,
                "transfer_to_self",
            ),
            (
                f"{url}/transfer",
                XF,
                {"to_department_id": "zj", "reason": " "},
                422,
                "reason_required",
            ),
            (f"{url}/transfer", XF, {"to_department_id": "zj"}, 422, "validation_error"),
            (f"{url}/transfer", XF, {"reason": "x"}, 422, "validation_error"),
            (f"{url}/transfer", CG, ok, 403, "not_your_assignment"),
            (f"{url}/transfer", COMMAND, ok, 403, "role_not_allowed"),
        ],
    )
    assert (await app.client.post(f"{url}/sign-for", headers=XF)).status_code == 200

    resp = await app.client.post(f"{url}/transfer", json=ok, headers=XF)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["state"], resp.json()["transferred_to"]) == ("transferred", "zj")
    rows = await app.assignments(event.case_id)
    assert sorted((a["department_id"], a["state"], a["role"]) for a in rows) == [
        ("xf", "transferred", "lead"),
        ("zj", "dispatched", "lead"),
    ]
    new = next(a for a in rows if a["department_id"] == "zj")
    assert new["reason"] == "由榆安区消防救援大队转办：属违建，住建局处理"
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs] == [
        "case.dispatched",
        "case.signed_for",
        "case.transferred",
        "case.dispatched",
    ]
    transferred, dispatched = outs[2], outs[3]
    assert transferred["actor"]["subject"] == "xf-duty"
    assert transferred["payload"]["to_department_id"] == "zj"
    assert transferred["payload"]["reason"] == "属违建，住建局处理"
    assert dispatched["payload"]["assignment_id"] == str(new["id"])
    assert dispatched["payload"]["reason"].startswith("由榆安区消防救援大队转办")
    # The new department takes it from there; the old one can do nothing more.
    assert (
        await app.client.post(f"/assignments/{new['id']}/sign-for", headers=ZJ)
    ).status_code == 200
    await _refused(
        app,
        event.case_id,
        [
            (
                f"{url}/transfer",
                XF,
                {"to_department_id": "cg", "reason": "再转"},
                409,
                "invalid_state",
            ),
            (f"{url}/progress", XF, {"note": "进展"}, 409, "invalid_state"),
        ],
    )


async def test_transfer_to_a_department_already_on_the_case_is_a_conflict(app):
    event = whistled(category="E0201", departments=["xf", "zj"])  # a joint case
    await app.whistle(event)
    xf = next(a for a in await app.assignments(event.case_id) if a["department_id"] == "xf")
    await _refused(
        app,
        event.case_id,
        [
            (
                f"/assignments/{xf['id']}/transfer",
                XF,
                {"to_department_id": "zj", "reason": "住建局处理"},
                409,
                "already_assigned",
            ),
        ],
    )


async def test_progress_notes_while_signed_for_newest_last(app):
    event = whistled(category="E0201")
    await app.whistle(event)
    (row,) = await app.assignments(event.case_id)
    url = f"/assignments/{row['id']}"
    await _refused(
        app,
        event.case_id,
        [
            (f"{url}/progress", XF, {"note": "已到现场"}, 409, "invalid_state"),
        ],
    )
    assert (await app.client.post(f"{url}/sign-for", headers=XF)).status_code == 200
    await _refused(
        app,
        event.case_id,
        [
            (f"{url}/progress", XF, {"note": "  "}, 422, "note_required"),
            (f"{url}/progress", XF, {"note": ""}, 422, "validation_error"),
            (f"{url}/progress", XF, {}, 422, "validation_error"),
            (f"{url}/progress", CG, {"note": "已到现场"}, 403, "not_your_assignment"),
            (f"{url}/progress", TAOYUAN, {"note": "已到现场"}, 403, "role_not_allowed"),
        ],
    )
    for note in ("已到现场勘查", "已联系物业清理通道"):
        resp = await app.client.post(f"{url}/progress", json={"note": note}, headers=XF)
        assert resp.status_code == 201, resp.text
        assert resp.json()["note"] == note and resp.json()["actor_subject"] == "xf-duty"
    for reader in (XF, TAOYUAN):
        got = (await app.client.get(url, headers=reader)).json()
        assert [n["note"] for n in got["notes"]] == ["已到现场勘查", "已联系物业清理通道"]
        assert got["state"] == "signed_for"
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs][2:] == ["case.progressed", "case.progressed"]
    assert outs[2]["payload"]["note"] == "已到现场勘查"
    assert outs[2]["actor"]["subject"] == "xf-duty"


async def test_inbox_filters_by_priority_and_sorts_by_priority_deadline_or_dispatch(app):
    events = [
        whistled(category="C0201", priority=p)
        for p in (Priority.MINOR, Priority.URGENT, Priority.NORMAL)
    ]
    for e in events:
        await app.whistle(e)
    ours = {str(e.case_id) for e in events}
    by_case = {str(e.case_id): e.payload.priority.value for e in events}

    async def inbox(**params: str) -> list[str]:
        resp = await app.client.get(
            "/departments/jt/assignments", headers=JT, params={"limit": 200, **params}
        )
        assert resp.status_code == 200, resp.text
        return [by_case[a["case_id"]] for a in resp.json() if a["case_id"] in ours]

    assert await inbox() == ["normal", "urgent", "minor"]  # newest first
    assert await inbox(sort="dispatched_at") == ["normal", "urgent", "minor"]
    assert await inbox(sort="deadline") == ["minor", "urgent", "normal"]  # oldest first
    assert await inbox(sort="priority") == ["urgent", "normal", "minor"]
    assert await inbox(priority="minor") == ["minor"]
    assert await inbox(priority="urgent", state="dispatched") == ["urgent"]
    assert await inbox(priority="urgent", state="signed_for") == []
    for bad in ({"sort": "bogus"}, {"priority": "high"}):
        resp = await app.client.get("/departments/jt/assignments", headers=JT, params=bad)
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "validation_error")


async def test_a_co_handler_does_not_resolve_a_case_whose_lead_pushed_it_back(app):
    """cg (lead) rejects and no candidate is left → the case waits for the community; zj's
    result alone must not resolve the case."""
    case_id = uuid.uuid4()
    await publish_event(
        app.bootstrap,
        new_event(
            CaseWhistled(
                case_no="YA-J-2",
                area_path=GRID_BEIGUAN,
                category="E0101",
                priority=Priority.NORMAL,
                grid_code="YA0101-01",
                description="联合处置",
                location=Location(),
                departments=["cg", "zj"],
            ),
            case_id=case_id,
            producer="intake",
        ),
    )

    async def both():
        rows = await app.rows(
            "SELECT id, department_id FROM assignments WHERE case_id = $1", case_id
        )
        return rows if len(rows) == 2 else None

    ids = {r["department_id"]: r["id"] for r in await eventually(both, message="2 assignments")}
    rejected = await app.client.post(
        f"/assignments/{ids['cg']}/reject", json={"reason": "不属于本部门职责"}, headers=CG
    )
    assert rejected.status_code == 200, rejected.text
    assert (
        await app.val(
            "SELECT count(*) FROM manual_dispatch WHERE case_id = $1 AND cleared_at IS NULL",
            case_id,
        )
        == 1
    )
    await app.client.post(f"/assignments/{ids['zj']}/sign-for", json={}, headers=ZJ)
    done = await app.client.post(
        f"/assignments/{ids['zj']}/resolve", json={"result": "已完成"}, headers=ZJ
    )
    assert done.status_code == 200
    [row] = await app.rows(
        "SELECT payload FROM outbox WHERE key = $1 AND type = 'case.resolved'", str(case_id)
    )
    assert row["payload"]["payload"]["case_resolved"] is False


# --- departments (admin API) ---------------------------------------------------------------

NEW_DEPT = {
    "name": "榆安区园林绿化中心",
    "kind": "functional",
    "areas": ["YA/YA01", "YA/YA03"],
    "contacts": [
        {"name": "林志远", "phone": "0351-4110001", "role": "值班领导"},
        {"name": "何秀英", "phone": "0351-4110002"},
    ],
}


async def department_row(app: App, department_id: str) -> dict[str, Any] | None:
    rows = await app.rows(
        "SELECT id, name, kind, areas, contacts, updated_at FROM departments WHERE id = $1",
        department_id,
    )
    return rows[0] if rows else None


async def test_the_demo_seed_gives_every_department_its_areas_and_duty_contacts(app):
    listed = (await app.client.get("/departments", headers=WANGFANG)).json()
    by_id = {d["id"]: d for d in listed}
    assert set(by_id) >= {d for d, _, _ in demo.DEPARTMENTS} | {"jd-yz", "zy-ty"}
    assert by_id["jd-yz"] | {"contacts": None} == {
        "id": "jd-yz",
        "name": "迎泽街道办事处",
        "kind": "street_office",
        "kind_zh": "街道办事处",
        "areas": ["YA/YA01"],
        "contacts": None,
    }
    assert by_id["zy-ty"]["kind"] == "volunteer" and by_id["zy-ty"]["kind_zh"] == "志愿服务队"
    assert by_id["zy-ty"]["areas"] == ["YA/YA01/YA0101"]
    assert by_id["wy-jx"]["areas"] == ["YA/YA02/YA0201"] and by_id["wy-jx"]["kind_zh"] == "物业企业"
    assert by_id["gd"]["kind_zh"] == "驻区单位" and by_id["cg"]["kind_zh"] == "职能部门"
    for d in listed:
        if d["id"] in {dept for dept, _, _ in demo.DEPARTMENTS}:
            assert d["areas"] == dispatch_demo.AREAS.get(d["id"], ["YA"]), d
            assert 1 <= len(d["contacts"]) <= 2 and all(
                c["name"] and c["phone"].startswith("0351-") for c in d["contacts"]
            ), d


async def test_seeding_again_changes_no_department(app):
    before = await app.rows("SELECT * FROM departments ORDER BY id")
    await seed_demo(
        Settings(
            database_url=app.dsn,
            kafka_bootstrap_servers=app.bootstrap,
            log_json=False,
            environment="test",
        )
    )
    assert await app.rows("SELECT * FROM departments ORDER BY id") == before


async def test_an_admin_creates_then_updates_a_department(app):
    c = app.client
    created = await c.put("/departments/lh", json=NEW_DEPT, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "id": "lh",
        "name": "榆安区园林绿化中心",
        "kind": "functional",
        "kind_zh": "职能部门",
        "areas": ["YA/YA01", "YA/YA03"],
        "contacts": [
            {"name": "林志远", "phone": "0351-4110001", "role": "值班领导"},
            {"name": "何秀英", "phone": "0351-4110002", "role": None},
        ],
    }
    assert (await c.get("/departments/lh", headers=CG)).json() == created.json()
    assert created.json() in (await c.get("/departments", headers=TAOYUAN)).json()
    first = await department_row(app, "lh")

    update = {
        "name": "榆安区园林绿化服务中心",
        "kind": "co_building",
        "areas": ["YA"],
        "contacts": [],
    }
    updated = await c.put("/departments/lh", json=update, headers=ADMIN)
    assert updated.status_code == 200, updated.text
    assert updated.json() == {
        "id": "lh",
        "name": "榆安区园林绿化服务中心",
        "kind": "co_building",
        "kind_zh": "驻区单位",
        "areas": ["YA"],
        "contacts": [],
    }
    assert (await c.get("/departments/lh", headers=SUPERVISOR)).json() == updated.json()
    row = await department_row(app, "lh")
    assert row["updated_at"] > first["updated_at"] and row["contacts"] == []


@pytest.mark.parametrize("who", [CG, COMMAND, SUPERVISOR, TAOYUAN, YINGZE, WANGFANG])
async def test_only_an_admin_writes_departments_and_a_refusal_changes_nothing(app, who):
    before = await department_row(app, "cg")
    resp = await app.client.put("/departments/cg", json=NEW_DEPT, headers=who)
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "role_not_allowed")
    created = await app.client.put("/departments/nobody-new", json=NEW_DEPT, headers=who)
    assert created.status_code == 403
    assert await department_row(app, "cg") == before
    assert await department_row(app, "nobody-new") is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "mayor"}, "kind"),
        ({"kind": "street"}, "kind"),
        ({"name": " "}, "name"),
        ({"areas": []}, "areas"),
        ({"areas": ["YA", "YA//YA01"]}, "areas[1]"),
        ({"areas": ["YA/YA01 "]}, "areas[0]"),
        ({"contacts": [{"name": "林志远", "phone": "电话110"}]}, "contacts[0].phone"),
        (
            {
                "contacts": [
                    {"name": "林志远", "phone": "0351-4110001"},
                    {"name": "何秀英", "phone": "12"},
                ]
            },
            "contacts[1].phone",
        ),
        ({"contacts": [{"name": " ", "phone": "0351-4110001"}]}, "contacts[0].name"),
    ],
)
async def test_bad_department_input_is_a_422_naming_the_field_and_changes_nothing(
    app, change, field
):
    before = await department_row(app, "cg")
    for dept_id in ("cg", "bad-new"):
        resp = await app.client.put(
            f"/departments/{dept_id}", json={**NEW_DEPT, **change}, headers=ADMIN
        )
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["message"].startswith(f"{field}：")
    english = await app.client.put(
        "/departments/cg", json={**NEW_DEPT, **change}, headers={**ADMIN, "Accept-Language": "en"}
    )
    assert english.json()["error"]["message"].startswith(f"{field}: ")
    assert await department_row(app, "cg") == before
    assert await department_row(app, "bad-new") is None


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in NEW_DEPT.items() if k != "name"},
        {**NEW_DEPT, "areas": "YA"},
        {**NEW_DEPT, "contacts": [{"name": "林志远"}]},
        {**NEW_DEPT, "boss": "someone"},
    ],
)
async def test_a_malformed_department_body_is_a_422_naming_the_field(app, body):
    before = await department_row(app, "cg")
    resp = await app.client.put("/departments/cg", json=body, headers=ADMIN)
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("请求内容无效")
    assert await department_row(app, "cg") == before


async def test_a_bad_department_id_is_a_422_and_an_unknown_one_a_404(app):
    resp = await app.client.put("/departments/bad id!", json=NEW_DEPT, headers=ADMIN)
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("id：")
    missing = await app.client.get("/departments/nope", headers=CG)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "department_not_found"


# --- issue 5: co-handlers, joint cases, rules and liaison units, photos, extensions -------

HB, GS, RS = as_user("hb-duty"), as_user("gs-duty"), as_user("rs-duty")


async def _sign_and_resolve(
    app: App, assignment_id: Any, who: dict[str, str], **body: Any
) -> httpx.Response:
    signed = await app.client.post(f"/assignments/{assignment_id}/sign-for", headers=who)
    assert signed.status_code == 200, signed.text
    return await app.client.post(
        f"/assignments/{assignment_id}/resolve", headers=who, json={"result": "已处理", **body}
    )


async def _resolved_flags(app: App, case_id: uuid.UUID) -> list[tuple[str, bool]]:
    return [
        (o["payload"]["department_id"], o["payload"]["case_resolved"])
        for o in await app.outbox(case_id)
        if o["type"] == "case.resolved"
    ]


async def test_a_rule_convenes_its_co_handlers_and_the_case_waits_for_all_of_them(app):
    event = whistled(category="E0403")  # 噪声扰民: 生态环境分局 leads, 城管 co-handles
    await app.whistle(event)
    rows = await app.assignments(event.case_id)
    assert [(a["department_id"], a["role"], a["basis"]) for a in rows] == [
        ("hb", "lead", "rule"),
        ("cg", "co", "rule"),
    ]
    assert rows[0]["rule_id"] == rows[1]["rule_id"] == await rule_id(app, "E0403", "YA")
    lead, co = rows
    assert (await _sign_and_resolve(app, lead["id"], HB)).status_code == 200
    assert await _resolved_flags(app, event.case_id) == [("hb", False)]
    assert (await _sign_and_resolve(app, co["id"], CG)).status_code == 200
    assert await _resolved_flags(app, event.case_id) == [("hb", False), ("cg", True)]


async def test_a_co_handlers_rejection_leaves_the_case_with_the_lead(app):
    event = whistled(category="E0403")
    await app.whistle(event)
    lead, co = await app.assignments(event.case_id)
    assert (await _sign_and_resolve(app, lead["id"], HB)).status_code == 200
    resp = await app.client.post(
        f"/assignments/{co['id']}/reject", headers=CG, json={"reason": "噪声执法不属城管"}
    )
    assert resp.status_code == 200, resp.text
    rows = await app.assignments(event.case_id)
    assert sorted((a["department_id"], a["state"]) for a in rows) == [
        ("cg", "rejected"),
        ("hb", "resolved"),
    ]
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs][-2:] == ["case.rejected", "case.resolved"]
    # The lead had resolved; the co-handler's rejection was the last work: resolved now.
    last = outs[-1]
    assert (
        last["payload"]["department_id"],
        last["payload"]["case_resolved"],
        last["actor"]["subject"],
    ) == ("hb", True, "cg-duty")


async def test_a_named_lead_rejecting_passes_over_the_named_co_handler_to_the_rules(app):
    event = whistled(category="E0101", area_path=GRID_BEIGUAN, departments=["zj", "cg"])
    await app.whistle(event)
    lead, co = await app.assignments(event.case_id)
    assert (lead["department_id"], co["department_id"]) == ("zj", "cg")
    assert lead["basis"] == co["basis"] == "named"
    resp = await app.client.post(
        f"/assignments/{lead['id']}/reject", headers=ZJ, json={"reason": "非住建职责"}
    )
    assert resp.status_code == 200
    # cg already co-handles: it is not made lead a second time; nothing else fits → queue.
    assert (
        await app.val(
            "SELECT count(*) FROM manual_dispatch WHERE case_id = $1 AND cleared_at IS NULL",
            event.case_id,
        )
        == 1
    )


async def test_a_whistle_on_a_case_in_hand_convenes_only_new_named_departments(app):
    event = whistled(category="E0201")  # 消防隐患 → xf
    await app.whistle(event)
    again = whistled(event.case_id, category="E0201", departments=["xf", "cg"])
    await app.whistle(again)
    rows = await app.assignments(event.case_id)
    assert [(a["department_id"], a["role"]) for a in rows] == [("xf", "lead"), ("cg", "co")]
    plain = whistled(event.case_id, category="E0201")  # no names: no second lead by rule
    await app.whistle(plain)
    assert len(await app.assignments(event.case_id)) == 2


async def test_an_admin_adds_a_rule_with_co_handlers_and_ambiguous_or_bad_rules_are_refused(app):
    c = app.client
    before = await app.val("SELECT count(*) FROM routing_rules")
    for body, status, code, field in [
        (
            {
                "category_code": "C0204",
                "area_prefix": "YA/YA03",
                "department_id": "cg",
                "co_department_ids": ["ghost"],
            },
            422,
            "unknown_department",
            "co_department_ids[0]",
        ),
        (
            {
                "category_code": "C0204",
                "area_prefix": "YA/YA03",
                "department_id": "cg",
                "co_department_ids": ["cg"],
            },
            422,
            "invalid_rule",
            "co_department_ids",
        ),
        (
            {"category_code": "Z99", "area_prefix": "YA/YA03", "department_id": "cg"},
            422,
            "unknown_category",
            "category_code",
        ),
        # C02 (大类) in a street vs the district-wide C0204 rule: ambiguous for C0204 there.
        (
            {"category_code": "C02", "area_prefix": "YA/YA03", "department_id": "cg"},
            409,
            "ambiguous_rule",
            "规则#",
        ),
        (
            {"category_code": "C0204", "area_prefix": "YA", "department_id": "jt"},
            409,
            "rule_exists",
            "规则#",
        ),
    ]:
        resp = await c.post("/routing-rules", json=body, headers=ADMIN)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
        assert field in resp.json()["error"]["message"]
    assert await app.val("SELECT count(*) FROM routing_rules") == before
    resp = await c.post(
        "/routing-rules",
        headers=ADMIN,
        json={
            "category_code": "C0204",
            "area_prefix": "YA/YA03",
            "department_id": "jt",
            "co_department_ids": ["cg", "jd-dh"],
        },
    )
    assert resp.status_code == 201, resp.text
    rule = resp.json()
    assert rule["co_department_names"] == ["榆安区城市管理局", "东湖街道办事处"]
    event = whistled(category="C0204", area_path="YA/YA03/YA0301/YA0301-01")
    await app.whistle(event)
    assert [
        (a["department_id"], a["role"], a["rule_id"]) for a in await app.assignments(event.case_id)
    ] == [("jt", "lead", rule["id"]), ("cg", "co", rule["id"]), ("jd-dh", "co", rule["id"])]
    deleted = await c.delete(f"/routing-rules/{rule['id']}", headers=ADMIN)
    assert deleted.status_code == 204
    assert (await c.delete(f"/routing-rules/{rule['id']}", headers=ADMIN)).status_code == 404
    assert (await c.delete("/routing-rules/1", headers=COMMAND)).status_code == 403


async def test_liaison_units_are_set_by_the_admin_and_route_what_nothing_else_does(app):
    c = app.client
    area = "YA/YA04/YA0403"  # 安康社区
    for body, status in [
        ({"department_ids": ["ghost"]}, 422),
        ({"department_ids": ["gd", "gd"]}, 422),
        ({}, 422),
    ]:
        resp = await c.put(f"/liaison-units/{area}", json=body, headers=ADMIN)
        assert resp.status_code == status, resp.text
    assert (
        await c.put(f"/liaison-units/{area}", json={"department_ids": ["gd"]}, headers=COMMAND)
    ).status_code == 403
    assert (
        await c.put("/liaison-units/YA/bad path!", json={"department_ids": ["gd"]}, headers=ADMIN)
    ).status_code == 422
    resp = await c.put(
        f"/liaison-units/{area}", json={"department_ids": ["rs", "gd"]}, headers=ADMIN
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "area_prefix": area,
        "department_ids": ["rs", "gd"],
        "department_names": ["榆安区人力资源和社会保障局", "榆安供电公司"],
    }
    listed = (await c.get("/liaison-units", headers=SUPERVISOR)).json()
    assert resp.json() in listed
    event = whistled(category="E0501", area_path=f"{area}/YA0403-02")
    await app.whistle(event)
    (a,) = await app.assignments(event.case_id)
    assert (a["department_id"], a["basis"]) == ("rs", "liaison")
    resp = await c.post(f"/assignments/{a['id']}/reject", headers=RS, json={"reason": "非本单位"})
    assert resp.status_code == 200
    nxt = [x for x in await app.assignments(event.case_id) if x["state"] == "dispatched"]
    assert [x["department_id"] for x in nxt] == ["gd"]
    assert (
        await c.put(f"/liaison-units/{area}", json={"department_ids": []}, headers=ADMIN)
    ).status_code == 200
    assert all(
        u["area_prefix"] != area for u in (await c.get("/liaison-units", headers=ADMIN)).json()
    )


async def _photo_added(
    app: App, case_id: uuid.UUID, department_id: str | None, kind: str = "after"
) -> uuid.UUID:
    photo_id = uuid.uuid4()
    event = new_event(
        CasePhotoAdded(
            case_no="YA-P",
            area_path=GRID,
            category="E0201",
            priority=Priority.NORMAL,
            photo_id=photo_id,
            kind=kind,
            department_id=department_id,
        ),
        case_id=case_id,
        producer="intake",
    )
    await publish_event(app.bootstrap, event)
    await app.handled(event)
    return photo_id


async def test_a_resolution_cites_the_departments_own_after_photos(app):
    event = whistled(category="E0201")
    await app.whistle(event)
    (a,) = await app.assignments(event.case_id)
    mine = await _photo_added(app, event.case_id, "xf")
    before = await _photo_added(app, event.case_id, "xf", kind="before")
    others = await _photo_added(app, event.case_id, "cg")
    unknown = uuid.uuid4()
    await app.client.post(f"/assignments/{a['id']}/sign-for", headers=XF)
    for photo in (before, others, unknown):
        resp = await app.client.post(
            f"/assignments/{a['id']}/resolve",
            headers=XF,
            json={"result": "已整改", "photo_ids": [str(mine), str(photo)]},
        )
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "unknown_photo")
        assert resp.json()["error"]["message"].startswith("photo_ids[1]：")
    (row,) = await app.assignments(event.case_id)
    assert row["state"] == "signed_for"
    resp = await app.client.post(
        f"/assignments/{a['id']}/resolve",
        headers=XF,
        json={"result": "已整改", "photo_ids": [str(mine)]},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["photo_ids"] == [str(mine)]
    resolved = [o for o in await app.outbox(event.case_id) if o["type"] == "case.resolved"]
    assert resolved[0]["payload"]["photo_ids"] == [str(mine)]


async def test_an_extension_is_asked_for_and_a_supervisor_decides(app):
    event = whistled(category="E0201")
    await app.whistle(event)
    (a,) = await app.assignments(event.case_id)
    url = f"/assignments/{a['id']}/extensions"
    early = await app.client.post(url, headers=XF, json={"days": 3, "reason": "待材料"})
    assert (early.status_code, early.json()["error"]["code"]) == (409, "invalid_state")
    await app.client.post(f"/assignments/{a['id']}/sign-for", headers=XF)
    for who, body, status in [
        (XF, {"days": 0, "reason": "x"}, 422),
        (XF, {"days": 3, "reason": "  "}, 422),
        (CG, {"days": 3, "reason": "x"}, 403),
        (SUPERVISOR, {"days": 3, "reason": "x"}, 403),
    ]:
        assert (await app.client.post(url, headers=who, json=body)).status_code == status
    asked = await app.client.post(url, headers=XF, json={"days": 3, "reason": "需更换消防设施"})
    assert asked.status_code == 201, asked.text
    req = asked.json()
    assert (req["state"], req["state_label"], req["requested_by"]) == (
        "pending",
        "待审批",
        "xf-duty",
    )
    twice = await app.client.post(url, headers=XF, json={"days": 1, "reason": "再申请"})
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "extension_pending")

    pending = (
        await app.client.get(
            "/extension-requests", headers=SUPERVISOR, params={"state": "pending", "limit": 200}
        )
    ).json()
    assert req["id"] in [p["id"] for p in pending]
    elsewhere = bearer(Role.SUPERVISOR, "YA/YA03")
    assert req["id"] not in [
        p["id"]
        for p in (
            await app.client.get("/extension-requests", headers=elsewhere, params={"limit": 200})
        ).json()
    ]
    own = (await app.client.get("/extension-requests", headers=XF, params={"limit": 200})).json()
    assert req["id"] in [p["id"] for p in own]
    assert req["id"] not in [
        p["id"]
        for p in (
            await app.client.get("/extension-requests", headers=CG, params={"limit": 200})
        ).json()
    ]

    decide = f"/extension-requests/{req['id']}"
    for who, path, body, status in [
        (elsewhere, "approve", {}, 403),
        (XF, "approve", {}, 403),
        (COMMAND, "approve", {}, 403),
        (SUPERVISOR, "approve", {"days": 4}, 422),
        (SUPERVISOR, "refuse", {"comment": ""}, 422),
    ]:
        resp = await app.client.post(f"{decide}/{path}", headers=who, json=body)
        assert resp.status_code == status, (path, resp.text)
    approved = await app.client.post(
        f"{decide}/approve", headers=SUPERVISOR, json={"days": 2, "comment": "同意延期两个工作日"}
    )
    assert approved.status_code == 200, approved.text
    assert (
        approved.json()["state"],
        approved.json()["granted_days"],
        approved.json()["decided_by"],
    ) == ("approved", 2, "supervisor")
    again = await app.client.post(f"{decide}/refuse", headers=SUPERVISOR, json={"comment": "x"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "extension_decided")
    outs = [o for o in await app.outbox(event.case_id) if o["type"].startswith("case.extension")]
    assert [(o["type"], o["actor"]["subject"]) for o in outs] == [
        ("case.extension_requested", "xf-duty"),
        ("case.extension_decided", "supervisor"),
    ]
    assert (outs[1]["payload"]["approved"], outs[1]["payload"]["days"]) == (True, 2)
    detail = (await app.client.get(f"/assignments/{a['id']}", headers=XF)).json()
    # notify names the department by its name, not its id
    assert [o["payload"]["department_name"] for o in outs] == [detail["department_name"]] * 2
    assert detail["department_name"].startswith("榆安区")
    assert [e["state"] for e in detail["extensions"]] == ["approved"]

    # A second request can be refused, with a reason.
    second = (await app.client.post(url, headers=XF, json={"days": 5, "reason": "再延"})).json()
    refused = await app.client.post(
        f"/extension-requests/{second['id']}/refuse",
        headers=SUPERVISOR,
        json={"comment": "理由不充分"},
    )
    assert (refused.json()["state"], refused.json()["granted_days"]) == ("refused", 0)
    got = await app.client.get(f"/extension-requests/{second['id']}", headers=YINGZE)
    assert got.status_code == 200 and got.json()["comment"] == "理由不充分"
    assert (
        await app.client.get(f"/extension-requests/{second['id']}", headers=DONGHU)
    ).status_code == 403
