"""Dispatch's reference data and its edges: the catalogue, the departments (read by every role,
written by the admin only), authentication, health and the AsyncAPI document. On real
PostgreSQL and the real broker; every request carries a bearer token of a demo user (or a
made-up one), as in production."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.dispatch import demo as dispatch_demo
from services.dispatch.config import Settings
from services.dispatch.demo import seed_demo
from shared import demo
from shared.auth import Role, TokenKeys
from shared.contract import Topics
from tests.component import dispatch_fixtures
from tests.component.dispatch_fixtures import (
    ADMIN,
    CG,
    COMMAND,
    SUPERVISOR,
    TAOYUAN,
    WANGFANG,
    YINGZE,
    App,
    routed,
)
from tests.helpers import bearer, token

app = dispatch_fixtures.app  # dispatch on real PostgreSQL and the broker, one for the module


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


async def test_no_token_or_a_bad_one_is_401_and_changes_nothing(app):
    event, row = await routed(app, category="E0201")
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


async def test_health_readiness_and_asyncapi_are_open(app):
    ready = await app.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert (await app.client.get("/livez")).status_code == 200
    spec = json.dumps((await app.client.get("/asyncapi.json")).json())
    for expected in (Topics.INTAKE, Topics.DISPATCH, "case.dispatched", "dispatch.whistles"):
        assert expected in spec


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
