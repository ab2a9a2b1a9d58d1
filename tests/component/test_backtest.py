"""The SLA backtest (POST /sla/backtest, python -m services.tracking backtest) on real
PostgreSQL: tracking's handlers record a few March 2026 cases (demo calendar and policy v1:
E0101 normal — sign-for 2 working hours, warning at 80 %, resolution 3 working days), then
policies are backtested on them. Nothing in tracking's tables changes (checksums).

| case | dispatched | signed for | resolved |
| - | - | - | - |
| 1 (cg) | Mon 09:00 | 10:00 (due 11:00, warn 10:36: neither) | Tue 09:00 (in time) |
| 2 (cg) | Tue 09:00 | 12:00 (late: due 11:00) | never: late now |
| 3 (zj, YA02) | Wed 09:00 | 09:20 | Wed 15:00 |

Draft "tight" (calendar time): sign-for 30 min, warning at half → 1 and 2 late, 3 warned only.
Draft "loose": sign-for 4 h, warning at half (2 h) → none late, 2 warned (3 h)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from services.tracking import handlers
from services.tracking.config import Settings
from services.tracking.main import create_app
from shared.auth import Role
from shared.clock import utcnow
from shared.contract import CaseResolved, CaseSignedFor
from tests.component import tracking_fixtures
from tests.component.tracking_fixtures import HERE, at, dispatched, record, step
from tests.conftest import ROOT
from tests.helpers import bearer

pool = tracking_fixtures.pool
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
YA02 = {**HERE, "area_path": "YA/YA02/YA0201/YA0201-01", "case_no": "YA-B"}


def draft(sign_for: str) -> dict:
    policy = {
        "sign_for": sign_for,
        "resolve": "3 working_days",
        "warning_ratio": 0.5,
        "ladder": {"steps": [["community", "0 minutes"], ["street", "60 minutes"]]},
    }
    return {
        "version": 50,
        "effective_from": "2026-01-01T00:00:00+08:00",
        "defaults": {p: policy for p in ("urgent", "normal", "minor")},
    }


@pytest.fixture
async def client(pool):
    one, two, three = (uuid.uuid4() for _ in range(3))
    a, b, c = (uuid.uuid4() for _ in range(3))
    await record(
        pool,
        dispatched(one, a, at(0, 9)),
        step(CaseSignedFor, one, a, at(0, 10)),
        step(CaseResolved, one, a, at(1, 9), result="已清理"),
        dispatched(two, b, at(1, 9)),
        step(CaseSignedFor, two, b, at(1, 12)),
        dispatched(three, c, at(2, 9), facts=YA02, department="zj"),
        step(CaseSignedFor, three, c, at(2, 9, 20), facts=YA02, department="zj"),
        step(CaseResolved, three, c, at(2, 15), facts=YA02, department="zj", result="已修复"),
    )
    async with pool.acquire() as conn:  # the scheduler's work: the alerts fire, long due
        while (await handlers.fire_due_timers(conn, now=utcnow(), limit=500)).claimed:
            pass
    dsn = await pool.fetchval("SELECT current_database()")
    app = create_app(Settings(environment="test", database_url=f"postgresql:///{dsn}"))
    app.state.runtime.pool = pool  # the routes' pool; no broker needed (no lifespan)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


DISTRICT = bearer(Role.DISTRICT)


async def backtest(client, **body) -> dict:
    resp = await client.post("/sla/backtest", json={**MARCH, **body}, headers=DISTRICT)
    assert resp.status_code == 200, resp.text
    return resp.json()


def clock(out: dict, name: str) -> dict:
    return next(c for c in out["clocks"] if c["clock"] == name)


def late_warned(tally: dict) -> tuple[int, int]:
    return tally["late"], tally["warned"]


async def checksums(pool) -> dict[str, str]:
    tables = [
        r["tablename"]
        for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ]
    return {
        t: await pool.fetchval(
            f"SELECT count(*) || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))"
            f' FROM "{t}" x'
        )
        for t in tables
    }


async def test_the_live_version_reproduces_the_live_figures(client, pool):
    before = await checksums(pool)
    out = await backtest(client, version=1)
    assert out["version"] == 1 and out["draft"] is False and out["assignments"] == 3
    sign_for = clock(out, "sign_for")
    assert late_warned(sign_for["live"]) == (1, 1)  # case 2: late (so warned too)
    assert late_warned(sign_for["backtest"]) == late_warned(sign_for["live"])
    # live escalations are the timers that fired: recorded after the fact, case 2's had
    # become moot (signed for meanwhile); the backtest counts what the ladder would have done
    assert sign_for["live"]["escalated"]["community"] == 0
    assert sign_for["backtest"]["escalated"]["community"] == 1
    resolve = clock(out, "resolve")
    assert resolve["backtest"]["late"] == resolve["live"]["late"] == 1  # case 2, never resolved
    assert {d["department_id"]: d["assignments"] for d in out["departments"]} == {"cg": 2, "zj": 1}
    assert [(w["week"], w["assignments"]) for w in out["weeks"]] == [("2026-03-02", 3)]
    assert await checksums(pool) == before  # nothing written


async def test_a_tighter_draft_makes_more_late_a_looser_one_fewer(client, pool):
    before = await checksums(pool)
    tight = clock(await backtest(client, policy=draft("30 minutes")), "sign_for")
    assert late_warned(tight["backtest"]) == (2, 3)
    assert tight["backtest"]["escalated"]["community"] == 2  # at the deadline
    # street an hour after the deadline (+1 h 30): case 2 (signed +3 h), not case 1 (+1 h)
    assert tight["backtest"]["escalated"]["street"] == 1
    loose = clock(await backtest(client, policy=draft("240 minutes")), "sign_for")
    assert late_warned(loose["backtest"]) == (0, 1)
    assert loose["live"] == tight["live"]  # the live side does not depend on the draft
    assert await checksums(pool) == before


async def test_area_and_category_narrow_the_assignments(client):
    assert (await backtest(client, version=1, area="YA/YA02"))["assignments"] == 1
    assert (await backtest(client, version=1, category="E01"))["assignments"] == 3
    assert (await backtest(client, version=1, category="C05"))["assignments"] == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"version": 1, "from": "2026-03-31", "to": "2026-03-01"}, "invalid_policy"),
        ({"version": 1, "from": "2024-01-01", "to": "2026-03-01"}, "invalid_policy"),
        ({"version": 999, **MARCH}, "policy_version_not_found"),
        ({"policy": {**draft("30 minutes"), "defaults": {}}, **MARCH}, "invalid_policy"),
        ({"policy": draft("soon"), **MARCH}, "invalid_policy"),
        ({"version": 1, "policy": draft("30 minutes"), **MARCH}, "invalid_backtest"),
        ({**MARCH}, "invalid_backtest"),
        ({"version": 1, "area": "not a path", **MARCH}, "invalid_area"),
    ],
)
async def test_bad_input_is_refused_in_both_languages(client, pool, body, code):
    before = await checksums(pool)
    resp = await client.post("/sla/backtest", json=body, headers=DISTRICT)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == code, error
    en = await client.post(
        "/sla/backtest", json=body, headers={**DISTRICT, "Accept-Language": "en"}
    )
    assert en.json()["error"]["message"] != error["message"]
    assert await checksums(pool) == before


async def test_who_may_backtest(client):
    body = {"version": 1, **MARCH}
    for who in (bearer(Role.DEPARTMENT, department_id="cg"), bearer(Role.ADMIN)):
        resp = await client.post("/sla/backtest", json=body, headers=who)
        assert resp.status_code == 403, resp.text
    street = bearer(Role.STREET, area="YA/YA02")
    resp = await client.post("/sla/backtest", json={**body, "area": "YA/YA01"}, headers=street)
    assert resp.status_code == 403
    resp = await client.post("/sla/backtest", json=body, headers=street)
    assert resp.status_code == 200 and resp.json()["assignments"] == 1  # its own subtree


async def test_the_command_prints_the_table(client, pool, pg_server):
    name = await pool.fetchval("SELECT current_database()")
    dsn = pg_server.dsn(name)
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "services.tracking",
            "backtest",
            "--version",
            "1",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": dsn, "ENVIRONMENT": "test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SLA policy version 1: 3 assignments" in result.stdout
    assert any(line.startswith("sign_for 签收") for line in result.stdout.splitlines())
    bad = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "services.tracking",
            "backtest",
            "--version",
            "999",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": dsn, "ENVIRONMENT": "test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "不存在" in bad.stdout and "not found" in bad.stdout
