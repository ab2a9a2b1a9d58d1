"""Who hears what, on real PostgreSQL and the real broker: the defaults (the department a
case is dispatched to, the supervisors and communities over its area) and subscriptions
decide who hears each case event, once; tracking's warnings and escalations, urgings,
requests and decisions reach who acts on them; a recipient mutes defaults it need not act
on; subscriptions are checked and listed.

On the app that runs on a clock (see tests/component/notify_fixtures.py), as the delivery
tests do.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from shared.contract import (
    CaseClosed,
    CaseDeadlineWarning,
    CaseEscalated,
    CaseExtensionDecided,
    CaseExtensionRequested,
    CasePauseDecided,
    CasePauseRequested,
    CaseResolved,
    CaseResumed,
    CaseUrged,
    CaseWhistled,
    Location,
    PauseKind,
    Priority,
    new_event,
)
from tests.component import notify_fixtures
from tests.component.notify_fixtures import (
    ADMIN,
    area_desk,
    desk,
    dispatched_in,
    facts,
    inbox_of,
    overdue_in,
    overseer,
    staff,
    uid,
)
from tests.helpers import eventually, fetch, publish_event

notify = notify_fixtures.notify_on_clock  # notify on a clock the tests move, one for the module
clock = notify_fixtures.clock


async def inbox_types(client, rid: str, case_id) -> list[str]:
    conn_rows = await client.get(
        "/deliveries",
        params={"recipient_id": rid, "channel": "inbox", "case_id": str(case_id)},
        headers=ADMIN,
    )
    return sorted(r["type"] for r in conn_rows.json())


async def heard(client, people: dict[str, str], case_id) -> dict[str, list[str]]:
    """What each of ``people`` (name: recipient id) heard of the case: its inbox's types."""
    return {who: await inbox_types(client, rid, case_id) for who, rid in people.items()}


async def until_heard(client, people: dict[str, str], case_id, expected, message: str) -> None:
    """Wait until ``people`` heard what ``expected`` says (the producers' topics have no order
    between them)."""

    async def all_heard():
        return await heard(client, people, case_id) == expected

    await eventually(all_heard, timeout=45, message=message)


def whistled_in(grid: str, case_id, level: str, description: str, location: Location):
    """The case whistled (escalated to ``level``), as intake publishes it."""
    return new_event(
        CaseWhistled(
            **facts(grid), grid_code="G1", description=description, location=location, level=level
        ),
        case_id=case_id,
        producer="intake",
    )


def resolved_in(grid: str, dept: str, case_id, *, whole_case: bool):
    """``dept`` resolved its part (and so the case, if ``whole_case``), as dispatch publishes it."""
    return new_event(
        CaseResolved(
            **facts(grid),
            assignment_id=uuid.uuid4(),
            department_id=dept,
            result="已清理",
            case_resolved=whole_case,
        ),
        case_id=case_id,
        producer="dispatch",
    )


async def test_defaults_and_subscriptions_decide_who_hears_each_event_once(notify):
    client, _, bootstrap = notify
    u = uid()
    street, community = f"Z{u}/S1", f"Z{u}/S1/C1"
    grid, elsewhere = f"{community}/G1", f"Z{u}/S2/C9/G9"
    dept, other = f"cg-{u}", f"zj-{u}"
    people = {
        "dept": await desk(client, dept),
        "other": await desk(client, other),
        "sup": await area_desk(client, f"sup-{u}", "supervisor", street, "街道督办"),
        "community": await area_desk(client, f"com-{u}", "community", community, "社区"),
        "grid": await area_desk(client, f"grid-{u}", "grid_worker", grid, "网格员"),
        "far": await area_desk(client, f"far-{u}", "community", f"Z{u}/S2/C9", "别的社区"),
        "watcher": await area_desk(client, f"watch-{u}", "supervisor", f"Z{u}/S3", "城管局长"),
    }
    # the other department's head watches urgent C01… dispatches of the whole district
    sub = await client.post(
        "/subscriptions",
        json={
            "recipient_id": people["watcher"],
            "event_types": ["case.dispatched"],
            "area_path": f"Z{u}",
            "categories": ["C01"],
            "priorities": ["urgent"],
        },
        headers=ADMIN,
    )
    assert sub.status_code == 201, sub.text

    case = uuid.uuid4()
    events = [
        dispatched_in(grid, dept, case),
        dispatched_in(grid, dept, case, category="C0103", priority=Priority.URGENT),
        overdue_in(grid, dept, case),
        whistled_in(grid, case, "street", "占道经营", Location(address="柳巷12号")),
        whistled_in(grid, case, "community", "x", Location()),
        resolved_in(grid, dept, case, whole_case=False),
        resolved_in(grid, dept, case, whole_case=True),
        new_event(CaseClosed(**facts(grid)), case_id=case, producer="intake"),
        dispatched_in(elsewhere, other),
    ]
    for e in events:
        await publish_event(bootstrap, e)
    await publish_event(bootstrap, events[0])  # a redelivery: nothing new

    expected = {
        "dept": ["case.dispatched", "case.dispatched", "case.overdue"],
        "other": [],
        "sup": ["case.overdue", "case.whistled"],
        "community": ["case.closed", "case.resolved"],
        "grid": ["case.closed", "case.resolved"],
        "far": [],
        "watcher": ["case.dispatched"],  # the urgent C0103 one only
    }
    await until_heard(client, people, case, expected, "everyone heard what they should")
    await eventually(
        lambda: inbox_types(client, people["other"], events[-1].case_id),
        message="the last event was handled",
    )
    await asyncio.sleep(1)  # and nobody hears anything more (the redelivery included)
    assert await heard(client, people, case) == expected
    sup_inbox = await inbox_of(client, people["sup"], overseer(street))
    [escalation] = [m for m in sup_inbox if m["type"] == "case.whistled"]
    assert escalation["title"] == "【升级】案件YA20261122-0101已由街道级吹哨"
    assert "柳巷12号" in escalation["body"] and escalation["body_en"].startswith("[Escalated]")

    # Unsubscribed, the watcher hears no more.
    assert (
        await client.delete(f"/subscriptions/{sub.json()['id']}", headers=ADMIN)
    ).status_code == 204
    again = dispatched_in(grid, dept, category="C0103", priority=Priority.URGENT)
    await publish_event(bootstrap, again)
    await eventually(
        lambda: inbox_types(client, people["dept"], again.case_id),
        message="the department heard the new dispatch",
    )
    assert await inbox_types(client, people["watcher"], again.case_id) == []


async def test_tracking_warnings_reach_the_department_and_escalations_climb_the_ladder(notify):
    client, _, bootstrap = notify
    u = uid()
    district, street, community = f"W{u}", f"W{u}/S1", f"W{u}/S1/C1"
    grid, dept = f"{community}/G1", f"cg-{u}"
    people = {
        "dept": await desk(client, dept),
        "district": await area_desk(client, f"d-{u}", "supervisor", district, "区督办"),
        "street": await area_desk(client, f"s-{u}", "supervisor", street, "街道督办"),
        "community": await area_desk(client, f"c-{u}", "community", community, "社区"),
    }
    case, due = uuid.uuid4(), datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    common = {
        **facts(grid),
        "assignment_id": uuid.uuid4(),
        "department_id": dept,
        "department_name": "榆安区城市管理局",
        "clock": "resolve",
        "due_at": due,
    }
    events = [new_event(CaseDeadlineWarning(**common), case_id=case, producer="tracking")]
    for step, level in enumerate(("community", "street", "district")):
        events.append(
            new_event(
                CaseEscalated(**common, level=level, step=step, repeat=0),
                case_id=case,
                producer="tracking",
            )
        )
    for e in events:
        await publish_event(bootstrap, e)
    expected = {
        "dept": ["case.deadline_warning"],
        "district": ["case.escalated"],
        "street": ["case.escalated"],
        "community": ["case.escalated"],
    }
    await until_heard(client, people, case, expected, "each level heard its step")
    [warning] = await inbox_of(client, people["dept"], staff(dept))
    assert warning["title"] == "【预警】案件YA20261122-0101办结即将超时"
    assert "2026-11-22 10:00（北京时间）" in warning["body"]
    [to_street] = await inbox_of(client, people["street"], overseer(street))
    assert to_street["title"] == "【升级】案件YA20261122-0101办结超时，已上报街道"


async def test_urgings_requests_and_decisions_reach_who_acts_on_them(notify):
    client, _, bootstrap = notify
    u = uid()
    street, grid, dept = f"U{u}/S1", f"U{u}/S1/C1/G1", f"cg-{u}"
    people = {
        "dept": await desk(client, dept),
        "sup": await area_desk(client, f"sup-{u}", "supervisor", street, "街道督办"),
        "other": await area_desk(client, f"osup-{u}", "supervisor", f"U{u}/S2", "别的街道督办"),
        "community": await area_desk(client, f"com-{u}", "community", f"U{u}/S1/C1", "社区"),
    }
    case, assignment, request = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    common = {
        **facts(grid, priority=Priority.URGENT),
        "assignment_id": assignment,
        "department_id": dept,
    }
    events = [
        new_event(
            CaseUrged(**common, department_name="榆安区城市管理局", note="请今天内处置", count=1),
            case_id=case,
            producer="tracking",
        ),
        new_event(
            CaseExtensionRequested(
                **common,
                department_name="榆安区城市管理局",
                request_id=request,
                days=3,
                reason="需采购配件",
            ),
            case_id=case,
            producer="dispatch",
        ),
        new_event(
            CaseExtensionDecided(
                **common, request_id=request, approved=False, days=0, comment="材料不全"
            ),
            case_id=case,
            producer="dispatch",
        ),
        new_event(
            CasePauseRequested(**common, request_id=request, kind=PauseKind.HANG, reason="待资金"),
            case_id=case,
            producer="dispatch",
        ),
        new_event(
            CasePauseDecided(
                **common, request_id=request, kind=PauseKind.HANG, reason="待资金", approved=True
            ),
            case_id=case,
            producer="dispatch",
        ),
        new_event(
            CaseResumed(**common, request_id=request, note="资金到位"),
            case_id=case,
            producer="dispatch",
        ),
    ]
    for e in events:
        await publish_event(bootstrap, e)
    expected = {
        "dept": ["case.extension_decided", "case.pause_decided", "case.resumed", "case.urged"],
        "sup": ["case.extension_requested", "case.pause_requested"],
        "other": [],
        "community": [],
    }
    await until_heard(client, people, case, expected, "each heard what it acts on")
    inbox = await inbox_of(client, people["dept"], staff(dept))
    titles = {m["type"]: m["title"] for m in inbox}
    assert titles["case.urged"] == "【督办】（紧急）案件YA20261122-0101被督办（第1次）"
    assert (
        titles["case.extension_decided"]
        == "【延期被驳回】（紧急）案件YA20261122-0101延期申请被驳回"
    )
    assert titles["case.pause_decided"] == "【挂账已批准】（紧急）案件YA20261122-0101挂账申请已批准"
    to_sup = await inbox_of(client, people["sup"], overseer(street))
    [ask] = [m for m in to_sup if m["type"] == "case.extension_requested"]
    assert "榆安区城市管理局申请延期3个工作日" in ask["body"] and "理由：需采购配件" in ask["body"]
    # an event without the department's name (older dispatch) names it by its id
    resumed = next(m for m in inbox if m["type"] == "case.resumed")
    assert f"{dept}已恢复办理" in resumed["body"]
    assert "asks for 3 more working days" in ask["body_en"]


async def test_a_recipient_mutes_defaults_it_need_not_act_on(notify):
    client, _, bootstrap = notify
    u = uid()
    grid, dept = f"M{u}/S1/C1/G1", f"cg-{u}"
    rid = await desk(client, dept)
    resp = await client.put(
        f"/recipients/{rid}/preferences",
        json={"muted_events": ["case.deadline_warning", "case.resumed"]},
        headers=ADMIN,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["muted_events"] == ["case.deadline_warning", "case.resumed"]
    assert (await client.get(f"/recipients/{rid}/preferences", headers=ADMIN)).json()[
        "muted_events"
    ] == ["case.deadline_warning", "case.resumed"]
    # What asks it to act cannot be muted; unknown types are refused; nothing changes.
    for body, code, words in (
        ({"muted_events": ["case.dispatched"]}, "cannot_mute", "case.dispatched"),
        ({"muted_events": ["case.urged", "case.closed"]}, "cannot_mute", "case.urged"),
        ({"muted_events": ["case.reported"]}, "validation_error", "muted_events"),
    ):
        bad = await client.put(
            f"/recipients/{rid}/preferences", json=body, headers={**ADMIN, "Accept-Language": "en"}
        )
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["code"] == code and words in bad.json()["error"]["message"]
    assert (await client.get(f"/recipients/{rid}/preferences", headers=ADMIN)).json()[
        "muted_events"
    ] == ["case.deadline_warning", "case.resumed"]

    case = uuid.uuid4()
    common = {**facts(grid), "assignment_id": uuid.uuid4(), "department_id": dept}
    muted = [
        new_event(
            CaseDeadlineWarning(
                **common,
                department_name="城管",
                clock="resolve",
                due_at=datetime(2026, 11, 22, 2, tzinfo=UTC),
            ),
            case_id=case,
            producer="tracking",
        ),
        new_event(
            CaseResumed(**common, request_id=uuid.uuid4()), case_id=case, producer="dispatch"
        ),
    ]
    heard = new_event(
        CaseUrged(**common, department_name="城管", note="快", count=1),
        case_id=case,
        producer="tracking",
    )
    for e in [*muted, heard]:
        await publish_event(bootstrap, e)
    await eventually(lambda: inbox_types(client, rid, case), message="the urging arrived")
    await asyncio.sleep(1)
    assert await inbox_types(client, rid, case) == ["case.urged"]
    # A subscription still brings what the default no longer does.
    sub = await client.post(
        "/subscriptions",
        json={"recipient_id": rid, "event_types": ["case.deadline_warning"]},
        headers=ADMIN,
    )
    assert sub.status_code == 201, sub.text
    again = new_event(
        CaseDeadlineWarning(
            **common,
            department_name="城管",
            clock="sign_for",
            due_at=datetime(2026, 11, 22, 3, tzinfo=UTC),
        ),
        case_id=case,
        producer="tracking",
    )
    await publish_event(bootstrap, again)
    await eventually(
        lambda: _has(client, rid, case, "case.deadline_warning"),
        message="the subscribed warning arrived",
    )


async def _has(client, rid: str, case, kind: str) -> bool:
    return kind in await inbox_types(client, rid, case)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"recipient_id": "nobody-at-all", "event_types": ["case.overdue"]},
            404,
            "recipient_not_found",
        ),
        ({"recipient_id": "{rid}", "event_types": []}, 422, "validation_error"),
        ({"recipient_id": "{rid}", "event_types": ["case.reported"]}, 422, "validation_error"),
        (
            {"recipient_id": "{rid}", "event_types": ["case.overdue", "case.overdue"]},
            422,
            "invalid_subscription",
        ),
        (
            {"recipient_id": "{rid}", "event_types": ["case.overdue"], "area_path": "YA//YA01"},
            422,
            "invalid_subscription",
        ),
        (
            {"recipient_id": "{rid}", "event_types": ["case.overdue"], "categories": ["路灯"]},
            422,
            "invalid_subscription",
        ),
        (
            {"recipient_id": "{rid}", "event_types": ["case.overdue"], "priorities": ["asap"]},
            422,
            "validation_error",
        ),
        (
            {"recipient_id": "{rid}", "event_types": ["case.overdue"], "mute": True},
            422,
            "validation_error",
        ),
    ],
)
async def test_bad_subscriptions_are_refused_and_change_nothing(notify, body, status, code):
    client, dsn, _ = notify
    rid = await desk(client)
    body = {**body, "recipient_id": body["recipient_id"].replace("{rid}", rid)}
    before = await fetch(dsn, "SELECT count(*) AS n FROM subscriptions")
    resp = await client.post("/subscriptions", json=body, headers=ADMIN)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]
    assert await fetch(dsn, "SELECT count(*) AS n FROM subscriptions") == before
    gone = await client.delete("/subscriptions/999999999", headers=ADMIN)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "subscription_not_found"


async def test_subscriptions_are_listed_by_recipient_and_type(notify):
    client, _, _ = notify
    rid = await desk(client)
    for types in (["case.overdue"], ["case.dispatched", "case.closed"]):
        resp = await client.post(
            "/subscriptions",
            json={"recipient_id": rid, "event_types": types, "area_path": f"Q{uid()}"},
            headers=ADMIN,
        )
        assert resp.status_code == 201, resp.text
    mine = (await client.get("/subscriptions", params={"recipient_id": rid}, headers=ADMIN)).json()
    assert [s["event_types"] for s in mine] == [
        ["case.overdue"],
        ["case.dispatched", "case.closed"],
    ]
    closed = (
        await client.get(
            "/subscriptions",
            params={"recipient_id": rid, "event_type": "case.closed"},
            headers=ADMIN,
        )
    ).json()
    assert len(closed) == 1 and closed[0]["recipient_id"] == rid
