"""The department's side of an assignment: 报到 (sign for), 办理进展 (progress notes), 办结 (resolve,
citing its after-photos), and a joint case (联合办理) resolved when its last department reports.
Every refusal is a clear 4xx and changes nothing. On real PostgreSQL and the real broker;
every request carries a bearer token of a demo user (or a made-up one), as in production."""

from __future__ import annotations

import uuid

from shared.auth import Role
from shared.contract import CasePhotoAdded, Priority, new_event
from tests.component import dispatch_fixtures
from tests.component.dispatch_fixtures import (
    ADMIN,
    CG,
    COMMAND,
    GRID,
    SUPERVISOR,
    TAOYUAN,
    XF,
    ZJ,
    App,
    joint_case,
    refused,
    resolved_flags,
    routed,
    sign_and_resolve,
    sign_for,
)
from tests.helpers import as_user, bearer, publish_event

app = dispatch_fixtures.app  # dispatch on real PostgreSQL and the broker, one for the module


async def _assignment_state(app: App, case_id: uuid.UUID) -> tuple:
    """What signing for and resolving change: the case's one assignment and its events."""
    (a,) = await app.assignments(case_id)
    return (
        a["state"],
        a["result"],
        a["signed_for_at"],
        a["resolved_at"],
        a["updated_at"],
        await app.val("SELECT count(*) FROM assignments"),
        [o["type"] for o in await app.outbox(case_id)],
    )


async def test_sign_for_then_resolve_and_the_refusals_change_nothing(app):
    event, row = await routed(app, category="E0201")
    assert row["department_id"] == "xf"
    url = f"/assignments/{row['id']}"
    c = app.client
    await refused(
        app,
        event.case_id,
        state=_assignment_state,
        refusals=[
            (f"{url}/resolve", XF, {"result": "已整改"}, 409, "invalid_state"),
            # Another department: refused before the state is looked at.
            (f"{url}/sign-for", CG, None, 403, "not_your_assignment"),
            (f"{url}/sign-for", CG, {}, 403, "not_your_assignment"),
            (f"{url}/resolve", CG, {"result": "已整改"}, 403, "not_your_assignment"),
            # A department token naming xf in the body changes nothing: the token decides.
            (f"{url}/sign-for", CG, {"department_id": "xf"}, 422, "validation_error"),
            (f"{url}/sign-for", XF, {"department_id": "xf"}, 422, "validation_error"),
            # Only departments sign for and resolve, whatever their area.
            (f"{url}/sign-for", TAOYUAN, None, 403, "role_not_allowed"),
            (f"{url}/sign-for", COMMAND, None, 403, "role_not_allowed"),
            (f"{url}/resolve", SUPERVISOR, {"result": "已整改"}, 403, "role_not_allowed"),
            (f"{url}/sign-for", ADMIN, None, 403, "role_not_allowed"),
            (f"/assignments/{uuid.uuid4()}/sign-for", XF, None, 404, "assignment_not_found"),
        ],
    )

    # No body at all: the token says who signs for it.
    signed = await c.post(f"{url}/sign-for", headers={**XF, "X-Correlation-ID": "corr-sign-1"})
    assert signed.status_code == 200, signed.text
    assert (signed.json()["state"], signed.json()["state_label"]) == ("signed_for", "已报到办理中")
    again = await c.post(f"{url}/sign-for", json={}, headers=XF)  # an empty object is fine too
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_state")
    # A stranger learns nothing about the state: 403, not 409.
    stranger = await c.post(f"{url}/sign-for", headers=CG)
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (403, "not_your_assignment")

    resolve = f"{url}/resolve"
    await refused(
        app,
        event.case_id,
        state=_assignment_state,
        refusals=[
            (resolve, XF, {"result": ""}, 422, "validation_error"),
            (resolve, XF, {}, 422, "validation_error"),
            (resolve, XF, {"department_id": "xf", "result": "已整改"}, 422, "validation_error"),
            (resolve, XF, {"result": "   "}, 422, "result_required"),
            (resolve, CG, {"result": "已整改"}, 403, "not_your_assignment"),
            (
                resolve,
                bearer(Role.DEPARTMENT, department_id="xf-other"),
                {"result": "已整改"},
                403,
                "not_your_assignment",
            ),
        ],
    )

    done = await c.post(f"{url}/resolve", json={"result": "已清除消防通道堆物"}, headers=XF)
    assert done.status_code == 200, done.text
    got = (await c.get(url, headers=XF)).json()
    assert (got["state"], got["result"]) == ("resolved", "已清除消防通道堆物")
    assert got["signed_for_at"] and got["resolved_at"]
    twice = await c.post(f"{url}/resolve", json={"result": "再次"}, headers=XF)
    assert twice.status_code == 409

    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs] == ["case.dispatched", "case.signed_for", "case.resolved"]
    signed_for, resolved = outs[1], outs[2]
    assert signed_for["correlation_id"] == "corr-sign-1"
    # The acting person, from the token, travels in the envelope.
    assert signed_for["actor"] == {
        "subject": "xf-duty",
        "role": "department",
        "name": "榆安区消防救援大队值班员",
    }
    assert signed_for["payload"]["assignment_id"] == str(row["id"])
    assert resolved["actor"]["subject"] == "xf-duty"
    assert resolved["actor"]["role"] == "department"
    assert resolved["payload"]["result"] == "已清除消防通道堆物"
    assert resolved["payload"]["department_id"] == "xf"


async def test_wrong_department_message_is_chinese_first_english_on_request(app):
    _, row = await routed(app, category="E0303")
    path = f"/assignments/{row['id']}/sign-for"
    zh = await app.client.post(path, headers=CG)
    en = await app.client.post(path, headers={**CG, "Accept-Language": "en"})
    assert zh.json()["error"]["message"] == "只能办理本部门的派单（本部门：cg，派单部门：rs）"
    assert "(yours: cg, assigned: rs)" in en.json()["error"]["message"]
    assert (await app.client.post(path, headers=as_user("rs-duty"))).status_code == 200


async def test_a_joint_case_is_resolved_when_its_last_department_reports(app):
    """Named departments: cg leads (主办), zj co-handles (协办); only the last report resolves
    the case as a whole — whichever order they come in."""
    case_id, ids = await joint_case(app, "YA-J-1", GRID)
    for dept, who in (("zj", ZJ), ("cg", CG)):  # the co-handler reports first
        assert (await sign_and_resolve(app, ids[dept], who, result="完成")).status_code == 200
    assert await resolved_flags(app, case_id) == [("zj", False), ("cg", True)]


async def test_progress_notes_while_signed_for_newest_last(app):
    event, row = await routed(app, category="E0201")
    url = f"/assignments/{row['id']}"
    await refused(
        app,
        event.case_id,
        [
            (f"{url}/progress", XF, {"note": "已到现场"}, 409, "invalid_state"),
        ],
    )
    await sign_for(app, row["id"], XF)
    await refused(
        app,
        event.case_id,
        [
            (f"{url}/progress", XF, {"note": "  "}, 422, "note_required"),
            (f"{url}/progress", XF, {"note": ""}, 422, "validation_error"),
            (f"{url}/progress", XF, {}, 422, "validation_error"),
            (f"{url}/progress", CG, {"note": "已到现场"}, 403, "not_your_assignment"),
            (f"{url}/progress", TAOYUAN, {"note": "已到现场"}, 403, "role_not_allowed"),
        ],
    )
    for note in ("已到现场勘查", "已联系物业清理通道"):
        resp = await app.client.post(f"{url}/progress", json={"note": note}, headers=XF)
        assert resp.status_code == 201, resp.text
        assert resp.json()["note"] == note and resp.json()["actor_subject"] == "xf-duty"
    for reader in (XF, TAOYUAN):
        got = (await app.client.get(url, headers=reader)).json()
        assert [n["note"] for n in got["notes"]] == ["已到现场勘查", "已联系物业清理通道"]
        assert got["state"] == "signed_for"
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs][2:] == ["case.progressed", "case.progressed"]
    assert outs[2]["payload"]["note"] == "已到现场勘查"
    assert outs[2]["actor"]["subject"] == "xf-duty"


async def _photo_added(
    app: App, case_id: uuid.UUID, department_id: str | None, kind: str = "after"
) -> uuid.UUID:
    photo_id = uuid.uuid4()
    event = new_event(
        CasePhotoAdded(
            case_no="YA-P",
            area_path=GRID,
            category="E0201",
            priority=Priority.NORMAL,
            photo_id=photo_id,
            kind=kind,
            department_id=department_id,
        ),
        case_id=case_id,
        producer="intake",
    )
    await publish_event(app.bootstrap, event)
    await app.handled(event)
    return photo_id


async def test_a_resolution_cites_the_departments_own_after_photos(app):
    event, a = await routed(app, category="E0201")
    mine = await _photo_added(app, event.case_id, "xf")
    before = await _photo_added(app, event.case_id, "xf", kind="before")
    others = await _photo_added(app, event.case_id, "cg")
    unknown = uuid.uuid4()
    await sign_for(app, a["id"], XF)
    for photo in (before, others, unknown):
        resp = await app.client.post(
            f"/assignments/{a['id']}/resolve",
            headers=XF,
            json={"result": "已整改", "photo_ids": [str(mine), str(photo)]},
        )
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "unknown_photo")
        assert resp.json()["error"]["message"].startswith("photo_ids[1]：")
    (row,) = await app.assignments(event.case_id)
    assert row["state"] == "signed_for"
    resp = await app.client.post(
        f"/assignments/{a['id']}/resolve",
        headers=XF,
        json={"result": "已整改", "photo_ids": [str(mine)]},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["photo_ids"] == [str(mine)]
    resolved = [o for o in await app.outbox(event.case_id) if o["type"] == "case.resolved"]
    assert resolved[0]["payload"]["photo_ids"] == [str(mine)]
