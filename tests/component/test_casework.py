"""Intake casework endpoints on real PostgreSQL and the real broker: fix on the spot, rework,
rating (and its one-time link), reopen, possible duplicates and merging."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from shared.contract import CaseDispatched, CaseResolved, Priority, new_event
from tests.intake_app import running_intake
from tests.helpers import as_user, bearer, eventually, publish_event, truncate

WORKER = as_user("wangfang")  # grids YA0101-03, YA0101-04
COMMUNITY = as_user("taoyuan")  # YA/YA01/YA0101
OTHER = bearer("community", "YA/YA02/YA0201")
BASE = {
    "grid_code": "YA0101-03",
    "category": "E0101",
    "description": "楼下乱堆建筑垃圾",
    "priority": "normal",
    "location": {"lat": 37.8865, "lon": 112.5345},
}  # in YA0101-03


@pytest.fixture(scope="module")
async def app(pg_server, kafka_server):
    async with running_intake(pg_server, kafka_server) as (client, dsn, _settings):
        yield client, dsn, kafka_server.bootstrap


@pytest.fixture
async def intake(app):
    _, dsn, _ = app
    await truncate(dsn, "cases", "idempotency_keys", "outbox", "inbox")
    return app


async def q(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def outbox_types(dsn: str) -> list[str]:
    return await q(dsn, "SELECT coalesce(array_agg(type ORDER BY id), '{}') FROM outbox")


async def new_case(client, headers: dict = WORKER, **change) -> dict:
    resp = await client.post("/cases", json={**BASE, **change}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def resolved_case(client, bootstrap) -> dict:
    """A case whistled, dispatched to cg and resolved (dispatch's events, over the broker)."""
    case = await new_case(client)
    await client.post(f"/cases/{case['id']}/whistle", json={}, headers=COMMUNITY)
    facts = {
        "case_no": case["case_no"],
        "area_path": case["area_path"],
        "category": "E0101",
        "priority": Priority.NORMAL,
    }
    aid = uuid.uuid4()
    for payload in (
        CaseDispatched(
            **facts,
            assignment_id=aid,
            department_id="cg",
            department_name="城管",
            role="lead",
            rule_id=1,
            reason="规则#1",
            description="x",
        ),
        CaseResolved(**facts, assignment_id=aid, department_id="cg", result="已清运"),
    ):
        await publish_event(
            bootstrap, new_event(payload, case_id=uuid.UUID(case["id"]), producer="dispatch")
        )

    async def resolved():
        got = await client.get(f"/cases/{case['id']}", headers=COMMUNITY)
        return got.json()["status"] == "resolved"

    await eventually(resolved, timeout=45, message="the case is resolved")
    return case


async def test_fix_on_spot_closes_at_grid_level(intake):
    client, dsn, _ = intake
    case = await new_case(client)
    missing_note = await client.post(f"/cases/{case['id']}/fix-on-spot", json={}, headers=WORKER)
    assert missing_note.status_code == 422
    wrong_grid = bearer("grid_worker", grids=("YA/YA01/YA0101/YA0101-01",))
    assert (
        await client.post(
            f"/cases/{case['id']}/fix-on-spot", json={"note": "x"}, headers=wrong_grid
        )
    ).status_code == 403
    assert await outbox_types(dsn) == ["case.reported"]
    fixed = await client.post(
        f"/cases/{case['id']}/fix-on-spot", json={"note": "已现场清理"}, headers=WORKER
    )
    assert fixed.status_code == 200 and fixed.json()["status"] == "closed"
    conn = await asyncpg.connect(dsn)
    payload = json.loads(
        await conn.fetchval("SELECT payload FROM outbox WHERE type = 'case.closed'")
    )["payload"]
    resolution = await conn.fetchval(
        "SELECT resolution FROM cases WHERE id = $1", uuid.UUID(case["id"])
    )
    await conn.close()
    assert payload["resolution"] == "on_spot" and payload["note"] == "已现场清理"
    assert resolution == "on_spot"
    whistled = await new_case(client)
    await client.post(f"/cases/{whistled['id']}/whistle", json={}, headers=COMMUNITY)
    late = await client.post(
        f"/cases/{whistled['id']}/fix-on-spot", json={"note": "x"}, headers=WORKER
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "invalid_state"


async def test_whistle_levels_and_closed_cases(intake):
    client, _, _ = intake
    case = await new_case(client)
    by_worker = await client.post(f"/cases/{case['id']}/whistle", json={}, headers=WORKER)
    assert by_worker.status_code == 403  # not allowed in this community's settings
    to_district = await client.post(
        f"/cases/{case['id']}/whistle", json={"level": "district"}, headers=COMMUNITY
    )
    assert to_district.status_code == 403
    to_street = await client.post(
        f"/cases/{case['id']}/whistle", json={"level": "street"}, headers=COMMUNITY
    )
    assert to_street.status_code == 200
    closed = await new_case(client)
    await client.post(f"/cases/{closed['id']}/fix-on-spot", json={"note": "x"}, headers=WORKER)
    again = await client.post(f"/cases/{closed['id']}/whistle", json={}, headers=COMMUNITY)
    assert again.status_code == 409


async def test_rework_sends_it_back_with_the_reason(intake):
    client, dsn, bootstrap = intake
    early = await new_case(client)
    too_early = await client.post(
        f"/cases/{early['id']}/rework", json={"reason": "x"}, headers=COMMUNITY
    )
    assert too_early.status_code == 409
    case = await resolved_case(client, bootstrap)
    assert (
        await client.post(f"/cases/{case['id']}/rework", json={"reason": ""}, headers=COMMUNITY)
    ).status_code == 422
    assert (
        await client.post(f"/cases/{case['id']}/rework", json={"reason": "x"}, headers=OTHER)
    ).status_code == 403
    sent = await client.post(
        f"/cases/{case['id']}/rework", json={"reason": "地面仍有污渍"}, headers=COMMUNITY
    )
    assert sent.status_code == 200 and sent.json()["status"] == "rework"
    conn = await asyncpg.connect(dsn)
    payload = json.loads(
        await conn.fetchval("SELECT payload FROM outbox WHERE type = 'case.rework_requested'")
    )
    count = await conn.fetchval(
        "SELECT rework_count FROM cases WHERE id = $1", uuid.UUID(case["id"])
    )
    await conn.close()
    assert payload["payload"]["departments"] == ["cg"]
    assert payload["payload"]["reason"] == "地面仍有污渍"
    assert payload["actor"]["subject"] == "taoyuan" and count == 1


async def test_rating_once_with_a_valid_score(intake):
    client, dsn, _ = intake
    case = await new_case(client)
    early = await client.post(f"/cases/{case['id']}/rating", json={"score": 5}, headers=WORKER)
    assert early.status_code == 409
    await client.post(f"/cases/{case['id']}/fix-on-spot", json={"note": "x"}, headers=WORKER)
    for bad in (0, 6, "五"):
        resp = await client.post(f"/cases/{case['id']}/rating", json={"score": bad}, headers=WORKER)
        assert resp.status_code == 422, bad
    ok = await client.post(
        f"/cases/{case['id']}/rating", json={"score": 5, "comment": "满意"}, headers=WORKER
    )
    assert ok.status_code == 201 and ok.json()["channel"] == "grid_worker"
    assert (
        await client.post(f"/cases/{case['id']}/rating", json={"score": 1}, headers=WORKER)
    ).status_code == 409
    link = await client.post(f"/cases/{case['id']}/rating-link", headers=WORKER)
    assert link.status_code == 409  # already rated: no link
    assert await q(dsn, "SELECT count(*) FROM ratings") == 1


async def test_rating_link_is_one_time_and_expires(intake):
    client, dsn, _ = intake
    case = await new_case(client)
    await client.post(f"/cases/{case['id']}/fix-on-spot", json={"note": "x"}, headers=WORKER)
    link = (await client.post(f"/cases/{case['id']}/rating-link", headers=WORKER)).json()
    assert (
        await q(dsn, "SELECT count(*) FROM rating_links WHERE token_hash = $1", link["token"]) == 0
    )  # only the hash is kept
    await q(dsn, "UPDATE rating_links SET expires_at = now() - interval '1 minute'")
    expired = await client.post(link["path"], json={"score": 5})
    assert expired.status_code == 404
    assert (await client.get("/ratings/" + "x" * 32)).status_code == 404
    assert await q(dsn, "SELECT count(*) FROM ratings") == 0


async def test_reopen_within_the_window(intake):
    client, dsn, _ = intake
    case = await new_case(client)
    await client.post(f"/cases/{case['id']}/fix-on-spot", json={"note": "x"}, headers=WORKER)
    reopened = await client.post(
        f"/cases/{case['id']}/reopen", json={"reason": "又堆上了"}, headers=WORKER
    )
    assert reopened.status_code == 200 and reopened.json()["status"] == "reopened"
    assert reopened.json()["closed_at"] is None
    await client.post(f"/cases/{case['id']}/fix-on-spot", json={"note": "再次清理"}, headers=WORKER)
    await q(
        dsn,
        "UPDATE cases SET closed_at = now() - interval '8 days' WHERE id = $1",
        uuid.UUID(case["id"]),
    )
    late = await client.post(f"/cases/{case['id']}/reopen", json={"reason": "x"}, headers=WORKER)
    assert late.status_code == 409 and late.json()["error"]["code"] == "reopen_window_passed"
    assert await outbox_types(dsn) == [
        "case.reported",
        "case.closed",
        "case.reopened",
        "case.closed",
    ]


async def test_possible_duplicates_and_merge(intake):
    client, dsn, _ = intake
    first = await new_case(client)
    same_grid = await new_case(client, location={"address": "同一网格"})
    assert [d["id"] for d in same_grid["possible_duplicates"]] == [first["id"]]
    near = await new_case(
        client,
        COMMUNITY,
        grid_code="YA0101-02",  # the grid next door,
        location={"lat": 37.8865, "lon": 112.5338},
    )  # ≈60 m away
    assert first["id"] in [d["id"] for d in near["possible_duplicates"]]
    assert near["possible_duplicates"][0]["distance_m"] < 100
    far = await new_case(
        client, grid_code="YA0101-04", location={"lat": 37.8835, "lon": 112.528}
    )  # ≈650 m away
    other_kind = await new_case(client, category="E0201")
    assert far["possible_duplicates"] == [] and other_kind["possible_duplicates"] == []
    listed = await client.get(f"/cases/{first['id']}/duplicates", headers=COMMUNITY)
    assert {d["id"] for d in listed.json()} == {same_grid["id"], near["id"]}

    by_worker = await client.post(
        f"/cases/{same_grid['id']}/merge", json={"primary_case_id": first["id"]}, headers=WORKER
    )
    assert by_worker.status_code == 403  # the community triages duplicates
    into_itself = await client.post(
        f"/cases/{first['id']}/merge", json={"primary_case_id": first["id"]}, headers=COMMUNITY
    )
    assert into_itself.status_code == 422
    await q(
        dsn,
        "UPDATE cases SET reported_at = reported_at - interval '1 hour' WHERE id = $1",
        uuid.UUID(same_grid["id"]),
    )  # the duplicate was reported first
    merged = await client.post(
        f"/cases/{same_grid['id']}/merge", json={"primary_case_id": first["id"]}, headers=COMMUNITY
    )
    assert merged.status_code == 200 and merged.json()["id"] == first["id"]
    assert merged.json()["reported_at"] < first["reported_at"]  # the earliest report time
    dup = (await client.get(f"/cases/{same_grid['id']}", headers=COMMUNITY)).json()
    assert dup["status"] == "closed"
    credited = (await client.get(f"/cases/{first['id']}/reporters", headers=COMMUNITY)).json()
    assert {r["case_id"] for r in credited} == {first["id"], same_grid["id"]}
    assert "case.merged" in await outbox_types(dsn)
    twice = await client.post(
        f"/cases/{same_grid['id']}/merge", json={"primary_case_id": first["id"]}, headers=COMMUNITY
    )
    assert twice.status_code == 409
