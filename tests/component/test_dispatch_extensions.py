"""Extension requests (延期) on dispatch: the department asks after 报到, a supervisor of the
case's area approves (possibly fewer days) or refuses; department staff and area holders
list and read them. On real PostgreSQL and the real broker; every request carries a bearer
token of a demo user (or a made-up one), as in production."""

from __future__ import annotations

from shared.auth import Role
from tests.component import dispatch_fixtures
from tests.component.dispatch_fixtures import (
    CG,
    COMMAND,
    DONGHU,
    SUPERVISOR,
    XF,
    YINGZE,
    routed,
    sign_for,
)
from tests.helpers import bearer

app = dispatch_fixtures.app  # dispatch on real PostgreSQL and the broker, one for the module


async def test_an_extension_is_asked_for_and_a_supervisor_decides(app):
    event, a = await routed(app, category="E0201")
    url = f"/assignments/{a['id']}/extensions"
    early = await app.client.post(url, headers=XF, json={"days": 3, "reason": "待材料"})
    assert (early.status_code, early.json()["error"]["code"]) == (409, "invalid_state")
    await sign_for(app, a["id"], XF)
    for who, body, status in [
        (XF, {"days": 0, "reason": "x"}, 422),
        (XF, {"days": 3, "reason": "  "}, 422),
        (CG, {"days": 3, "reason": "x"}, 403),
        (SUPERVISOR, {"days": 3, "reason": "x"}, 403),
    ]:
        assert (await app.client.post(url, headers=who, json=body)).status_code == status
    asked = await app.client.post(url, headers=XF, json={"days": 3, "reason": "需更换消防设施"})
    assert asked.status_code == 201, asked.text
    req = asked.json()
    assert (req["state"], req["state_label"], req["requested_by"]) == (
        "pending",
        "待审批",
        "xf-duty",
    )
    twice = await app.client.post(url, headers=XF, json={"days": 1, "reason": "再申请"})
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "extension_pending")

    pending = (
        await app.client.get(
            "/extension-requests", headers=SUPERVISOR, params={"state": "pending", "limit": 200}
        )
    ).json()
    assert req["id"] in [p["id"] for p in pending]
    elsewhere = bearer(Role.SUPERVISOR, "YA/YA03")
    assert req["id"] not in [
        p["id"]
        for p in (
            await app.client.get("/extension-requests", headers=elsewhere, params={"limit": 200})
        ).json()
    ]
    own = (await app.client.get("/extension-requests", headers=XF, params={"limit": 200})).json()
    assert req["id"] in [p["id"] for p in own]
    assert req["id"] not in [
        p["id"]
        for p in (
            await app.client.get("/extension-requests", headers=CG, params={"limit": 200})
        ).json()
    ]

    decide = f"/extension-requests/{req['id']}"
    for who, path, body, status in [
        (elsewhere, "approve", {}, 403),
        (XF, "approve", {}, 403),
        (COMMAND, "approve", {}, 403),
        (SUPERVISOR, "approve", {"days": 4}, 422),
        (SUPERVISOR, "refuse", {"comment": ""}, 422),
    ]:
        resp = await app.client.post(f"{decide}/{path}", headers=who, json=body)
        assert resp.status_code == status, (path, resp.text)
    approved = await app.client.post(
        f"{decide}/approve", headers=SUPERVISOR, json={"days": 2, "comment": "同意延期两个工作日"}
    )
    assert approved.status_code == 200, approved.text
    assert (
        approved.json()["state"],
        approved.json()["granted_days"],
        approved.json()["decided_by"],
    ) == ("approved", 2, "supervisor")
    again = await app.client.post(f"{decide}/refuse", headers=SUPERVISOR, json={"comment": "x"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "extension_decided")
    outs = [o for o in await app.outbox(event.case_id) if o["type"].startswith("case.extension")]
    assert [(o["type"], o["actor"]["subject"]) for o in outs] == [
        ("case.extension_requested", "xf-duty"),
        ("case.extension_decided", "supervisor"),
    ]
    assert (outs[1]["payload"]["approved"], outs[1]["payload"]["days"]) == (True, 2)
    detail = (await app.client.get(f"/assignments/{a['id']}", headers=XF)).json()
    # notify names the department by its name, not its id
    assert [o["payload"]["department_name"] for o in outs] == [detail["department_name"]] * 2
    assert detail["department_name"].startswith("榆安区")
    assert [e["state"] for e in detail["extensions"]] == ["approved"]

    # A second request can be refused, with a reason.
    second = (await app.client.post(url, headers=XF, json={"days": 5, "reason": "再延"})).json()
    refusal = await app.client.post(
        f"/extension-requests/{second['id']}/refuse",
        headers=SUPERVISOR,
        json={"comment": "理由不充分"},
    )
    assert (refusal.json()["state"], refusal.json()["granted_days"]) == ("refused", 0)
    got = await app.client.get(f"/extension-requests/{second['id']}", headers=YINGZE)
    assert got.status_code == 200 and got.json()["comment"] == "理由不充分"
    assert (
        await app.client.get(f"/extension-requests/{second['id']}", headers=DONGHU)
    ).status_code == 403
