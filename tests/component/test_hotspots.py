"""未诉先办 hotspots against real PostgreSQL and the real broker: detection thresholds and
evidence, scope, one-action accept (idempotent, also under concurrent clicks), dismiss,
and bad input that changes nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.intake.domain import hotspots as rules
from shared.clock import BEIJING, utcnow
from shared.contract import Topics
from tests.helpers import as_user, eventually, fetch, fetchval, read_topic, truncate
from tests.intake_app import running_intake

COMMUNITY = as_user("taoyuan")  # 桃园社区 YA/YA01/YA0101
OTHER_COMMUNITY = as_user("jinxiu")  # 锦绣社区 YA/YA02/YA0201
STREET = as_user("yingze")  # 迎泽街道 YA/YA01
SUPERVISOR = as_user("supervisor")  # YA
GRID_WORKER = as_user("wangfang")
GRID = "YA0101-01"
GRID_PATH = "YA/YA01/YA0101/YA0101-01"


def report(category: str = "E0101", grid: str = GRID, **location: object) -> dict:
    return {
        "grid_code": grid,
        "category": category,
        "description": "楼下空地又堆了建筑垃圾",
        "location": location,
    }


@pytest.fixture(scope="module")
async def intake_app(pg_server, kafka_server):
    async with running_intake(pg_server, kafka_server, report_rate_limit_per_minute=1000) as (
        client,
        dsn,
        _settings,
    ):
        yield client, dsn, kafka_server.bootstrap


# The API places reports in calendar weeks by the real clock (a week starts Monday 00:00
# Beijing time = Sunday 16:00 UTC). A test seeds reports whole weeks (and a minute) back and
# works out the window's id itself: both hold only if no week starts during the test. A test
# starting in the last minute of a week or the first minute and a half of one waits that out.
CLEAR_BEFORE, CLEAR_AFTER = timedelta(seconds=60), timedelta(seconds=90)


def wait_for_a_clear_week(now: datetime) -> timedelta:
    """How long a test starting at ``now`` waits to be clear of a week's start."""
    this = rules.week_start(now)
    following = this + timedelta(weeks=1)
    if now - this < CLEAR_AFTER:
        return this + CLEAR_AFTER - now
    if following - now < CLEAR_BEFORE:
        return following + CLEAR_AFTER - now
    return timedelta()


@pytest.mark.parametrize(
    ("now", "wait"),
    [
        (datetime(2026, 12, 6, 15, 58, 59, tzinfo=UTC), 0),  # Sunday, 61 s before Monday
        (datetime(2026, 12, 6, 15, 59, 30, tzinfo=UTC), 120),
        (datetime(2026, 12, 6, 16, 0, 0, tzinfo=UTC), 90),  # Monday 00:00 Beijing
        (datetime(2026, 12, 6, 16, 1, 0, tzinfo=UTC), 30),
        (datetime(2026, 12, 6, 16, 1, 30, tzinfo=UTC), 0),
        (datetime(2026, 12, 9, 4, 0, 0, tzinfo=UTC), 0),  # mid-week
    ],
)
def test_a_test_waits_only_near_a_week_start(now, wait):
    assert wait_for_a_clear_week(now) == timedelta(seconds=wait)


@pytest.fixture
async def intake(intake_app):
    """One app for the module; each test starts from empty case tables, clear of a week's
    start."""
    await asyncio.sleep(wait_for_a_clear_week(utcnow()).total_seconds())
    _, dsn, _ = intake_app
    await truncate(dsn, "cases", "idempotency_keys", "outbox", "inbox", "hotspot_decisions")
    return intake_app


async def seed(client, dsn: str, weeks_ago: float, body: dict | None = None) -> dict:
    """A case reported ``weeks_ago`` weeks back. The API stamps every report with now, so
    the report goes through the API and its reported time is then moved back in SQL."""
    resp = await client.post("/cases", json=body or report(), headers=COMMUNITY)
    assert resp.status_code == 201, resp.text
    case = resp.json()
    at = utcnow() - timedelta(weeks=weeks_ago, minutes=1)
    conn = await asyncpg.connect(dsn)
    await conn.execute("UPDATE cases SET reported_at = $2 WHERE id = $1", case["id"], at)
    await conn.close()
    return {**case, "reported_at": at}


def expected_id(weeks: int = 4, grid: str = GRID, category: str = "E0101") -> str:
    start = rules.window_start(utcnow(), weeks)
    return f"{grid}.{category}.{start.astimezone(BEIJING):%Y%m%d%H%M%S}"


async def hotspots(client, headers=COMMUNITY, **params) -> list[dict]:
    resp = await client.get("/hotspots", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["hotspots"]


async def snapshot(dsn: str) -> tuple:
    return tuple(
        [
            await fetchval(dsn, f"SELECT count(*) FROM {t}")
            for t in ("cases", "outbox", "hotspot_decisions")
        ]
    )


async def test_detection_counts_one_category_in_one_grid_over_the_window(intake):
    client, dsn, _ = intake
    cases = [await seed(client, dsn, w, report(lat=37.70, lon=112.70)) for w in (0, 1, 2)]
    cases.append(await seed(client, dsn, 3, report(lat=37.72, lon=112.72)))
    await seed(client, dsn, 5)  # before a 4-week window
    await seed(client, dsn, 0, report("E0102"))
    await seed(client, dsn, 1, report("E0102"))
    await seed(client, dsn, 0, report(grid="YA0101-02"))
    # a duplicate merged into the first case counts once, through its primary
    dup = await seed(client, dsn, 0)
    merged = await client.post(
        f"/cases/{dup['id']}/merge", json={"primary_case_id": cases[0]["id"]}, headers=COMMUNITY
    )
    assert merged.status_code == 200, merged.text
    # a case fixed on the spot (closed) still counts
    fixed = await client.post(
        f"/cases/{cases[1]['id']}/fix-on-spot", json={"note": "已清理"}, headers=COMMUNITY
    )
    assert fixed.status_code == 200, fixed.text

    [spot] = await hotspots(client)
    assert spot["id"] == expected_id()
    assert (spot["grid_code"], spot["area_path"], spot["category"]) == (GRID, GRID_PATH, "E0101")
    assert spot["category_name"] == "乱堆物料"
    assert spot["case_count"] == 4 and spot["open_cases"] == 3
    assert spot["weekly"] == [1, 1, 1, 1]
    assert {c["id"] for c in spot["cases"]} == {c["id"] for c in cases}
    assert [c["case_no"] for c in spot["cases"]] == [c["case_no"] for c in reversed(cases)]
    assert datetime.fromisoformat(spot["first_reported_at"]) == cases[3]["reported_at"]
    assert spot["location"]["lat"] == pytest.approx(37.705) and spot["state"] == "proposed"
    assert spot["state_label"] == "待研判" and spot["decision"] is None

    assert [s["case_count"] for s in await hotspots(client, weeks=6)] == [5]
    assert await hotspots(client, min_cases=5) == []
    two = await hotspots(client, min_cases=2)
    assert [(s["grid_code"], s["category"]) for s in two] == [(GRID, "E0101"), (GRID, "E0102")]
    assert [s["category"] for s in await hotspots(client, min_cases=2, limit=1)] == ["E0101"]


async def test_scope_follows_the_jurisdiction_tree(intake):
    client, dsn, _ = intake
    for w in (0, 1, 2):
        await seed(client, dsn, w)
    assert len(await hotspots(client, STREET)) == 1
    assert len(await hotspots(client, SUPERVISOR)) == 1
    assert len(await hotspots(client, COMMUNITY, area=GRID_PATH)) == 1
    assert await hotspots(client, OTHER_COMMUNITY) == []
    assert await hotspots(client, STREET, area="YA/YA01/YA0102") == []
    denied = await client.get("/hotspots", params={"area": "YA/YA02"}, headers=COMMUNITY)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "out_of_scope"
    worker = await client.get("/hotspots", headers=GRID_WORKER)
    assert worker.status_code == 403


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"area": "YA/YA01/YA0101/NOPE"}, 422, "unknown_area"),
        ({"weeks": 0}, 422, "validation_error"),
        ({"weeks": 13}, 422, "validation_error"),
        ({"min_cases": 1}, 422, "validation_error"),
        ({"state": "maybe"}, 422, "validation_error"),
        ({"limit": 0}, 422, "validation_error"),
    ],
)
async def test_bad_listing_requests_are_refused(intake, params, status, code):
    client, _, _ = intake
    resp = await client.get("/hotspots", params=params, headers=COMMUNITY)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]


async def test_accept_opens_one_proactive_case_and_publishes_it(intake):
    client, dsn, bootstrap = intake
    seeded = [await seed(client, dsn, w, report(lat=37.7, lon=112.7)) for w in (0, 1, 2)]
    hotspot_id = expected_id()
    first = await client.post(f"/hotspots/{hotspot_id}/accept", headers=COMMUNITY)
    assert first.status_code == 201, first.text
    body = first.json()
    case = body["case"]
    assert first.headers["Location"] == f"/cases/{case['id']}"
    assert body["state"] == "accepted" and body["decision"]["case_id"] == case["id"]
    assert body["decision"]["case_no"] == case["case_no"]
    assert (case["grid_code"], case["category"], case["status"]) == (GRID, "E0101", "reported")
    assert case["reporter"] == "桃园社区书记" and case["source"] == "proactive"
    assert case["description"].startswith("未诉先办：本网格近4周同类问题（乱堆物料）反复出现3次")
    assert all(c["case_no"] in case["description"] for c in seeded)
    assert (case["location"]["lat"], case["location"]["lon"]) == (37.7, 112.7)

    again = await client.post(f"/hotspots/{hotspot_id}/accept", headers=STREET)
    assert again.status_code == 200 and again.json()["case"]["id"] == case["id"]
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 4

    rows = await fetch(dsn, "SELECT payload FROM outbox WHERE key = $1", case["id"])
    [event] = [json.loads(r["payload"]) for r in rows]
    assert event["type"] == "case.reported" and event["payload"]["source"] == "proactive"
    assert event["actor"]["subject"] == "taoyuan"

    async def published():
        records = await read_topic(bootstrap, Topics.INTAKE)
        return [json.loads(r.value) for r in records if r.key == case["id"].encode()]

    [on_broker] = await eventually(published, message="the proactive case reached the broker")
    assert on_broker["payload"]["source"] == "proactive"

    # listed as accepted, not proposed again; the proactive case itself is no evidence
    [listed] = await hotspots(client)
    assert listed["id"] == hotspot_id and listed["state"] == "accepted"
    assert listed["decision"]["decided_by_name"] == "桃园社区书记"
    assert await hotspots(client, state="proposed") == []
    listed_cases = await client.get("/cases", params={"source": "proactive"}, headers=COMMUNITY)
    assert [c["id"] for c in listed_cases.json()] == [case["id"]]
    # the proactive case runs the normal loop
    whistled = await client.post(f"/cases/{case['id']}/whistle", json={}, headers=COMMUNITY)
    assert whistled.status_code == 200 and whistled.json()["status"] == "whistled"


async def test_concurrent_accepts_make_one_case(intake):
    client, dsn, _ = intake
    for w in (0, 1, 2):
        await seed(client, dsn, w)
    hotspot_id = expected_id()
    answers = await asyncio.gather(
        *[
            client.post(f"/hotspots/{hotspot_id}/accept", headers=who)
            for who in (COMMUNITY, COMMUNITY, STREET, COMMUNITY, STREET)
        ]
    )
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 201]
    assert len({r.json()["case"]["id"] for r in answers}) == 1
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 4
    assert await fetchval(dsn, "SELECT count(*) FROM hotspot_decisions") == 1
    proactive = "SELECT count(*) FROM outbox WHERE payload::jsonb #>> '{payload,source}' = $1"
    assert await fetchval(dsn, proactive, "proactive") == 1


async def test_dismiss_with_a_reason_sets_the_hotspot_aside(intake):
    client, dsn, _ = intake
    for w in (0, 1, 2):
        await seed(client, dsn, w)
    hotspot_id = expected_id()
    for bad in ({"reason": "bored"}, {}, {"reason": "seasonal", "surprise": 1}):
        resp = await client.post(f"/hotspots/{hotspot_id}/dismiss", json=bad, headers=COMMUNITY)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"
    body = {"reason": "seasonal", "note": "秋季落叶，已安排保洁加密"}
    first = await client.post(f"/hotspots/{hotspot_id}/dismiss", json=body, headers=COMMUNITY)
    assert first.status_code == 201, first.text
    decision = first.json()["decision"]
    assert first.json()["state"] == "dismissed" and decision["reason_label"] == "季节性问题"
    assert decision["note"] == body["note"] and decision["case_id"] is None
    again = await client.post(f"/hotspots/{hotspot_id}/dismiss", json=body, headers=STREET)
    assert again.status_code == 200 and again.json()["decision"] == decision
    before = await snapshot(dsn)
    accept = await client.post(f"/hotspots/{hotspot_id}/accept", headers=COMMUNITY)
    assert accept.status_code == 409 and accept.json()["error"]["code"] == "hotspot_decided"
    assert await snapshot(dsn) == before
    [listed] = await hotspots(client)
    assert listed["state"] == "dismissed" and listed["state_label"] == "已忽略"
    assert await hotspots(client, state="proposed") == []


async def test_new_cases_after_a_decision_make_a_new_hotspot(intake):
    client, dsn, _ = intake
    for w in (1, 2, 3):
        await seed(client, dsn, w)
    old_id = expected_id()
    accepted = await client.post(f"/hotspots/{old_id}/accept", headers=COMMUNITY)
    assert accepted.status_code == 201
    decided_at = datetime.fromisoformat(accepted.json()["decision"]["decided_at"])
    stale = await client.post(f"/hotspots/{expected_id(weeks=6)}/accept", headers=COMMUNITY)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "hotspot_superseded"
    for _ in range(3):  # it came back: three new reports after the proactive case
        await client.post("/cases", json=report(), headers=COMMUNITY)
    proposed = await hotspots(client, state="proposed")
    assert [s["case_count"] for s in proposed] == [3]
    new_id = proposed[0]["id"]
    assert new_id == f"{GRID}.E0101.{decided_at.astimezone(BEIJING):%Y%m%d%H%M%S}"
    second = await client.post(f"/hotspots/{new_id}/accept", headers=COMMUNITY)
    assert second.status_code == 201
    assert second.json()["case"]["id"] != accepted.json()["case"]["id"]
    replay = await client.post(f"/hotspots/{old_id}/accept", headers=COMMUNITY)
    assert replay.status_code == 200
    assert replay.json()["case"]["id"] == accepted.json()["case"]["id"]


@pytest.mark.parametrize(
    ("hotspot", "headers", "status", "code"),
    [
        ("nonsense", COMMUNITY, 404, "hotspot_not_found"),
        ("YA0101-99.E0101.{start}", COMMUNITY, 404, "hotspot_not_found"),  # no such grid
        ("YA0101-01.E0105.{start}", COMMUNITY, 404, "hotspot_not_found"),  # too few cases
        ("YA0101-01.E0101.20200106000000", COMMUNITY, 404, "hotspot_not_found"),  # expired
        ("YA0101-01.E0101.{start}", OTHER_COMMUNITY, 403, "out_of_scope"),
        ("YA0101-01.E0101.{start}", SUPERVISOR, 403, "role_not_allowed"),
        ("YA0101-01.E0101.{start}", GRID_WORKER, 403, "role_not_allowed"),
    ],
)
async def test_bad_accepts_and_dismissals_change_nothing(intake, hotspot, headers, status, code):
    client, dsn, _ = intake
    for w in (0, 1, 2):
        await seed(client, dsn, w)
    await seed(client, dsn, 0, report("E0105"))
    hotspot_id = hotspot.format(start=expected_id().rsplit(".", 1)[1])
    before = await snapshot(dsn)
    for action, kwargs in (("accept", {}), ("dismiss", {"json": {"reason": "other"}})):
        resp = await client.post(f"/hotspots/{hotspot_id}/{action}", headers=headers, **kwargs)
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert error["code"] == code and error["message"]
    assert await snapshot(dsn) == before
    en = await client.post(
        f"/hotspots/{hotspot_id}/accept", headers={**headers, "Accept-Language": "en"}
    )
    assert en.json()["error"]["message"].isascii()
