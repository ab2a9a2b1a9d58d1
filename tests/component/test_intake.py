"""Intake against real PostgreSQL and the real broker."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from services.intake.config import Settings
from services.intake.demo import seed_demo
from services.intake.main import create_app
from shared import demo
from shared.events import CaseResolved, Priority, Topics, new_event
from tests.conftest import migrated_database
from tests.helpers import eventually, publish_event, read_topic, running_app

GRID = "YA0101-01"
REPORT = {
    "grid_code": GRID, "category": "E0101", "description": "楼下空地乱堆建筑垃圾",
    "priority": "normal", "location": {"lat": 37.7, "lon": 112.7, "address": "桃园小区3号楼"},
    "reporter": "网格员李明",
}


@pytest.fixture
async def intake(pg_server, kafka_server):
    dsn = await migrated_database(pg_server, "intake")
    settings = Settings(
        database_url=dsn, kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False, dispatch_url="http://127.0.0.1:9", log_json=False,
        outbox_poll_interval_seconds=0.5,
    )
    await seed_demo(settings)
    conn = await asyncpg.connect(dsn)
    await conn.executemany(
        "INSERT INTO categories (code, name, parent_code) VALUES ($1, $2, $3)", demo.CATEGORIES
    )
    await conn.close()
    async with running_app(create_app(settings)) as client:
        yield client, dsn, kafka_server.bootstrap


async def count(dsn: str, sql: str, *args) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_report_and_read_back_publishes_case_reported(intake):
    client, dsn, bootstrap = intake
    resp = await client.post("/cases", json=REPORT)
    assert resp.status_code == 201, resp.text
    case = resp.json()
    assert case["status"] == "reported" and case["status_label"] == "已上报"
    assert case["area_path"] == "YA/YA01/YA0101/YA0101-01"
    assert case["case_no"].startswith("YA")
    got = (await client.get(f"/cases/{case['id']}")).json()
    assert got == case

    async def sent():
        return await count(dsn, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") == 1

    await eventually(sent, message="outbox row published")
    records = await read_topic(bootstrap, Topics.INTAKE)
    mine = [json.loads(r.value) for r in records if r.key == case["id"].encode()]
    assert [m["type"] for m in mine] == ["case.reported"]
    assert mine[0]["payload"]["grid_code"] == GRID
    assert mine[0]["correlation_id"]


async def test_correlation_id_from_request_reaches_the_event(intake):
    client, dsn, _ = intake
    resp = await client.post("/cases", json=REPORT, headers={"X-Correlation-ID": "corr-abc-123"})
    assert resp.headers["X-Correlation-ID"] == "corr-abc-123"
    conn = await asyncpg.connect(dsn)
    payload = await conn.fetchval("SELECT payload FROM outbox WHERE key = $1", resp.json()["id"])
    await conn.close()
    assert json.loads(payload)["correlation_id"] == "corr-abc-123"


async def test_same_idempotency_key_gives_one_case(intake):
    client, dsn, _ = intake
    first = await client.post("/cases", json=REPORT, headers={"Idempotency-Key": "k-1"})
    second = await client.post("/cases", json=REPORT, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert await count(dsn, "SELECT count(*) FROM cases") == 1
    assert await count(dsn, "SELECT count(*) FROM outbox") == 1
    other = await client.post("/cases", json={**REPORT, "description": "别的事"},
                              headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await count(dsn, "SELECT count(*) FROM cases") == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"grid_code": "NOPE"}, 422, "unknown_grid"),
        ({"category": "Z9999"}, 422, "unknown_category"),
        ({"priority": "whenever"}, 422, "validation_error"),
        ({"description": ""}, 422, "validation_error"),
        ({"location": {"lat": 123}}, 422, "validation_error"),
        ({"surprise": 1}, 422, "validation_error"),
    ],
)
async def test_bad_reports_are_refused_and_change_nothing(intake, change, status, code):
    client, dsn, _ = intake
    resp = await client.post("/cases", json={**REPORT, **change})
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == code and body["message"]
    assert await count(dsn, "SELECT count(*) FROM cases") == 0
    assert await count(dsn, "SELECT count(*) FROM outbox") == 0


async def test_error_messages_are_chinese_first_english_on_request(intake):
    client, _, _ = intake
    zh = await client.post("/cases", json={**REPORT, "grid_code": "NOPE"})
    en = await client.post("/cases", json={**REPORT, "grid_code": "NOPE"},
                           headers={"Accept-Language": "en-US,en;q=0.9"})
    assert zh.json()["error"]["message"] == "网格“NOPE”不存在"
    assert en.json()["error"]["message"] == "unknown grid 'NOPE'"


async def test_whistle_then_state_rules(intake):
    client, dsn, _ = intake
    case = (await client.post("/cases", json=REPORT)).json()
    closed_too_early = await client.post(f"/cases/{case['id']}/close", json={})
    assert closed_too_early.status_code == 409
    resp = await client.post(f"/cases/{case['id']}/whistle",
                             json={"departments": ["cg"], "priority": "urgent", "note": "请城管处理"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "whistled" and resp.json()["priority"] == "urgent"
    again = await client.post(f"/cases/{case['id']}/whistle", json={})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    types = await count(dsn, "SELECT array_agg(type ORDER BY id) FROM outbox")
    assert types == ["case.reported", "case.whistled"]
    missing = await client.post(f"/cases/{uuid.uuid4()}/whistle", json={})
    assert missing.status_code == 404


async def test_follows_dispatch_progress_then_closes(intake):
    client, dsn, bootstrap = intake
    case = (await client.post("/cases", json=REPORT)).json()
    await client.post(f"/cases/{case['id']}/whistle", json={})
    resolved = new_event(
        CaseResolved(case_no=case["case_no"], area_path=case["area_path"], category="E0101",
                     priority=Priority.NORMAL, assignment_id=uuid.uuid4(), department_id="cg",
                     result="已清运"),
        case_id=uuid.UUID(case["id"]), producer="dispatch",
    )
    await publish_event(bootstrap, resolved)
    await publish_event(bootstrap, resolved)  # a duplicate delivery: one effect

    async def status():
        return (await client.get(f"/cases/{case['id']}")).json()["status"] == "resolved"

    await eventually(status, timeout=45, message="intake followed case.resolved")
    assert await count(dsn, "SELECT count(*) FROM inbox WHERE event_id = $1",
                       resolved.event_id) == 1
    closed = await client.post(f"/cases/{case['id']}/close", json={"note": "现场核查已清理"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


async def test_health_readiness_metrics_and_docs(intake):
    client, _, _ = intake
    assert (await client.get("/livez")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "catalogue": "ok"}
    metrics = (await client.get("/metrics")).text
    assert "whistle_outbox_backlog" in metrics
    spec = (await client.get("/asyncapi.json")).json()
    assert Topics.INTAKE in json.dumps(spec)
    assert (await client.get("/openapi.json")).status_code == 200
