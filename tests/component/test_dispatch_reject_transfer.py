"""退单 and 转办: a department pushes back a misrouted assignment (the case goes to the next
candidate, and at last to the community, who dispatches it by hand, 人工派单) or hands a case in
hand on to another department; co-handlers and leads in joint cases. Every refusal is a
clear 4xx and changes nothing. On real PostgreSQL and the real broker; every request carries
a bearer token of a demo user (or a made-up one), as in production."""

from __future__ import annotations

import uuid

from tests.component import dispatch_fixtures
from tests.component.dispatch_fixtures import (
    CG,
    COMMAND,
    GRID_BEIGUAN,
    GRID_JINXIU,
    HB,
    JINXIU,
    SUPERVISOR,
    TAOYUAN,
    WY,
    XF,
    ZJ,
    joint_case,
    refused,
    routed,
    rule_id,
    sign_and_resolve,
    sign_for,
    whistled,
)
from tests.helpers import as_user

app = dispatch_fixtures.app  # dispatch on real PostgreSQL and the broker, one for the module


async def test_reject_reroutes_to_the_next_candidate_then_to_the_community(app):
    # E0103 in 锦绣社区: the property company's rule (YA0201) first, 住建局's (YA) next.
    event, first = await routed(app, category="E0103", area_path=GRID_JINXIU)
    assert first["department_id"] == "wy-jx"
    url = f"/assignments/{first['id']}"
    await refused(
        app,
        event.case_id,
        [
            (f"{url}/reject", WY, {"reason": "   "}, 422, "reason_required"),
            (f"{url}/reject", WY, {"reason": ""}, 422, "validation_error"),
            (f"{url}/reject", WY, {}, 422, "validation_error"),
            (f"{url}/reject", WY, {"reason": "x", "department_id": "zj"}, 422, "validation_error"),
            (f"{url}/reject", ZJ, {"reason": "不是我们的"}, 403, "not_your_assignment"),
            (f"{url}/reject", JINXIU, {"reason": "不是我们的"}, 403, "role_not_allowed"),
            (
                f"/assignments/{uuid.uuid4()}/reject",
                WY,
                {"reason": "x"},
                404,
                "assignment_not_found",
            ),
        ],
    )

    resp = await app.client.post(
        f"{url}/reject", json={"reason": "违建不属物业管理范围"}, headers=WY
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["state"], body["state_label"], body["exit_reason"]) == (
        "rejected",
        "已退单",
        "违建不属物业管理范围",
    )
    rows = await app.assignments(event.case_id)
    assert sorted((a["department_id"], a["state"]) for a in rows) == [
        ("wy-jx", "rejected"),
        ("zj", "dispatched"),
    ]
    second = next(a for a in rows if a["department_id"] == "zj")
    assert second["role"] == "lead"
    assert second["rule_id"] == await rule_id(app, "E0103", "YA")
    assert "退单后改派" in second["reason"] and "违建不属物业管理范围" in second["reason"]
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs] == ["case.dispatched", "case.rejected", "case.dispatched"]
    rejected, redispatched = outs[1], outs[2]
    assert rejected["actor"]["subject"] == "wy-jx-duty"
    assert rejected["payload"]["reason"] == "违建不属物业管理范围"
    assert rejected["payload"]["assignment_id"] == str(first["id"])
    assert redispatched["payload"]["department_id"] == "zj"
    assert redispatched["payload"]["assignment_id"] == str(second["id"])
    assert "退单后改派" in redispatched["payload"]["reason"]
    # Rejecting again is a conflict; the rejected one stays as it is.
    await refused(
        app,
        event.case_id,
        [
            (f"{url}/reject", WY, {"reason": "再退"}, 409, "invalid_state"),
            (
                f"{url}/transfer",
                WY,
                {"to_department_id": "cg", "reason": "x"},
                409,
                "invalid_state",
            ),
        ],
    )

    # 住建局 rejects too: the community's liaison units (包联) come next, in their order.
    resp = await app.client.post(
        f"/assignments/{second['id']}/reject", json={"reason": "属物业维修责任"}, headers=ZJ
    )
    assert resp.status_code == 200, resp.text
    rows = await app.assignments(event.case_id)
    third = next(a for a in rows if a["state"] == "dispatched")
    assert (third["department_id"], third["basis"], third["role"]) == ("gs", "liaison", "lead")
    assert "YA/YA02/YA0201的包联单位（第1位）榆安供水公司主办" in third["reason"]
    resp = await app.client.post(
        f"/assignments/{third['id']}/reject",
        json={"reason": "非供水设施"},
        headers=as_user("gs-duty"),
    )
    assert resp.status_code == 200, resp.text
    fourth = next(a for a in await app.assignments(event.case_id) if a["state"] == "dispatched")
    assert fourth["department_id"] == "tx"

    # The last candidate rejects too: the community arbitrates (待人工派单), announced.
    resp = await app.client.post(
        f"/assignments/{fourth['id']}/reject",
        json={"reason": "非通信设施"},
        headers=as_user("tx-duty"),
    )
    assert resp.status_code == 200, resp.text
    rows = await app.assignments(event.case_id)
    assert sorted((a["department_id"], a["state"]) for a in rows) == [
        ("gs", "rejected"),
        ("tx", "rejected"),
        ("wy-jx", "rejected"),
        ("zj", "rejected"),
    ]
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs][3:] == [
        "case.rejected",
        "case.dispatched",
        "case.rejected",
        "case.dispatched",
        "case.rejected",
        "case.unroutable",
    ]
    reason = outs[-1]["payload"]["reason"]
    assert "退单" in reason and "锦绣物业公司" in reason and "榆安区住房和城乡建设局" in reason
    assert "社区协调" in reason
    assert outs[-1]["actor"]["subject"] == "tx-duty"
    queued = (
        await app.client.get("/manual-dispatch", headers=JINXIU, params={"limit": 200})
    ).json()
    assert [w["reason"] for w in queued if w["case_id"] == str(event.case_id)] == [reason]

    # The community arbitrates: it dispatches by hand, even to a department that rejected.
    url = f"/manual-dispatch/{event.case_id}"
    await refused(
        app,
        event.case_id,
        [
            (url, JINXIU, {"department_id": "ghost"}, 422, "unknown_department"),
            (
                url,
                JINXIU,
                {"department_id": "zj", "co_department_ids": ["zj"]},
                422,
                "invalid_dispatch",
            ),
            (url, JINXIU, {}, 422, "validation_error"),
            (url, TAOYUAN, {"department_id": "zj"}, 403, "out_of_scope"),
            (url, WY, {"department_id": "zj"}, 403, "role_not_allowed"),
            (url, SUPERVISOR, {"department_id": "zj"}, 403, "role_not_allowed"),
            (
                f"/manual-dispatch/{uuid.uuid4()}",
                JINXIU,
                {"department_id": "zj"},
                404,
                "not_waiting",
            ),
        ],
    )
    resp = await app.client.post(
        url,
        headers=JINXIU,
        json={
            "department_id": "zj",
            "co_department_ids": ["wy-jx"],
            "note": "协调会议定：住建局牵头",
        },
    )
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert [(m["department_id"], m["role"], m["basis"], m["basis_label"]) for m in made] == [
        ("zj", "lead", "manual", "人工派单"),
        ("wy-jx", "co", "manual", "人工派单"),
    ]
    assert (
        made[0]["reason"]
        == "人工派单：锦绣社区书记指定榆安区住房和城乡建设局主办；协调会议定：住建局牵头"
    )
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs][-2:] == ["case.dispatched", "case.dispatched"]
    assert outs[-1]["actor"]["subject"] == "jinxiu"
    queued = (
        await app.client.get("/manual-dispatch", headers=JINXIU, params={"limit": 200})
    ).json()
    assert [w for w in queued if w["case_id"] == str(event.case_id)] == []
    again = await app.client.post(url, headers=JINXIU, json={"department_id": "cg"})
    assert (again.status_code, again.json()["error"]["code"]) == (404, "not_waiting")


async def test_reject_only_before_sign_for(app):
    event, row = await routed(app, category="E0201")
    url = f"/assignments/{row['id']}"
    await sign_for(app, row["id"], XF)
    await refused(
        app,
        event.case_id,
        [
            (f"{url}/reject", XF, {"reason": "不是我们的"}, 409, "invalid_state"),
        ],
    )


async def test_transfer_hands_the_assignment_on_and_the_refusals_change_nothing(app):
    event, row = await routed(app, category="E0201")
    assert row["department_id"] == "xf"
    url = f"/assignments/{row['id']}"
    ok = {"to_department_id": "zj", "reason": "属违建，住建局处理"}
    await refused(
        app,
        event.case_id,
        [
            (
                f"{url}/transfer",
                XF,
                {"to_department_id": "nope", "reason": "x"},
                422,
                "unknown_department",
            ),
            (
                f"{url}/transfer",
                XF,
                {"to_department_id": "xf", "reason": "x"},
                422,
                "transfer_to_self",
            ),
            (
                f"{url}/transfer",
                XF,
                {"to_department_id": "zj", "reason": " "},
                422,
                "reason_required",
            ),
            (f"{url}/transfer", XF, {"to_department_id": "zj"}, 422, "validation_error"),
            (f"{url}/transfer", XF, {"reason": "x"}, 422, "validation_error"),
            (f"{url}/transfer", CG, ok, 403, "not_your_assignment"),
            (f"{url}/transfer", COMMAND, ok, 403, "role_not_allowed"),
        ],
    )
    await sign_for(app, row["id"], XF)

    resp = await app.client.post(f"{url}/transfer", json=ok, headers=XF)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["state"], resp.json()["transferred_to"]) == ("transferred", "zj")
    rows = await app.assignments(event.case_id)
    assert sorted((a["department_id"], a["state"], a["role"]) for a in rows) == [
        ("xf", "transferred", "lead"),
        ("zj", "dispatched", "lead"),
    ]
    new = next(a for a in rows if a["department_id"] == "zj")
    assert new["reason"] == "由榆安区消防救援大队转办：属违建，住建局处理"
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs] == [
        "case.dispatched",
        "case.signed_for",
        "case.transferred",
        "case.dispatched",
    ]
    transferred, dispatched = outs[2], outs[3]
    assert transferred["actor"]["subject"] == "xf-duty"
    assert transferred["payload"]["to_department_id"] == "zj"
    assert transferred["payload"]["reason"] == "属违建，住建局处理"
    assert dispatched["payload"]["assignment_id"] == str(new["id"])
    assert dispatched["payload"]["reason"].startswith("由榆安区消防救援大队转办")
    # The new department takes it from there; the old one can do nothing more.
    await sign_for(app, new["id"], ZJ)
    await refused(
        app,
        event.case_id,
        [
            (
                f"{url}/transfer",
                XF,
                {"to_department_id": "cg", "reason": "再转"},
                409,
                "invalid_state",
            ),
            (f"{url}/progress", XF, {"note": "进展"}, 409, "invalid_state"),
        ],
    )


async def test_transfer_to_a_department_already_on_the_case_is_a_conflict(app):
    event = whistled(category="E0201", departments=["xf", "zj"])  # a joint case
    await app.whistle(event)
    xf = next(a for a in await app.assignments(event.case_id) if a["department_id"] == "xf")
    await refused(
        app,
        event.case_id,
        [
            (
                f"/assignments/{xf['id']}/transfer",
                XF,
                {"to_department_id": "zj", "reason": "住建局处理"},
                409,
                "already_assigned",
            ),
        ],
    )


async def test_a_co_handler_does_not_resolve_a_case_whose_lead_pushed_it_back(app):
    """cg (lead) rejects and no candidate is left → the case waits for the community; zj's
    result alone must not resolve the case."""
    case_id, ids = await joint_case(app, "YA-J-2", GRID_BEIGUAN)
    rejected = await app.client.post(
        f"/assignments/{ids['cg']}/reject", json={"reason": "不属于本部门职责"}, headers=CG
    )
    assert rejected.status_code == 200, rejected.text
    assert (
        await app.val(
            "SELECT count(*) FROM manual_dispatch WHERE case_id = $1 AND cleared_at IS NULL",
            case_id,
        )
        == 1
    )
    await app.client.post(f"/assignments/{ids['zj']}/sign-for", json={}, headers=ZJ)
    done = await app.client.post(
        f"/assignments/{ids['zj']}/resolve", json={"result": "已完成"}, headers=ZJ
    )
    assert done.status_code == 200
    [row] = await app.rows(
        "SELECT payload FROM outbox WHERE key = $1 AND type = 'case.resolved'", str(case_id)
    )
    assert row["payload"]["payload"]["case_resolved"] is False


async def test_a_co_handlers_rejection_leaves_the_case_with_the_lead(app):
    event = whistled(category="E0403")
    await app.whistle(event)
    lead, co = await app.assignments(event.case_id)
    assert (await sign_and_resolve(app, lead["id"], HB)).status_code == 200
    resp = await app.client.post(
        f"/assignments/{co['id']}/reject", headers=CG, json={"reason": "噪声执法不属城管"}
    )
    assert resp.status_code == 200, resp.text
    rows = await app.assignments(event.case_id)
    assert sorted((a["department_id"], a["state"]) for a in rows) == [
        ("cg", "rejected"),
        ("hb", "resolved"),
    ]
    outs = await app.outbox(event.case_id)
    assert [o["type"] for o in outs][-2:] == ["case.rejected", "case.resolved"]
    # The lead had resolved; the co-handler's rejection was the last work: resolved now.
    last = outs[-1]
    assert (
        last["payload"]["department_id"],
        last["payload"]["case_resolved"],
        last["actor"]["subject"],
    ) == ("hb", True, "cg-duty")


async def test_a_named_lead_rejecting_passes_over_the_named_co_handler_to_the_rules(app):
    event = whistled(category="E0101", area_path=GRID_BEIGUAN, departments=["zj", "cg"])
    await app.whistle(event)
    lead, co = await app.assignments(event.case_id)
    assert (lead["department_id"], co["department_id"]) == ("zj", "cg")
    assert lead["basis"] == co["basis"] == "named"
    resp = await app.client.post(
        f"/assignments/{lead['id']}/reject", headers=ZJ, json={"reason": "非住建职责"}
    )
    assert resp.status_code == 200
    # cg already co-handles: it is not made lead a second time; nothing else fits → queue.
    assert (
        await app.val(
            "SELECT count(*) FROM manual_dispatch WHERE case_id = $1 AND cleared_at IS NULL",
            event.case_id,
        )
        == 1
    )
