"""Urging (督办) a case's departments, on real PostgreSQL: each urging is numbered per
assignment and shows on the board and the timeline; then over HTTP on the real broker — one
event per open assignment, once per idempotency key, never for a paused assignment.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.tracking import handlers
from shared.auth import Forbidden, Principal, Role
from shared.contract import (
    CasePauseDecided,
    CaseResolved,
    CaseResumed,
    CaseSignedFor,
    PauseKind,
    Topics,
)
from shared.errors import Conflict, NotFound
from tests.component import tracking_fixtures
from tests.component.tracking_fixtures import (
    CG,
    COMMAND,
    EN,
    MON,
    SUP_YINGZE,
    TAOYUAN,
    at,
    closed,
    dispatched,
    error,
    items,
    record,
    record_now,
    step,
)
from tests.helpers import as_user, eventually, read_topic

pool = tracking_fixtures.pool  # a migrated, seeded tracking database per test
service = tracking_fixtures.service  # tracking served on the broker, one for the module

SUPERVISOR = Principal("sup-yingze", "迎泽督办", Role.SUPERVISOR, "YA/YA01")


async def urged(pool, case):
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE type = 'case.urged' AND key = $1 ORDER BY id", str(case)
    )
    return [
        (r["payload"]["payload"]["department_id"], r["payload"]["payload"]["count"]) for r in rows
    ]


async def test_urging_numbers_each_assignment_and_shows_on_the_board(pool):
    case, lead, co = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await record(
        pool, dispatched(case, lead, MON), dispatched(case, co, MON, department="zj", role="co")
    )
    now = at(0, 11, 30)
    first = await handlers.urge_case(
        pool, case, SUPERVISOR, note="请尽快报到", department_id=None, now=now
    )
    assert [(e.payload.department_id, e.payload.count) for e in first] == [("cg", 1), ("zj", 1)]
    await handlers.urge_case(pool, case, SUPERVISOR, note="再催", department_id="cg", now=now)
    assert await urged(pool, case) == [("cg", 1), ("zj", 1), ("cg", 2)]
    board = {i.department_id: (i.urge_count, i.last_urged_at) for i in await items(pool, now)}
    assert board == {"cg": (2, now), "zj": (1, now)}
    # on the timeline too, by the supervisor who urged
    rows = await pool.fetch(
        "SELECT actor, payload FROM case_events WHERE case_id = $1"
        " AND type = 'case.urged' ORDER BY seq",
        case,
    )
    assert [(r["actor"]["subject"], r["payload"]["note"]) for r in rows] == [
        ("sup-yingze", "请尽快报到"),
        ("sup-yingze", "请尽快报到"),
        ("sup-yingze", "再催"),
    ]

    # urgings of one case count in turn, however many arrive at once
    await asyncio.gather(
        *(
            handlers.urge_case(pool, case, SUPERVISOR, note="并发", department_id="zj", now=now)
            for _ in range(5)
        )
    )
    assert sorted(c for d, c in await urged(pool, case) if d == "zj") == [1, 2, 3, 4, 5, 6]

    # the department named must be on the case and still handling it; a closed case is done
    with pytest.raises(NotFound):
        await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id="gd", now=now)
    await record(
        pool,
        step(CaseSignedFor, case, lead, at(0, 12)),
        step(CaseResolved, case, lead, at(0, 12, 5), result="已清运", case_resolved=False),
    )
    with pytest.raises(Conflict) as err:
        await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id="cg", now=now)
    assert err.value.code == "no_open_assignment"
    only_zj = await handlers.urge_case(
        pool, case, SUPERVISOR, note="x", department_id=None, now=now
    )
    assert [(e.payload.department_id, e.payload.count) for e in only_zj] == [("zj", 7)]
    await record(pool, closed(case, at(0, 13)))
    with pytest.raises(Conflict) as err:
        await handlers.urge_case(pool, case, SUPERVISOR, note="x", department_id=None, now=now)
    assert err.value.code == "case_closed"
    with pytest.raises(Forbidden):
        outside = Principal("sup-ya02", "督办", Role.SUPERVISOR, "YA/YA02")
        await handlers.urge_case(pool, case, outside, note="x", department_id=None, now=now)
    with pytest.raises(NotFound):
        await handlers.urge_case(
            pool, uuid.uuid4(), SUPERVISOR, note="x", department_id=None, now=now
        )


# --- urging over HTTP, on the real broker --------------------------------------------------------


async def test_a_retried_urging_with_its_idempotency_key_urges_once(service):
    client = service.client
    case, lead = uuid.uuid4(), uuid.uuid4()
    await record_now(service, dispatched(case, lead, MON, department="i-lead"))
    url, key = f"/cases/{case}/urge", {"Idempotency-Key": f"urge-{case}"}
    first = await client.post(url, json={"note": "请今天内报到"}, headers={**SUP_YINGZE, **key})
    assert first.status_code == 201, first.text
    again = await client.post(url, json={"note": "请今天内报到"}, headers={**SUP_YINGZE, **key})
    assert again.status_code == 200, again.text
    assert again.json() == first.json()  # the same urging, the same event, the same time
    other = await client.post(url, json={"note": "另一条督办"}, headers={**SUP_YINGZE, **key})
    assert error(other, 409)["code"] == "idempotency_key_reused"
    # another person's key is another key; without a key every call urges
    mine = await client.post(url, json={"note": "请今天内报到"}, headers={**TAOYUAN, **key})
    assert mine.status_code == 201 and mine.json()["urgings"][0]["count"] == 2
    assert (await client.post(url, json={"note": "x"}, headers=SUP_YINGZE)).json()["urgings"][0][
        "count"
    ] == 3
    count = await service.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'case.urged' AND key = $1", str(case)
    )
    assert count == 3


async def test_urging_over_http_publishes_one_event_per_open_assignment_and_counts(service):
    client = service.client
    case, lead, co = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await record_now(
        service,
        dispatched(case, lead, MON, department="u-lead"),
        dispatched(case, co, MON, department="u-co", role="co"),
    )
    url = f"/cases/{case}/urge"

    first = await client.post(url, json={"note": "请今天内报到"}, headers=SUP_YINGZE)
    assert first.status_code == 201, first.text
    assert [(u["department_id"], u["count"]) for u in first.json()["urgings"]] == [
        ("u-lead", 1),
        ("u-co", 1),
    ]
    again = await client.post(
        url, json={"note": "再次督办", "department_id": "u-lead"}, headers=TAOYUAN
    )  # the community over the case may urge too
    assert [(u["department_id"], u["count"]) for u in again.json()["urgings"]] == [("u-lead", 2)]
    board = (
        await client.get(
            "/overdue", params={"department_id": "u-lead", "clock": "sign_for"}, headers=COMMAND
        )
    ).json()["items"]
    assert [(i["urge_count"], i["case_id"]) for i in board] == [(2, str(case))]

    refused = {
        "empty note": ({"note": ""}, SUP_YINGZE, 422, "validation_error"),
        "unknown field": ({"note": "x", "level": "district"}, SUP_YINGZE, 422, "validation_error"),
        "not on the case": (
            {"note": "x", "department_id": "gd"},
            SUP_YINGZE,
            404,
            "department_not_on_case",
        ),
        "department": ({"note": "x"}, CG, 403, "role_not_allowed"),
        "outside": ({"note": "x"}, as_user("jinxiu"), 403, "out_of_scope"),
    }
    for why, (body, who, status, code) in refused.items():
        assert error(await client.post(url, json=body, headers=who), status)["code"] == code, why
    assert (
        error(
            await client.post(
                f"/cases/{uuid.uuid4()}/urge", json={"note": "x"}, headers=SUP_YINGZE
            ),
            404,
        )["code"]
        == "case_not_found"
    )
    await record_now(
        service,
        step(CaseSignedFor, case, lead, MON + timedelta(hours=1), department="u-lead"),
        step(
            CaseResolved,
            case,
            lead,
            MON + timedelta(hours=2),
            department="u-lead",
            result="已清运",
            case_resolved=False,
        ),
    )
    done = await client.post(url, json={"note": "x", "department_id": "u-lead"}, headers=SUP_YINGZE)
    assert error(done, 409)["code"] == "no_open_assignment"
    assert "没有正在办理的派单" in done.json()["error"]["message"]
    await record_now(service, closed(case, MON + timedelta(hours=3)))
    shut = await client.post(url, json={"note": "x"}, headers={**SUP_YINGZE, **EN})
    assert error(shut, 409)["code"] == "case_closed"
    assert "closed" in shut.json()["error"]["message"]

    # exactly the three urgings on the topic, once each, as the supervisor and community did
    async def published():
        return await service.pool.fetchval(
            "SELECT count(*) = 3 AND bool_and(sent_at IS NOT NULL) FROM outbox"
            " WHERE type = 'case.urged' AND key = $1",
            str(case),
        )

    await eventually(published, message="the urgings published")
    records = [
        json.loads(r.value)
        for r in await read_topic(service.bootstrap, Topics.TRACKING)
        if r.key == str(case).encode()
    ]
    urgings = [r for r in records if r["type"] == "case.urged"]
    assert len({u["event_id"] for u in urgings}) == len(urgings) == 3
    assert sorted(
        (u["payload"]["department_id"], u["payload"]["count"], u["actor"]["subject"])
        for u in urgings
    ) == [("u-co", 1, "sup-yingze"), ("u-lead", 1, "sup-yingze"), ("u-lead", 2, "taoyuan")]
    timeline = (await client.get(f"/cases/{case}/timeline", headers=COMMAND)).json()["events"]
    assert [(e["label"], e["payload"]["note"]) for e in timeline if e["type"] == "case.urged"] == [
        ("督办", "请今天内报到"),
        ("督办", "请今天内报到"),
        ("督办", "再次督办"),
    ]


async def test_a_paused_assignment_is_not_urged_and_a_blank_note_changes_nothing(service):
    client = service.client
    case, lead, co, request = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # minutes ago: no timer of theirs is due yet, the scheduler leaves them alone
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    await record_now(
        service,
        dispatched(case, lead, t0, department="p-lead"),
        dispatched(case, co, t0, department="p-co", role="co"),
        step(CaseSignedFor, case, lead, t0 + timedelta(minutes=1), department="p-lead"),
        step(
            CasePauseDecided,
            case,
            lead,
            t0 + timedelta(minutes=2),
            department="p-lead",
            request_id=request,
            kind=PauseKind.HANG,
            reason="需列入改造计划",
            approved=True,
        ),
    )
    url = f"/cases/{case}/urge"
    blank = await client.post(url, json={"note": "   "}, headers=SUP_YINGZE)
    assert error(blank, 422)["code"] == "validation_error"
    # 挂账: the lead's clock stands still — naming it is a conflict, in Chinese first
    held = await client.post(
        url, json={"note": "请尽快办理", "department_id": "p-lead"}, headers=SUP_YINGZE
    )
    assert error(held, 409)["code"] == "assignment_paused"
    assert held.json()["error"]["message"].startswith("派单已批准挂账/缓办")
    held_en = await client.post(
        url, json={"note": "x", "department_id": "p-lead"}, headers={**SUP_YINGZE, **EN}
    )
    assert "paused" in error(held_en, 409)["message"]
    # the whole case: only the co-handler still running is urged
    some = await client.post(url, json={"note": "请尽快办理"}, headers=SUP_YINGZE)
    assert some.status_code == 201, some.text
    assert [(u["department_id"], u["count"]) for u in some.json()["urgings"]] == [("p-co", 1)]
    urged = await service.pool.fetch(
        "SELECT payload->>'department_id' AS d FROM case_events"
        " WHERE case_id = $1 AND type = 'case.urged'",
        case,
    )
    assert [r["d"] for r in urged] == ["p-co"]  # the blank note and the paused lead: nothing
    await record_now(
        service,
        step(
            CaseResumed,
            case,
            lead,
            t0 + timedelta(minutes=3),
            department="p-lead",
            request_id=request,
            note="资金已落实",
        ),
    )
    back = await client.post(
        url, json={"note": "请尽快办理", "department_id": "p-lead"}, headers=SUP_YINGZE
    )
    assert [(u["department_id"], u["count"]) for u in back.json()["urgings"]] == [("p-lead", 1)]
