"""The supervisors' boards (超时 / 临期督办) on real PostgreSQL: which clocks are on them and in
what order, paused clocks, filters and each reader's part. First the handlers, driven by events
and an injected clock, like test_tracking_sla; then the boards over HTTP, on the real broker.

The demo calendar and policy are described in tracking_fixtures; the urgent ladder is
community +0 / street +30 min / district +120 min.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.tracking import handlers
from services.tracking.domain.board import Board
from services.tracking.repository.boards import BoardFilter
from shared.auth import Forbidden, Principal, Role
from shared.contract import (
    CasePauseDecided,
    CaseProgressed,
    CaseRejected,
    CaseResumed,
    CaseSignedFor,
    PauseKind,
    Priority,
)
from tests.component import tracking_fixtures
from tests.component.tracking_fixtures import (
    CG,
    COMMAND,
    DISTRICT,
    EN,
    HERE,
    LIFT,
    MON,
    TAOYUAN,
    WANGFANG,
    at,
    closed,
    dispatched,
    drain,
    error,
    items,
    record,
    record_now,
    step,
)
from tests.helpers import as_user, eventually

pool = tracking_fixtures.pool  # a migrated, seeded tracking database per test
service = tracking_fixtures.service  # tracking served on the broker, one for the module

# 市容环境/楼道杂物, minor, 迎泽街道's second community (YA/YA01/YA0102)
STAIRS = {
    "case_no": "YA-M",
    "area_path": "YA/YA01/YA0102/YA0102-01",
    "category": "E0103",
    "priority": Priority.MINOR,
}


async def fire(pool, now):
    async with pool.acquire() as conn:
        while (await handlers.fire_due_timers(conn, now=now, limit=100)).claimed:
            pass


async def seen(pool, now, which=Board.OVERDUE, who=DISTRICT, **query):
    """(case_no, clock) of each item, in board order."""
    return [(i.case_no, i.clock.value) for i in await items(pool, now, which, who, **query)]


# --- the overdue board ---------------------------------------------------------------------------


async def test_every_running_clock_past_its_deadline_is_on_the_board_most_late_first(pool):
    here, here_a = uuid.uuid4(), uuid.uuid4()
    lift, lift_a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(here, here_a, MON), dispatched(lift, lift_a, MON, LIFT, "dt"))
    assert await seen(pool, at(0, 9, 10)) == []
    assert await seen(pool, at(0, 9, 20)) == [("YA-L", "sign_for")]
    # every kind of clock, not only sign-for: on-site and resolution too
    assert await seen(pool, at(0, 11, 30)) == [
        ("YA-L", "sign_for"),
        ("YA-L", "on_site"),
        ("YA-A", "sign_for"),
    ]
    assert await seen(pool, at(0, 21, 30)) == [
        ("YA-L", "sign_for"),
        ("YA-L", "on_site"),
        ("YA-A", "sign_for"),
        ("YA-L", "resolve"),
    ]

    # before the scheduler got to them: late, but no alert or escalation yet
    [first, *_] = await items(pool, at(0, 11, 30))
    assert (first.overdue_alerted_at, first.escalation_level, first.urge_count) == (None, None, 0)
    assert first.late_by(at(0, 11, 30)) == timedelta(hours=2, minutes=15)
    # the escalation level each clock reached, as the ladder fired
    await fire(pool, at(0, 11, 30))
    levels = {
        (i.case_no, i.clock.value): (i.escalation_level, i.escalation_step)
        for i in await items(pool, at(0, 11, 30))
    }
    assert levels == {
        ("YA-L", "sign_for"): ("district", 2),  # 09:15 +0, +30, +120 min
        ("YA-L", "on_site"): ("district", 2),  # 09:30 … 11:30
        ("YA-A", "sign_for"): ("community", 0),
    }  # 11:00 +0
    [lift_sign_for, *_] = await items(pool, at(0, 11, 30))
    assert lift_sign_for.overdue_alerted_at == at(0, 11, 30)  # when the scheduler fired it

    # doing the step takes a clock off the board; closing the case takes them all
    await record(
        pool,
        step(CaseSignedFor, here, here_a, at(0, 11, 40)),
        step(CaseProgressed, lift, lift_a, at(0, 11, 41), LIFT, "dt", note="已到现场"),
    )
    assert await seen(pool, at(0, 11, 45)) == [("YA-L", "sign_for")]
    await record(pool, closed(lift, at(0, 11, 50), LIFT))
    assert await seen(pool, at(3, 12)) == [("YA-A", "resolve")]  # Thu 09:00 passed
    await record(pool, step(CaseRejected, here, here_a, at(3, 12, 5), reason="不归我管"))
    assert await seen(pool, at(3, 13)) == []


async def test_the_near_overdue_board_shows_warned_clocks_least_time_left_first(pool):
    cases = {}
    for no, minutes in (("YA-1", 0), ("YA-2", 10), ("YA-3", 5)):
        case, assignment = uuid.uuid4(), uuid.uuid4()
        cases[no] = (case, assignment)
        await record(
            pool,
            dispatched(case, assignment, MON + timedelta(minutes=minutes), {**HERE, "case_no": no}),
        )
    # sign-for due 11:00, 11:10, 11:05; warned at 80 %: 10:36, 10:46, 10:42
    assert await seen(pool, at(0, 10, 35), Board.NEAR_OVERDUE) == []
    assert await seen(pool, at(0, 10, 40), Board.NEAR_OVERDUE) == [("YA-1", "sign_for")]
    near = await items(pool, at(0, 10, 50), Board.NEAR_OVERDUE)
    assert [(i.case_no, i.clock.value) for i in near] == [
        ("YA-1", "sign_for"),
        ("YA-3", "sign_for"),
        ("YA-2", "sign_for"),
    ]
    assert [i.left(at(0, 10, 50)) for i in near] == [
        timedelta(minutes=10),
        timedelta(minutes=15),
        timedelta(minutes=20),
    ]
    # once due it moves to the overdue board; signed for, it leaves both
    assert await seen(pool, at(0, 11, 2), Board.NEAR_OVERDUE) == [
        ("YA-3", "sign_for"),
        ("YA-2", "sign_for"),
    ]
    assert await seen(pool, at(0, 11, 2)) == [("YA-1", "sign_for")]
    case, assignment = cases["YA-3"]
    await record(
        pool, step(CaseSignedFor, case, assignment, at(0, 11, 3), {**HERE, "case_no": "YA-3"})
    )
    assert await seen(pool, at(0, 11, 4), Board.NEAR_OVERDUE) == [("YA-2", "sign_for")]


async def test_a_paused_clock_leaves_the_boards_and_comes_back_when_resumed(pool):
    case, assignment, request = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = await handlers.feed_start(pool)
    await record(
        pool, dispatched(case, assignment, MON), step(CaseSignedFor, case, assignment, at(0, 9, 30))
    )
    # resolution due Thursday 09:00, warned Wednesday 12:00
    assert await seen(pool, at(2, 13), Board.NEAR_OVERDUE) == [("YA-A", "resolve")]
    await record(
        pool,
        step(
            CasePauseDecided,
            case,
            assignment,
            at(2, 13),
            request_id=request,
            kind=PauseKind.HANG,
            reason="需列入改造计划",
            approved=True,
        ),
    )
    for which in Board:  # standing still (挂账): neither close nor late, however long
        assert await seen(pool, at(2, 14), which) == []
        assert await seen(pool, at(6, 12), which) == []
    await record(
        pool, step(CaseResumed, case, assignment, at(7, 9), request_id=request, note="资金已落实")
    )
    [back] = await items(pool, at(7, 9, 30), Board.NEAR_OVERDUE)
    assert back.clock.value == "resolve" and back.due_at > at(7, 9, 30)
    got, _ = await drain(pool, BoardFilter(None), start)
    resolve = [change for change, _, clock in got if clock == "resolve"]
    assert resolve[0] == "started" and "paused" in resolve and "resumed" in resolve


@pytest.fixture
async def three_cases(pool):
    """On Wednesday 09:00: the lift case's three clocks, HERE's sign-for and STAIRS' sign-for
    are late (resolution clocks of HERE and STAIRS are not)."""
    for facts, department in ((HERE, "cg"), (LIFT, "dt"), (STAIRS, "zj")):
        await record(pool, dispatched(uuid.uuid4(), uuid.uuid4(), MON, facts, department))
    return at(2, 9)


async def test_every_filter_narrows_the_board(pool, three_cases):
    now = three_cases
    everything = await seen(pool, now)
    assert everything == [
        ("YA-L", "sign_for"),
        ("YA-L", "on_site"),
        ("YA-A", "sign_for"),
        ("YA-L", "resolve"),
        ("YA-M", "sign_for"),
    ]
    # equally late: the most urgent first (urgent < normal < minor), at one deadline
    cases = {
        # area subtree, by whole path segments
        (("area", "YA/YA01"),): [("YA-A", "sign_for"), ("YA-M", "sign_for")],
        (("area", "YA/YA01/YA0101"),): [("YA-A", "sign_for")],
        (("area", "YA/YA0"),): [],
        (("area", "YA/YA02/YA0201/YA0201-02"),): [
            ("YA-L", "sign_for"),
            ("YA-L", "on_site"),
            ("YA-L", "resolve"),
        ],
        (("department_id", "zj"),): [("YA-M", "sign_for")],
        (("department_id", "nobody"),): [],
        # a 大类 covers its 小类
        (("category", "E01"),): [("YA-A", "sign_for"), ("YA-M", "sign_for")],
        (("category", "E0101"),): [("YA-A", "sign_for")],
        (("category", "C05"),): [("YA-L", "sign_for"), ("YA-L", "on_site"), ("YA-L", "resolve")],
        (("category", "E02"),): [],
        (("priority", "minor"),): [("YA-M", "sign_for")],
        (("priority", "normal"),): [("YA-A", "sign_for")],
        (("clock", "on_site"),): [("YA-L", "on_site")],
        (("clock", "resolve"),): [("YA-L", "resolve")],
        (("clock", "sign_for"),): [
            ("YA-L", "sign_for"),
            ("YA-A", "sign_for"),
            ("YA-M", "sign_for"),
        ],
        (
            ("area", "YA/YA01"),
            ("clock", "sign_for"),
            ("priority", "normal"),
            ("category", "E01"),
            ("department_id", "cg"),
        ): [("YA-A", "sign_for")],
        (("area", "YA/YA01"), ("priority", "urgent")): [],
    }
    for query, expected in cases.items():
        assert await seen(pool, now, **dict(query)) == expected, query
    # pages agree with the whole board
    pages = [await items(pool, now, limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [(i.case_no, i.clock.value) for page in pages for i in page] == everything
    assert [len(p) for p in pages] == [2, 2, 1, 0]


async def test_each_reader_sees_only_their_part_and_a_filter_outside_it_is_refused(
    pool, three_cases
):
    now = three_cases
    community = Principal("taoyuan", "桃园社区", Role.COMMUNITY, "YA/YA01/YA0101")
    street = Principal("yingze", "迎泽街道", Role.STREET, "YA/YA01")
    supervisor = Principal("sup-ya02", "督办", Role.SUPERVISOR, "YA/YA02")
    cg = Principal("cg-duty", "城管值班", Role.DEPARTMENT, "YA", department_id="cg")
    for who, expected in (
        (community, {"YA-A"}),
        (street, {"YA-A", "YA-M"}),
        (supervisor, {"YA-L"}),
        (cg, {"YA-A"}),
        (DISTRICT, {"YA-A", "YA-M", "YA-L"}),
    ):
        for which in Board:
            assert {no for no, _ in await seen(pool, at(2, 9), which, who)} <= expected
        assert {no for no, _ in await seen(pool, now, who=who)} == expected, who.subject
    assert await seen(pool, now, who=street, area="YA/YA01/YA0102") == [("YA-M", "sign_for")]
    refused = {
        "area outside": (community, {"area": "YA/YA02"}, "out_of_scope"),
        "area above": (community, {"area": "YA/YA01"}, "out_of_scope"),
        "string prefix": (street, {"area": "YA/YA0"}, "out_of_scope"),
        "another department": (cg, {"department_id": "zj"}, "not_your_department"),
    }
    for why, (who, query, code) in refused.items():
        for which in Board:
            with pytest.raises(Forbidden) as err:
                await seen(pool, now, which, who, **query)
            assert err.value.code == code, why


# --- the boards over HTTP ------------------------------------------------------------------------


async def test_bad_queries_are_422_and_filters_outside_the_scope_are_403(service):
    client = service.client
    for path in ("/overdue", "/near-overdue", "/boards/stream"):
        err = error(await client.get(path, params={"colour": "red"}, headers=COMMAND), 422)
        assert err["code"] == "unknown_parameter", path
        assert "未知的查询参数" in err["message"] and "colour" in err["message"]
        en = error(await client.get(path, params={"colour": "red"}, headers={**COMMAND, **EN}), 422)
        assert en["message"].startswith("unknown query parameter(s): colour")
        bad = {"clock": "lunch", "priority": "asap", "category": "e01", "area": "/"}
        for name, value in bad.items():
            err = error(await client.get(path, params={name: value}, headers=COMMAND), 422)
            assert err["code"] in ("validation_error", "invalid_category", "invalid_area"), name
            assert name in err["message"] or "分类" in err["message"] or "辖区" in err["message"]
        refused = {
            "area outside": (TAOYUAN, {"area": "YA/YA02"}, "out_of_scope"),
            "another department": (CG, {"department_id": "zj"}, "not_your_department"),
            "grid worker": (WANGFANG, {}, "role_not_allowed"),
        }
        for why, (who, query, code) in refused.items():
            assert error(await client.get(path, params=query, headers=who), 403)["code"] == code, (
                path,
                why,
            )
    for path in ("/overdue", "/near-overdue"):
        for query in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"last_event_id": "1-1"}):
            assert error(await client.get(path, params=query, headers=COMMAND), 422), query
    for query, headers in (
        ({"last_event_id": "yesterday"}, {}),
        ({}, {"Last-Event-ID": "1-x"}),
        ({"follow": "maybe"}, {}),
        ({"limit": 5}, {}),
    ):
        resp = await client.get("/boards/stream", params=query, headers={**COMMAND, **headers})
        assert error(resp, 422)["code"] in (
            "invalid_last_event_id",
            "validation_error",
            "unknown_parameter",
        ), query
    # well formed but never sent: beyond the feed's horizon (e.g. from a rebuilt database) —
    # the stream starts from now, as without an id, instead of staying silent
    for query, headers in (
        ({"last_event_id": "999999999999-1"}, {}),
        ({}, {"Last-Event-ID": "999999999999-1"}),
    ):
        resp = await client.get(
            "/boards/stream", params={**query, "follow": "false"}, headers={**COMMAND, **headers}
        )
        assert resp.status_code == 200, resp.text
        ready = next(
            json.loads(line[len("data: ") :])
            for line in resp.text.splitlines()
            if line.startswith("data: ")
        )
        txid, _ = ready["position"].split("-")
        assert int(txid) < 999999999999, ready


async def test_the_boards_over_http_show_late_and_warned_clocks(service):
    client, department = service.client, f"dt-{uuid.uuid4().hex[:6]}"
    late, late_a = uuid.uuid4(), uuid.uuid4()
    warned, warned_a = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    await record_now(
        service,
        dispatched(late, late_a, MON, LIFT, department),
        # urgent clocks run in calendar time: sign for in 15 minutes, warned at 12
        dispatched(
            warned, warned_a, now - timedelta(minutes=13), {**LIFT, "case_no": "YA-W"}, department
        ),
    )

    near = (
        await client.get(
            "/near-overdue",
            params={"department_id": department, "clock": "sign_for"},
            headers=COMMAND,
        )
    ).json()["items"]
    assert [(i["case_no"], i["clock"]) for i in near] == [("YA-W", "sign_for")]
    assert 0 < near[0]["seconds_left"] <= 120 and near[0]["label"].startswith("剩余")
    assert near[0]["overdue_seconds"] == 0

    async def overdue():
        resp = await client.get("/overdue", params={"department_id": department}, headers=COMMAND)
        body = [i for i in resp.json()["items"] if i["case_no"] == "YA-L"]
        # the scheduler catches up with the old case's ladder: district reached
        return len(body) == 3 and all(i["escalation_level"] == "district" for i in body) and body

    items = await eventually(overdue, timeout=45, message="the old case's clocks escalated")
    assert [(i["case_no"], i["clock"], i["clock_label"]) for i in items] == [
        ("YA-L", "sign_for", "签收"),
        ("YA-L", "on_site", "到场"),
        ("YA-L", "resolve", "办结"),
    ]
    assert all(i["label"].startswith("超时 ") and i["overdue_seconds"] > 0 for i in items)
    assert {i["escalation_level_label"] for i in items} == {"区"}
    assert all(i["overdue_alerted_at"] and i["urge_count"] == 0 for i in items)

    # the same filters, narrowed by scope: 锦绣社区's lift case is not 桃园's business
    assert (
        error(
            await client.get("/near-overdue", params={"area": LIFT["area_path"]}, headers=TAOYUAN),
            403,
        )["code"]
        == "out_of_scope"
    )
    jinxiu = await client.get(
        "/overdue",
        params={"category": "C05", "priority": "urgent", "department_id": department},
        headers=as_user("jinxiu"),
    )
    assert [i["case_no"] for i in jinxiu.json()["items"]][:3] == ["YA-L"] * 3
