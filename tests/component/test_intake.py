"""Intake against real PostgreSQL and the real broker."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from shared.contract import CaseResolved, Priority, Topics, new_event
from tests.intake_app import running_intake
from tests.helpers import as_user, bearer, eventually, publish_event, read_topic, truncate

COMMUNITY = as_user("taoyuan")  # 桃园社区: YA/YA01/YA0101

GRID = "YA0101-01"
REPORT = {
    "grid_code": GRID,
    "category": "E0101",
    "description": "楼下空地乱堆建筑垃圾",
    "priority": "normal",
    "location": {"lat": 37.7, "lon": 112.7, "address": "桃园小区3号楼"},
    "reporter": "网格员李明",
}


@pytest.fixture(scope="module")
async def intake_app(pg_server, kafka_server):
    async with running_intake(
        pg_server, kafka_server, report_rate_limit_per_minute=5, max_body_bytes=64 * 1024
    ) as (client, dsn, _settings):
        yield client, dsn, kafka_server.bootstrap


@pytest.fixture
async def intake(intake_app):
    """One app for the module; each test starts from empty case tables."""
    _, dsn, _ = intake_app
    await truncate(dsn, "cases", "idempotency_keys", "outbox", "inbox")
    return intake_app


async def count(dsn: str, sql: str, *args) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_report_and_read_back_publishes_case_reported(intake):
    client, dsn, bootstrap = intake
    resp = await client.post("/cases", json=REPORT, headers=COMMUNITY)
    assert resp.status_code == 201, resp.text
    case = resp.json()
    assert case["status"] == "reported" and case["status_label"] == "已上报"
    assert case["area_path"] == "YA/YA01/YA0101/YA0101-01"
    assert case["case_no"].startswith("YA")
    assert case.pop("possible_duplicates") == []
    got = (await client.get(f"/cases/{case['id']}", headers=COMMUNITY)).json()
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
    resp = await client.post(
        "/cases", json=REPORT, headers={**COMMUNITY, "X-Correlation-ID": "corr-abc-123"}
    )
    assert resp.headers["X-Correlation-ID"] == "corr-abc-123"
    conn = await asyncpg.connect(dsn)
    payload = await conn.fetchval("SELECT payload FROM outbox WHERE key = $1", resp.json()["id"])
    await conn.close()
    assert json.loads(payload)["correlation_id"] == "corr-abc-123"


async def test_same_idempotency_key_gives_one_case(intake):
    client, dsn, _ = intake
    first = await client.post(
        "/cases", json=REPORT, headers={**COMMUNITY, "Idempotency-Key": "k-1"}
    )
    second = await client.post(
        "/cases", json=REPORT, headers={**COMMUNITY, "Idempotency-Key": "k-1"}
    )
    assert first.status_code == 201 and second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert await count(dsn, "SELECT count(*) FROM cases") == 1
    assert await count(dsn, "SELECT count(*) FROM outbox") == 1
    other = await client.post(
        "/cases",
        json={**REPORT, "description": "别的事"},
        headers={**COMMUNITY, "Idempotency-Key": "k-1"},
    )
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
    resp = await client.post("/cases", json={**REPORT, **change}, headers=COMMUNITY)
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == code and body["message"]
    assert await count(dsn, "SELECT count(*) FROM cases") == 0
    assert await count(dsn, "SELECT count(*) FROM outbox") == 0


async def test_error_messages_are_chinese_first_english_on_request(intake):
    client, _, _ = intake
    zh = await client.post("/cases", json={**REPORT, "grid_code": "NOPE"}, headers=COMMUNITY)
    en = await client.post(
        "/cases",
        json={**REPORT, "grid_code": "NOPE"},
        headers={**COMMUNITY, "Accept-Language": "en-US,en;q=0.9"},
    )
    assert zh.json()["error"]["message"] == "网格“NOPE”不存在"
    assert en.json()["error"]["message"] == "unknown grid 'NOPE'"


async def test_whistle_then_state_rules(intake):
    client, dsn, _ = intake
    case = (await client.post("/cases", json=REPORT, headers=COMMUNITY)).json()
    closed_too_early = await client.post(f"/cases/{case['id']}/close", json={}, headers=COMMUNITY)
    assert closed_too_early.status_code == 409
    resp = await client.post(
        f"/cases/{case['id']}/whistle",
        json={"departments": ["cg"], "priority": "urgent", "note": "请城管处理"},
        headers=COMMUNITY,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "whistled" and resp.json()["priority"] == "urgent"
    again = await client.post(f"/cases/{case['id']}/whistle", json={}, headers=COMMUNITY)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    types = await count(dsn, "SELECT array_agg(type ORDER BY id) FROM outbox")
    assert types == ["case.reported", "case.whistled"]
    missing = await client.post(f"/cases/{uuid.uuid4()}/whistle", json={}, headers=COMMUNITY)
    assert missing.status_code == 404


async def test_follows_dispatch_progress_then_closes(intake):
    client, dsn, bootstrap = intake
    case = (await client.post("/cases", json=REPORT, headers=COMMUNITY)).json()
    await client.post(f"/cases/{case['id']}/whistle", json={}, headers=COMMUNITY)
    resolved = new_event(
        CaseResolved(
            case_no=case["case_no"],
            area_path=case["area_path"],
            category="E0101",
            priority=Priority.NORMAL,
            assignment_id=uuid.uuid4(),
            department_id="cg",
            result="已清运",
        ),
        case_id=uuid.UUID(case["id"]),
        producer="dispatch",
    )
    await publish_event(bootstrap, resolved)
    await publish_event(bootstrap, resolved)  # a duplicate delivery: one effect

    async def status():
        return (await client.get(f"/cases/{case['id']}", headers=COMMUNITY)).json()[
            "status"
        ] == "resolved"

    await eventually(status, timeout=45, message="intake followed case.resolved")
    assert (
        await count(dsn, "SELECT count(*) FROM inbox WHERE event_id = $1", resolved.event_id) == 1
    )
    closed = await client.post(
        f"/cases/{case['id']}/close", json={"note": "现场核查已清理"}, headers=COMMUNITY
    )
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


# --- who may do what (issue 3) -----------------------------------------------------------


async def test_no_or_bad_token_is_401_and_changes_nothing(intake):
    client, dsn, _ = intake
    expired = bearer("community", "YA/YA01/YA0101", ttl=-10)
    for headers in (
        {},
        {"Authorization": "Bearer not-a-jwt"},
        expired,
        {"Authorization": "Basic dXNlcjpwdw=="},
    ):
        resp = await client.post("/cases", json=REPORT, headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.json()["error"]["code"] in ("unauthenticated", "invalid_token", "token_expired")
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.post("/cases", json=REPORT, headers=expired)).json()["error"][
        "code"
    ] == "token_expired"
    assert await count(dsn, "SELECT count(*) FROM cases") == 0


async def test_grid_worker_reports_only_in_his_grids(intake):
    client, dsn, _ = intake
    own = bearer(
        "grid_worker",
        "YA/YA01/YA0101/YA0101-01",
        grids=("YA/YA01/YA0101/YA0101-01", "YA/YA01/YA0101/YA0101-02"),
    )
    assert (await client.post("/cases", json=REPORT, headers=own)).status_code == 201
    second = {**REPORT, "grid_code": "YA0101-02"}
    assert (await client.post("/cases", json=second, headers=own)).status_code == 201
    outside = await client.post("/cases", json={**REPORT, "grid_code": "YA0101-03"}, headers=own)
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
    assert "YA/YA01/YA0101/YA0101-03" in outside.json()["error"]["message"]
    assert await count(dsn, "SELECT count(*) FROM cases") == 2
    assert await count(dsn, "SELECT count(*) FROM outbox") == 2


async def test_roles_and_scopes_on_a_case(intake):
    client, dsn, _ = intake
    case = (await client.post("/cases", json=REPORT, headers=COMMUNITY)).json()
    other_street = bearer("street", "YA/YA02")
    dept = bearer("department", department_id="cg")
    supervisor = bearer("supervisor", "YA/YA01")
    assert (await client.get(f"/cases/{case['id']}", headers=supervisor)).status_code == 200
    assert (await client.get(f"/cases/{case['id']}", headers=other_street)).status_code == 403
    assert (await client.get(f"/cases/{case['id']}", headers=dept)).status_code == 403
    denied = await client.post(f"/cases/{case['id']}/whistle", json={}, headers=supervisor)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "role_not_allowed"
    assert (
        await client.post(f"/cases/{case['id']}/whistle", json={}, headers=other_street)
    ).status_code == 403
    assert await count(dsn, "SELECT count(*) FROM outbox") == 1  # only the report
    listed = await client.get("/cases", headers=other_street)
    assert listed.status_code == 200 and listed.json() == []
    mine = await client.get("/cases", headers=bearer("street", "YA/YA01"))
    assert [c["id"] for c in mine.json()] == [case["id"]]
    narrowed = await client.get("/cases", params={"area": "YA/YA01"}, headers=COMMUNITY)
    assert narrowed.status_code == 403  # wider than the community's own subtree


async def test_actions_are_attributed_to_the_caller(intake):
    client, dsn, _ = intake
    resp = await client.post("/cases", json={**REPORT, "reporter": None}, headers=COMMUNITY)
    case = resp.json()
    assert case["reporter"] == "桃园社区书记"
    await client.post(f"/cases/{case['id']}/whistle", json={}, headers=COMMUNITY)
    conn = await asyncpg.connect(dsn)
    rows = await conn.fetch("SELECT type, payload FROM outbox ORDER BY id")
    await conn.close()
    actors = {r["type"]: json.loads(r["payload"])["actor"] for r in rows}
    assert (
        actors["case.reported"]
        == actors["case.whistled"]
        == {"subject": "taoyuan", "role": "community", "name": "桃园社区书记"}
    )


async def test_idempotency_keys_are_per_user(intake):
    client, _, _ = intake
    jinxiu = bearer("community", "YA/YA01/YA0101", subject="someone-else")
    mine = await client.post("/cases", json=REPORT, headers={**COMMUNITY, "Idempotency-Key": "k"})
    theirs = await client.post("/cases", json=REPORT, headers={**jinxiu, "Idempotency-Key": "k"})
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_report_rate_limit_per_user(intake):
    client, dsn, _ = intake
    worker = bearer("grid_worker", grids=("YA/YA01/YA0101/YA0101-01",), subject="busy")
    codes = [
        (await client.post("/cases", json=REPORT, headers=worker)).status_code for _ in range(6)
    ]
    assert codes == [201] * 5 + [429]
    limited = await client.post("/cases", json=REPORT, headers=worker)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "60"
    other = await client.post("/cases", json=REPORT, headers=COMMUNITY)
    assert other.status_code == 201  # the limit is per user
    assert await count(dsn, "SELECT count(*) FROM cases") == 6


async def test_request_body_size_is_limited(intake):
    client, dsn, _ = intake
    huge = {**REPORT, "description": "很" * 40_000}  # ≈120 KB of UTF-8
    resp = await client.post("/cases", json=huge, headers=COMMUNITY)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    assert await count(dsn, "SELECT count(*) FROM cases") == 0


async def test_the_reporter_sees_the_deadline_and_lateness(intake):
    client, _, bootstrap = intake
    case = (await client.post("/cases", json=REPORT, headers=COMMUNITY)).json()
    assert case["deadline_at"] is None and case["overdue"] is False
    from datetime import UTC, datetime, timedelta

    from shared.contract import CaseClockStarted, CaseClockStopped, CaseOverdue

    facts = {
        "case_no": case["case_no"],
        "area_path": case["area_path"],
        "category": "E0101",
        "priority": Priority.NORMAL,
    }
    aid, due = uuid.uuid4(), datetime.now(UTC) + timedelta(minutes=30)
    clock = {"assignment_id": aid, "department_id": "cg", "clock": "sign_for"}
    cid = uuid.UUID(case["id"])
    await publish_event(
        bootstrap,
        new_event(CaseClockStarted(**facts, **clock, due_at=due), case_id=cid, producer="tracking"),
    )

    async def view(key, value):
        got = (await client.get(f"/cases/{case['id']}", headers=COMMUNITY)).json()
        return got if got[key] == value else None

    async def deadline_shown():
        got = (await client.get(f"/cases/{case['id']}", headers=COMMUNITY)).json()
        at = got["deadline_at"]
        return at is not None and datetime.fromisoformat(at) == due

    await eventually(deadline_shown, timeout=45, message="deadline shown")
    await publish_event(
        bootstrap,
        new_event(
            CaseOverdue(**facts, **clock, department_name="城管", due_at=due),
            case_id=cid,
            producer="tracking",
        ),
    )
    await eventually(lambda: view("overdue", True), timeout=45, message="overdue shown")
    await publish_event(
        bootstrap,
        new_event(
            CaseClockStopped(**facts, **clock, because="case.signed_for"),
            case_id=cid,
            producer="tracking",
        ),
    )
    got = await eventually(lambda: view("overdue", False), timeout=45, message="clock stopped")
    assert got["deadline_at"] is None
