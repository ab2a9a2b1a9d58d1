"""Routing (派单): a whistle becomes assignments — by rule, by the property company of the
compound, by the departments named, by the area's liaison units (包联) — or waits for manual
dispatch; the admin adds rules (with co-handlers) and liaison units. On real PostgreSQL and
the real broker; every request carries a bearer token of a demo user (or a made-up one), as
in production."""

from __future__ import annotations

from typing import Any

from shared.auth import Role
from shared.contract import Topics
from tests.component import dispatch_fixtures
from tests.component.dispatch_fixtures import (
    ADMIN,
    CG,
    COMMAND,
    DONGHU,
    GRID,
    GRID_JINXIU,
    HB,
    JINXIU,
    RS,
    SUPERVISOR,
    TAOYUAN,
    WANGFANG,
    YINGZE,
    resolved_flags,
    routed,
    rule_id,
    sign_and_resolve,
    whistled,
)
from tests.helpers import as_user, bearer, eventually, publish_event, read_topic

app = dispatch_fixtures.app  # dispatch on real PostgreSQL and the broker, one for the module


async def test_whistle_creates_an_assignment_and_publishes_case_dispatched(app):
    event, a = await routed(app, note="请尽快清运")
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
    assert (await sign_and_resolve(app, lead["id"], HB)).status_code == 200
    assert await resolved_flags(app, event.case_id) == [("hb", False)]
    assert (await sign_and_resolve(app, co["id"], CG)).status_code == 200
    assert await resolved_flags(app, event.case_id) == [("hb", False), ("cg", True)]


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
    event, a = await routed(app, category="E0501", area_path=f"{area}/YA0403-02")
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
