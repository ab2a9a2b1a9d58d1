"""Intake's case list as the console's case screen reads it: filters by category (a 大类 covers
its 小类), overdue, a text (case number, description, address), and each case's departments
handling it (assigned_departments) kept from dispatch's events."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from shared.contract import CaseDispatched, CaseRejected, Priority, new_event
from tests.helpers import as_user, eventually, publish_event, truncate
from tests.intake_app import running_intake

WORKER = as_user("wangfang")  # grids YA0101-03, YA0101-04
COMMUNITY = as_user("taoyuan")  # YA/YA01/YA0101
BASE = {
    "grid_code": "YA0101-03",
    "category": "E0101",
    "description": "楼下乱堆建筑垃圾",
    "priority": "normal",
    "location": {"address": "桃园小区5号楼"},
}


@pytest.fixture(scope="module")
async def app(pg_server, kafka_server):
    async with running_intake(pg_server, kafka_server) as (client, dsn, _settings):
        yield client, dsn, kafka_server.bootstrap


@pytest.fixture
async def intake(app):
    _, dsn, _ = app
    await truncate(dsn, "cases", "idempotency_keys", "outbox", "inbox")
    return app


async def report(client, **change) -> dict:
    resp = await client.post("/cases", json={**BASE, **change}, headers=WORKER)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def listed(client, **params) -> list[str]:
    resp = await client.get("/cases", params=params, headers=COMMUNITY)
    assert resp.status_code == 200, resp.text
    return [c["case_no"] for c in resp.json()]


async def test_filters_by_category_overdue_and_text(intake):
    client, dsn, _ = intake
    rubbish = await report(client)
    light = await report(
        client, category="C0101", description="路灯不亮", location={"address": "桃园路口"}
    )
    stall = await report(
        client,
        category="E0102",
        grid_code="YA0101-04",
        description="占道经营",
        location={"address": "北门菜市场"},
    )
    newest_first = [stall["case_no"], light["case_no"], rubbish["case_no"]]
    assert await listed(client) == newest_first
    # a 大类 covers its 小类; a 小类 only itself; another 大类 none of them
    assert await listed(client, category="E01") == [stall["case_no"], rubbish["case_no"]]
    assert await listed(client, category="E0101") == [rubbish["case_no"]]
    assert await listed(client, category="C01") == [light["case_no"]]
    assert await listed(client, category="E05") == []
    # a part of the number (any case), of the description or of the address
    assert await listed(client, q=light["case_no"][-4:]) == [light["case_no"]]
    assert await listed(client, q=light["case_no"].lower()) == [light["case_no"]]
    assert await listed(client, q="菜市场") == [stall["case_no"]]
    assert await listed(client, q="建筑垃圾") == [rubbish["case_no"]]
    assert await listed(client, q="   ") == newest_first  # blank: no filter
    # overdue as tracking's clocks set it
    conn = await asyncpg.connect(dsn)
    await conn.execute("UPDATE cases SET overdue = true WHERE id = $1", uuid.UUID(light["id"]))
    await conn.close()
    assert await listed(client, overdue="true") == [light["case_no"]]
    assert await listed(client, overdue="false") == [stall["case_no"], rubbish["case_no"]]
    # combined, and with the area and status filters
    assert await listed(client, category="E01", area="YA/YA01/YA0101/YA0101-04") == [
        stall["case_no"]
    ]
    assert await listed(client, category="E01", status="reported", overdue="false") == [
        stall["case_no"],
        rubbish["case_no"],
    ]
    bad = await client.get("/cases", params={"overdue": "maybe"}, headers=COMMUNITY)
    assert bad.status_code == 422


async def test_cases_show_the_departments_handling_them(intake):
    client, _, bootstrap = intake
    case = await report(client)
    assert case["assigned_departments"] == [] and case["departments"] == []
    whistled = await client.post(
        f"/cases/{case['id']}/whistle", json={"departments": ["cg"]}, headers=COMMUNITY
    )
    assert whistled.json()["departments"] == ["cg"]
    facts = {
        "case_no": case["case_no"],
        "area_path": case["area_path"],
        "category": "E0101",
        "priority": Priority.NORMAL,
    }
    lead, co = uuid.uuid4(), uuid.uuid4()
    for payload in (
        CaseDispatched(
            **facts,
            assignment_id=lead,
            department_id="cg",
            department_name="城管",
            role="lead",
            rule_id=None,
            reason="点名",
            description="x",
            basis="named",
        ),
        CaseDispatched(
            **facts,
            assignment_id=co,
            department_id="zj",
            department_name="住建",
            role="co",
            rule_id=None,
            reason="点名",
            description="x",
            basis="named",
        ),
        CaseRejected(**facts, assignment_id=co, department_id="zj", reason="不属于本部门"),
    ):
        await publish_event(
            bootstrap, new_event(payload, case_id=uuid.UUID(case["id"]), producer="dispatch")
        )

    async def only_cg_left():
        got = (await client.get(f"/cases/{case['id']}", headers=COMMUNITY)).json()
        return got["status"] == "dispatched" and got["assigned_departments"] == ["cg"]

    await eventually(only_cg_left, timeout=45, message="cg handles it, zj rejected it")
    [row] = (await client.get("/cases", headers=COMMUNITY)).json()
    assert row["assigned_departments"] == ["cg"]
