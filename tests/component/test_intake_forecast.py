"""Intake keeps tracking's resolution forecast (预计办结时间) from the real broker: the case and
Open311's ``expected_datetime`` show it — the forecast, not the sign-for deadline; an older
forecast arriving late changes nothing; once resolved, the resolution."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.contract import CaseResolutionForecast, ForecastBasis, Priority, new_event
from tests.helpers import as_user, eventually, fetchval, publish_event, token
from tests.intake_app import running_intake

COMMUNITY = as_user("taoyuan")  # 桃园社区: YA/YA01/YA0101
KEY = token("community", "YA/YA01/YA0101", subject="taoyuan", name="桃园社区书记")
REPORT = {
    "grid_code": "YA0101-01",
    "category": "E0101",
    "description": "楼下空地乱堆建筑垃圾",
    "priority": "normal",
    "location": {"lat": 37.7, "lon": 112.7, "address": "桃园小区3号楼"},
    "reporter": "网格员李明",
}


@pytest.fixture(scope="module")
async def intake(pg_server, kafka_server):
    async with running_intake(pg_server, kafka_server) as (client, dsn, _settings):
        yield client, dsn, kafka_server.bootstrap


def forecast(case: dict, expected: datetime, basis: ForecastBasis, made: datetime):
    return new_event(
        CaseResolutionForecast(
            case_no=case["case_no"],
            area_path=case["area_path"],
            category="E0101",
            priority=Priority.NORMAL,
            expected_at=expected,
            earliest=expected - timedelta(hours=5),
            latest=expected + timedelta(hours=7),
            basis=basis,
            deadline_at=expected - timedelta(hours=2),
            sample_size=12,
            breach_likely=True,
            breach_probability=0.75,
            reason_zh="按该部门近30天同类案件办理时长（中位数3.2个工作日），预计超期约1个工作日",
            reason_en="by this department's similar cases",
        ),
        case_id=uuid.UUID(case["id"]),
        producer="tracking",
        occurred_at=made,
    )


async def test_open311_expected_datetime_is_the_resolution_forecast(intake):
    client, dsn, bootstrap = intake
    case = (await client.post("/cases", json=REPORT, headers=COMMUNITY)).json()
    one = f"/open311/v2/requests/{case['case_no']}.json"
    [request] = (await client.get(one, params={"api_key": KEY})).json()
    assert request["expected_datetime"] is None  # nothing forecast yet

    now = datetime.now(UTC).replace(microsecond=0)
    expected = now + timedelta(days=3)
    await publish_event(bootstrap, forecast(case, expected, ForecastBasis.HISTORY, now))

    async def shown() -> bool:
        [r] = (await client.get(one, params={"api_key": KEY})).json()
        at = r["expected_datetime"]
        return at is not None and datetime.fromisoformat(at) == expected

    await eventually(shown, timeout=45, message="forecast shown")
    got = (await client.get(f"/cases/{case['id']}", headers=COMMUNITY)).json()
    assert datetime.fromisoformat(got["expected_resolution_at"]) == expected
    assert datetime.fromisoformat(got["expected_earliest"]) == expected - timedelta(hours=5)
    assert datetime.fromisoformat(got["expected_latest"]) == expected + timedelta(hours=7)
    assert got["expected_basis"] == "history"

    # an older forecast heard late changes nothing; a newer one wins
    await publish_event(
        bootstrap,
        forecast(case, now + timedelta(days=9), ForecastBasis.DEADLINE, now - timedelta(hours=1)),
    )
    resolved = now - timedelta(minutes=5)
    await publish_event(
        bootstrap, forecast(case, resolved, ForecastBasis.RESOLVED, now + timedelta(seconds=1))
    )

    async def resolution_shown() -> bool:
        [r] = (await client.get(one, params={"api_key": KEY})).json()
        at = r["expected_datetime"]
        return at is not None and datetime.fromisoformat(at) == resolved

    await eventually(resolution_shown, timeout=45, message="resolution shown")
    basis = await fetchval(
        dsn, "SELECT expected_basis FROM cases WHERE case_no = $1", case["case_no"]
    )
    assert basis == "resolved"

    # The older one above came before the newer (same case, same partition), so the newer
    # would have won anyway: an older forecast heard after the resolution, once handled,
    # must leave it as it is.
    stale = forecast(case, now + timedelta(days=9), ForecastBasis.DEADLINE, now)
    await publish_event(bootstrap, stale)

    async def handled() -> bool:
        return bool(
            await fetchval(dsn, "SELECT count(*) FROM inbox WHERE event_id = $1", stale.event_id)
        )

    await eventually(handled, timeout=45, message="the stale forecast handled")
    assert await resolution_shown()
    basis = await fetchval(
        dsn, "SELECT expected_basis FROM cases WHERE case_no = $1", case["case_no"]
    )
    assert basis == "resolved"
