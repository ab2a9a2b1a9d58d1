"""The resolution forecast (预计办结时间) and the predicted breach (预计超期) on real PostgreSQL:
tracking's handlers fed real events (history first: resolved assignments of two departments),
then a new case of each department — the slow one's shows on the near-overdue board as
predicted, before its warning, with the reason; the fast one's does not.

Under the demo policy a 市容环境 (E0101) normal case must be resolved in 3 working days
(warning at 80 %); a working day is 7.5 hours (08:30–12:00, 13:30–17:30). See
tracking_fixtures for the calendar; day 0 is Monday 2026-03-02, no holidays in March."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from services.tracking.domain.board import Board
from services.tracking.handlers import forecast
from shared.contract import CaseResolved, CaseSignedFor
from tests.component import tracking_fixtures
from tests.component.tracking_fixtures import HERE, at, dispatched, items, record, step

pool = tracking_fixtures.pool  # a migrated, seeded tracking database per test


async def past_cases(pool, department: str, resolved_day: int, resolved_hour: int) -> None:
    """Six resolved E0101 assignments of ``department``, dispatched Monday the week before
    and resolved on ``resolved_day`` at ``resolved_hour`` (+ i minutes)."""
    for i in range(6):
        case, a = uuid.uuid4(), uuid.uuid4()
        facts = {**HERE, "case_no": f"H-{department}-{i}"}
        start = at(7, 9)
        await record(
            pool,
            dispatched(case, a, start, facts, department),
            step(CaseSignedFor, case, a, at(7, 9, 20), facts, department),
            step(
                CaseResolved,
                case,
                a,
                at(resolved_day, resolved_hour, i),
                facts,
                department,
                result="已清理",
            ),
        )


async def new_case(pool, department: str, no: str) -> tuple[uuid.UUID, uuid.UUID]:
    case, a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(case, a, at(14, 9), {**HERE, "case_no": no}, department))
    return case, a


async def case_forecast(pool, case: uuid.UUID) -> dict:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM case_forecasts WHERE case_id = $1", case)
    assert row is not None
    return dict(row)


async def sign_for_due(pool, a: uuid.UUID) -> datetime:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT due_at FROM clocks WHERE assignment_id = $1 AND clock = 'sign_for'", a
        )


async def announced(pool, case: uuid.UUID) -> list[dict]:
    """The case.resolution_forecast payloads in tracking's outbox for the case, in order."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE type = 'case.resolution_forecast' AND key = $1"
            " ORDER BY id",
            str(case),
        )
    envelopes = [
        json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in rows
    ]
    return [e["payload"] for e in envelopes]


async def test_a_slow_departments_case_is_predicted_to_breach_before_its_warning(pool):
    # history: "slow" took ~4.7 working days (allowance 3), "fast" half a day
    await past_cases(pool, "slow", 11, 16)  # Mon 09:00 → Fri 16:00
    await past_cases(pool, "fast", 7, 14)  # Mon 09:00 → Mon 14:00
    slow, slow_a = await new_case(pool, "slow", "YA-S")
    fast, fast_a = await new_case(pool, "fast", "YA-F")

    now = at(14, 9, 30)  # half an hour after dispatch; the warning is Wednesday 12:00
    near = await items(pool, now, Board.NEAR_OVERDUE)
    assert [(i.case_no, i.clock.value) for i in near] == [("YA-S", "resolve")]
    [item] = near
    assert item.predicted(now) and item.warn_at is not None and item.warn_at > now
    assert item.warn_at == at(16, 12)  # the warning light is two days away
    assert item.breach_probability == 1.0
    assert item.breach_reason_zh is not None and item.breach_reason_en is not None
    assert item.breach_reason_zh.startswith("按该部门近30天同类案件办理时长（中位数4.7个工作日）")
    assert "预计超期约" in item.breach_reason_zh
    assert "median 4.7 working days" in item.breach_reason_en
    assert item.expected_at is not None and item.expected_at > item.due_at

    # the fast department's case is expected well within its deadline: not on the board
    fast_f = await case_forecast(pool, fast)
    assert fast_f["basis"] == "history" and not fast_f["breach_likely"]
    assert at(14, 9) < fast_f["expected_at"] < at(15, 9)
    # never in the past, never the sign-for limit (the 2-working-hour 签收 deadline)
    for case, a in ((slow, slow_a), (fast, fast_a)):
        f = await case_forecast(pool, case)
        assert f["earliest"] <= f["expected_at"] <= f["latest"]
        assert f["earliest"] >= at(14, 9)
        assert f["expected_at"] != await sign_for_due(pool, a)
    slow_f = await case_forecast(pool, slow)
    assert slow_f["basis"] == "history" and slow_f["breach_likely"]
    assert slow_f["expected_at"] > slow_f["due_at"] == at(17, 9)

    # announced once, at the dispatch
    [payload] = await announced(pool, slow)
    assert payload["basis"] == "history" and payload["breach_likely"] is True
    assert payload["reason_zh"] == item.breach_reason_zh

    # resolved: expected = the resolution, and it leaves the board
    await record(
        pool,
        step(CaseSignedFor, slow, slow_a, at(14, 10), {**HERE, "case_no": "YA-S"}, "slow"),
        step(
            CaseResolved,
            slow,
            slow_a,
            at(14, 15),
            {**HERE, "case_no": "YA-S"},
            "slow",
            result="已清理",
        ),
    )
    done = await case_forecast(pool, slow)
    assert done["basis"] == "resolved" and done["expected_at"] == at(14, 15)
    assert await items(pool, at(14, 16), Board.NEAR_OVERDUE) == []


async def test_without_history_the_deadline_and_once_overdue_a_time_ahead(pool):
    case, a = await new_case(pool, "nobody", "YA-N")
    f = await case_forecast(pool, case)
    # no history at all: the pinned resolution deadline (Thursday 09:00), never the sign-for
    assert f["basis"] == "deadline" and f["expected_at"] == at(17, 9)
    assert f["expected_at"] != await sign_for_due(pool, a)
    assert not f["breach_likely"]
    assert await items(pool, at(14, 10), Board.NEAR_OVERDUE) == []

    # the deadline passes without a resolution: the sweep forecasts a time ahead of now
    later = at(17, 14)
    assert await forecast.sweep(pool, later) == 1
    swept = await case_forecast(pool, case)
    assert swept["expected_at"] > later and swept["earliest"] >= later
    assert len(await announced(pool, case)) == 2
    assert await forecast.sweep(pool, later) == 0  # nothing stale any more


async def test_a_case_outliving_its_history_is_forecast_conditionally(pool):
    await past_cases(pool, "slow", 11, 16)
    case, _ = await new_case(pool, "slow", "YA-S")
    before = await case_forecast(pool, case)
    # Wednesday afternoon, 2.3 working days used: still shorter than every past case
    now = at(16, 15)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE case_forecasts SET expected_at = $2 WHERE case_id = $1", case, now
        )
    assert await forecast.sweep(pool, now) == 1
    after = await case_forecast(pool, case)
    assert after["basis"] == "history" and after["expected_at"] > now
    assert after["expected_at"] == before["expected_at"]  # nothing learnt since: the same
