"""Pauses (挂账/缓办) on dispatch, against real PostgreSQL and the real broker: the department
asks after 报到, a supervisor of the case's area approves or refuses, the department (or a
supervisor) resumes; inbox and assignment show the pause; resolving or transferring while
paused ends it. Every refusal is a clear 4xx (Chinese first, English on request) and changes
nothing."""

from __future__ import annotations

import uuid
from typing import Any

from shared.auth import Role
from tests.component import dispatch_fixtures
from tests.component.dispatch_fixtures import (
    CG,
    COMMAND,
    DONGHU,
    SUPERVISOR,
    XF,
    YINGZE,
    App,
    refused,
    routed,
    sign_for,
    signed_for,
)
from tests.helpers import bearer

app = dispatch_fixtures.app  # dispatch on real PostgreSQL and the broker, one for the module

ELSEWHERE = bearer(Role.SUPERVISOR, "YA/YA03")  # a supervisor of another street


async def _state(app: App, case_id: uuid.UUID) -> tuple:
    """Everything a pause request may change: the requests and the events written."""
    requests = await app.rows(
        "SELECT * FROM pause_requests WHERE case_id = $1 ORDER BY id", case_id
    )
    return requests, await app.outbox(case_id)


async def _refused(app: App, case_id: uuid.UUID, refusals: list) -> None:
    """Each (path, headers, body, status, code) is refused with a clear error and changes
    neither the pause requests nor the events."""
    await refused(app, case_id, refusals, state=_state)


async def _asked(app: App, a: dict[str, Any], kind: str, reason: str) -> dict[str, Any]:
    """The department (xf) asks for a pause of its assignment: the request."""
    resp = await app.client.post(
        f"/assignments/{a['id']}/pauses", headers=XF, json={"kind": kind, "reason": reason}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def _paused(app: App, a: dict[str, Any], kind: str, reason: str) -> dict[str, Any]:
    """A pause asked for and approved by the supervisor: the request, now running."""
    req = await _asked(app, a, kind, reason)
    approved = await app.client.post(
        f"/pause-requests/{req['id']}/approve", headers=SUPERVISOR, json={}
    )
    assert approved.status_code == 200, approved.text
    return req


async def test_a_pause_is_asked_for_approved_shown_and_resumed(app):
    event, a = await routed(app, category="E0201")
    url = f"/assignments/{a['id']}/pauses"
    await _refused(
        app,
        event.case_id,
        [
            (url, XF, {"kind": "hang", "reason": "待资金"}, 409, "invalid_state"),  # before 报到
        ],
    )
    await sign_for(app, a["id"], XF)
    await _refused(
        app,
        event.case_id,
        [
            (url, XF, {"kind": "freeze", "reason": "x"}, 422, None),
            (url, XF, {"kind": "hang", "reason": "   "}, 422, "reason_required"),
            (url, XF, {"kind": "hang"}, 422, None),
            (url, CG, {"kind": "hang", "reason": "x"}, 403, None),
            (url, SUPERVISOR, {"kind": "hang", "reason": "x"}, 403, None),
            (f"/assignments/{a['id']}/resume", XF, {}, 409, "not_paused"),
        ],
    )
    asked = await app.client.post(
        url, headers=XF, json={"kind": "hang", "reason": "需列入明年改造计划"}
    )
    assert asked.status_code == 201, asked.text
    req = asked.json()
    assert (
        req["state"],
        req["state_label"],
        req["kind"],
        req["kind_label"],
        req["requested_by"],
    ) == ("pending", "待审批", "hang", "挂账", "xf-duty")
    await _refused(
        app,
        event.case_id,
        [
            (url, XF, {"kind": "defer", "reason": "再申请"}, 409, "pause_pending"),
        ],
    )

    pending = (
        await app.client.get(
            "/pause-requests", headers=SUPERVISOR, params={"state": "pending", "limit": 200}
        )
    ).json()
    assert req["id"] in [p["id"] for p in pending]
    for who, sees in [(ELSEWHERE, False), (XF, True), (CG, False), (YINGZE, True)]:
        listed = await app.client.get("/pause-requests", headers=who, params={"limit": 200})
        assert (req["id"] in [p["id"] for p in listed.json()]) is sees, who
    assert (await app.client.get(f"/pause-requests/{req['id']}", headers=DONGHU)).status_code == 403
    missing = await app.client.get(f"/pause-requests/{uuid.uuid4()}", headers=SUPERVISOR)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "pause_not_found")

    decide = f"/pause-requests/{req['id']}"
    await _refused(
        app,
        event.case_id,
        [
            (f"{decide}/approve", ELSEWHERE, {}, 403, None),
            (f"{decide}/approve", XF, {}, 403, None),
            (f"{decide}/approve", COMMAND, {}, 403, None),
            (f"{decide}/refuse", SUPERVISOR, {"comment": ""}, 422, None),
            (f"{decide}/refuse", SUPERVISOR, {"comment": "   "}, 422, "comment_required"),
            (f"{decide}/approve", SUPERVISOR, {"days": 3}, 422, None),
        ],
    )
    approved = await app.client.post(
        f"{decide}/approve", headers=SUPERVISOR, json={"comment": "同意挂账，列入改造计划"}
    )
    assert approved.status_code == 200, approved.text
    assert (approved.json()["state"], approved.json()["decided_by"]) == ("approved", "supervisor")

    # The inbox and the assignment show it paused, with the pause.
    detail = (await app.client.get(f"/assignments/{a['id']}", headers=XF)).json()
    assert (detail["paused"], detail["pause_kind"], detail["pause_label"]) == (
        True,
        "hang",
        "挂账中",
    )
    assert detail["paused_since"] == approved.json()["decided_at"]
    assert [p["state"] for p in detail["pauses"]] == ["approved"]
    inbox = (
        await app.client.get(
            "/departments/xf/assignments", headers=XF, params={"state": "signed_for", "limit": 200}
        )
    ).json()
    assert next(x for x in inbox if x["id"] == str(a["id"]))["paused"] is True

    await _refused(
        app,
        event.case_id,
        [
            (f"{decide}/refuse", SUPERVISOR, {"comment": "改主意"}, 409, "pause_decided"),
            (url, XF, {"kind": "defer", "reason": "再挂"}, 409, "already_paused"),
            (f"/assignments/{a['id']}/resume", CG, {}, 403, None),
            (f"/assignments/{a['id']}/resume", ELSEWHERE, {}, 403, None),
            (f"/assignments/{a['id']}/resume", COMMAND, {}, 403, None),
        ],
    )
    en = await app.client.post(
        url, headers={**XF, "Accept-Language": "en"}, json={"kind": "defer", "reason": "再挂"}
    )
    assert en.json()["error"]["message"] == "the assignment is already paused; resume it first"

    resumed = await app.client.post(
        f"/assignments/{a['id']}/resume", headers=XF, json={"note": "资金已落实，恢复办理"}
    )
    assert resumed.status_code == 200, resumed.text
    assert (
        resumed.json()["state"],
        resumed.json()["ended_how"],
        resumed.json()["ended_by"],
        resumed.json()["end_note"],
    ) == ("ended", "resumed", "xf-duty", "资金已落实，恢复办理")
    await _refused(
        app,
        event.case_id,
        [
            (f"/assignments/{a['id']}/resume", XF, {}, 409, "not_paused"),
        ],
    )
    detail = (await app.client.get(f"/assignments/{a['id']}", headers=XF)).json()
    assert (detail["paused"], detail["pause_kind"], detail["paused_since"]) == (False, None, None)

    outs = [
        o
        for o in await app.outbox(event.case_id)
        if o["type"] in ("case.pause_requested", "case.pause_decided", "case.resumed")
    ]
    assert [(o["type"], o["actor"]["subject"]) for o in outs] == [
        ("case.pause_requested", "xf-duty"),
        ("case.pause_decided", "supervisor"),
        ("case.resumed", "xf-duty"),
    ]
    assert {o["payload"]["request_id"] for o in outs} == {req["id"]}
    # notify names the department by its name, not its id
    assert {(o["payload"]["department_id"], o["payload"]["department_name"]) for o in outs} == {
        ("xf", detail["department_name"])
    } and detail["department_name"].startswith("榆安区")
    assert (
        outs[1]["payload"]["approved"],
        outs[1]["payload"]["kind"],
        outs[1]["payload"]["reason"],
    ) == (True, "hang", "需列入明年改造计划")
    assert outs[2]["payload"]["note"] == "资金已落实，恢复办理"

    # Another pause may be asked for after the first ended; a supervisor may resume it.
    await _paused(app, a, "defer", "汛期暂缓施工")
    by_supervisor = await app.client.post(f"/assignments/{a['id']}/resume", headers=YINGZE)
    assert by_supervisor.status_code == 403  # a street is not a supervisor
    by_supervisor = await app.client.post(f"/assignments/{a['id']}/resume", headers=SUPERVISOR)
    assert by_supervisor.status_code == 200, by_supervisor.text
    assert by_supervisor.json()["ended_by"] == "supervisor"


async def test_a_refused_pause_changes_no_clock_and_a_new_one_may_be_asked(app):
    event, a = await signed_for(app, XF, category="E0201")
    url = f"/assignments/{a['id']}/pauses"
    req = await _asked(app, a, "defer", "天气")
    refusal = await app.client.post(
        f"/pause-requests/{req['id']}/refuse", headers=SUPERVISOR, json={"comment": "雨停即可施工"}
    )
    assert refusal.status_code == 200, refusal.text
    assert (refusal.json()["state"], refusal.json()["comment"]) == ("refused", "雨停即可施工")
    detail = (await app.client.get(f"/assignments/{a['id']}", headers=XF)).json()
    assert detail["paused"] is False
    decided = [o for o in await app.outbox(event.case_id) if o["type"] == "case.pause_decided"]
    assert [(d["payload"]["approved"], d["payload"]["comment"]) for d in decided] == [
        (False, "雨停即可施工")
    ]
    await _refused(
        app,
        event.case_id,
        [
            (f"/assignments/{a['id']}/resume", XF, {}, 409, "not_paused"),
            (f"/pause-requests/{req['id']}/approve", SUPERVISOR, {}, 409, "pause_decided"),
        ],
    )
    again = await app.client.post(url, headers=XF, json={"kind": "hang", "reason": "待资金"})
    assert again.status_code == 201, again.text


async def test_resolving_while_paused_ends_the_pause_with_the_resolution(app):
    event, a = await signed_for(app, XF, category="E0201")
    url = f"/assignments/{a['id']}/pauses"
    req = await _paused(app, a, "hang", "待资金")
    resolved = await app.client.post(
        f"/assignments/{a['id']}/resolve", headers=XF, json={"result": "已整改完毕"}
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["paused"] is False
    got = (await app.client.get(f"/pause-requests/{req['id']}", headers=XF)).json()
    assert (got["state"], got["ended_how"], got["ended_how_label"], got["ended_by"]) == (
        "ended",
        "resolved",
        "随办结结束",
        "xf-duty",
    )
    assert got["ended_at"] == resolved.json()["resolved_at"]
    assert not [o for o in await app.outbox(event.case_id) if o["type"] == "case.resumed"]
    await _refused(
        app,
        event.case_id,
        [
            (f"/assignments/{a['id']}/resume", XF, {}, 409, "not_paused"),
            (url, XF, {"kind": "hang", "reason": "x"}, 409, "invalid_state"),
        ],
    )


async def test_a_pending_request_cannot_be_approved_once_the_assignment_ended(app):
    event, a = await signed_for(app, XF, category="E0201")
    req = await _asked(app, a, "defer", "节后施工")
    transferred = await app.client.post(
        f"/assignments/{a['id']}/transfer",
        headers=XF,
        json={"to_department_id": "zj", "reason": "属住建职责"},
    )
    assert transferred.status_code == 200, transferred.text
    await _refused(
        app,
        event.case_id,
        [
            (f"/pause-requests/{req['id']}/approve", SUPERVISOR, {}, 409, "invalid_state"),
        ],
    )
    refusal = await app.client.post(
        f"/pause-requests/{req['id']}/refuse", headers=SUPERVISOR, json={"comment": "已转办"}
    )
    assert refusal.status_code == 200


async def test_transferring_while_paused_ends_the_pause(app):
    _, a = await signed_for(app, XF, category="E0201")
    req = await _paused(app, a, "hang", "待规划")
    moved = await app.client.post(
        f"/assignments/{a['id']}/transfer",
        headers=XF,
        json={"to_department_id": "zj", "reason": "属住建职责"},
    )
    assert moved.status_code == 200, moved.text
    got = (await app.client.get(f"/pause-requests/{req['id']}", headers=SUPERVISOR)).json()
    assert (got["state"], got["ended_how"]) == ("ended", "transferred")
