"""Reading assignments and the departments' inboxes: the assigned department or an area holder
above the case, lists filtered to the reader's subtree, by state and priority, in three
orders. On real PostgreSQL and the real broker; every request carries a bearer token of a
demo user (or a made-up one), as in production."""

from __future__ import annotations

import uuid

from shared.auth import Role
from shared.contract import Priority
from tests.component import dispatch_fixtures
from tests.component.dispatch_fixtures import (
    ADMIN,
    CG,
    COMMAND,
    DONGHU,
    GRID_JINXIU,
    JINXIU,
    JT,
    SUPERVISOR,
    TAOYUAN,
    WANGFANG,
    XF,
    YINGZE,
    ZJ,
    routed,
    whistled,
)
from tests.helpers import as_user, bearer

app = dispatch_fixtures.app  # dispatch on real PostgreSQL and the broker, one for the module


async def test_reading_an_assignment_needs_its_department_or_an_area_above_it(app):
    _, row = await routed(app, category="E0202")  # xf, in 桃园社区 (迎泽街道)
    url = f"/assignments/{row['id']}"
    for who in (XF, TAOYUAN, YINGZE, COMMAND, SUPERVISOR, as_user("sup-yingze")):
        resp = await app.client.get(url, headers=who)
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == str(row["id"])
    for who, code in [
        (DONGHU, "out_of_scope"),  # a street outside the case's area
        (JINXIU, "out_of_scope"),  # another community
        (bearer(Role.STREET, "YA/YA0"), "out_of_scope"),  # a string prefix is not a parent
        (bearer(Role.SUPERVISOR, "YA/YA02"), "out_of_scope"),
        (CG, "not_your_assignment"),  # another department
        (WANGFANG, "role_not_allowed"),
        (ADMIN, "role_not_allowed"),
    ]:
        resp = await app.client.get(url, headers=who)
        assert (resp.status_code, resp.json()["error"]["code"]) == (403, code), resp.text
    outside = await app.client.get(url, headers={**DONGHU, "Accept-Language": "en"})
    assert "may not act on area YA/YA01/YA0101/YA0101-01" in outside.json()["error"]["message"]


async def test_department_lists_are_filtered_to_the_readers_subtree(app):
    taoyuan = whistled(category="E0102")  # cg, 桃园社区
    jinxiu = whistled(category="E0102", area_path=GRID_JINXIU)  # cg, 锦绣社区
    await app.whistle(taoyuan)
    await app.whistle(jinxiu)
    ours = {str(taoyuan.case_id): "taoyuan", str(jinxiu.case_id): "jinxiu"}

    async def seen_by(headers: dict[str, str]) -> set[str]:
        resp = await app.client.get(
            "/departments/cg/assignments", headers=headers, params={"limit": 200}
        )
        assert resp.status_code == 200, resp.text
        rows = resp.json()
        assert all(r["department_id"] == "cg" for r in rows)
        return {ours[r["case_id"]] for r in rows if r["case_id"] in ours}

    assert await seen_by(CG) == {"taoyuan", "jinxiu"}
    assert await seen_by(COMMAND) == {"taoyuan", "jinxiu"}
    assert await seen_by(SUPERVISOR) == {"taoyuan", "jinxiu"}
    assert await seen_by(TAOYUAN) == {"taoyuan"}
    assert await seen_by(YINGZE) == {"taoyuan"}
    assert await seen_by(as_user("sup-yingze")) == {"taoyuan"}
    assert await seen_by(JINXIU) == {"jinxiu"}
    assert await seen_by(DONGHU) == set()
    # Whole path segments only, and LIKE wildcards in a code match nothing but themselves.
    assert await seen_by(bearer(Role.STREET, "YA/YA0")) == set()
    assert await seen_by(bearer(Role.STREET, "YA/YA0_")) == set()
    assert await seen_by(bearer(Role.DISTRICT, "Y%")) == set()
    community_rows = (
        await app.client.get("/departments/cg/assignments", headers=TAOYUAN, params={"limit": 200})
    ).json()
    assert community_rows
    assert all(r["area_path"].startswith("YA/YA01/YA0101/") for r in community_rows)


async def test_reading_department_lists_and_unknowns(app):
    c = app.client
    for who, status, code in [
        (COMMAND, 404, "department_not_found"),
        (CG, 403, "not_your_assignment"),  # department staff see no other inbox, real or not
    ]:
        resp = await c.get("/departments/nope/assignments", headers=who)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code)
    for who, code in [
        (CG, "not_your_assignment"),
        (ZJ, "not_your_assignment"),
        (WANGFANG, "role_not_allowed"),
        (ADMIN, "role_not_allowed"),
    ]:
        resp = await c.get("/departments/xf/assignments", headers=who)
        assert (resp.status_code, resp.json()["error"]["code"]) == (403, code)
    assert (await c.get("/departments/zj/assignments", headers=ZJ)).status_code == 200
    assert (
        await c.get("/departments/cg/assignments", params={"state": "lost"}, headers=CG)
    ).status_code == 422
    assert (await c.get(f"/assignments/{uuid.uuid4()}", headers=XF)).status_code == 404
    assert (await c.get("/assignments/not-a-uuid", headers=XF)).status_code == 422
    resolved = (
        await c.get("/departments/xf/assignments", params={"state": "resolved"}, headers=XF)
    ).json()
    assert all(a["state"] == "resolved" and a["department_id"] == "xf" for a in resolved)


async def test_inbox_filters_by_priority_and_sorts_by_priority_deadline_or_dispatch(app):
    events = [
        whistled(category="C0201", priority=p)
        for p in (Priority.MINOR, Priority.URGENT, Priority.NORMAL)
    ]
    for e in events:
        await app.whistle(e)
    ours = {str(e.case_id) for e in events}
    by_case = {str(e.case_id): e.payload.priority.value for e in events}

    async def inbox(**params: str) -> list[str]:
        resp = await app.client.get(
            "/departments/jt/assignments", headers=JT, params={"limit": 200, **params}
        )
        assert resp.status_code == 200, resp.text
        return [by_case[a["case_id"]] for a in resp.json() if a["case_id"] in ours]

    assert await inbox() == ["normal", "urgent", "minor"]  # newest first
    assert await inbox(sort="dispatched_at") == ["normal", "urgent", "minor"]
    assert await inbox(sort="deadline") == ["minor", "urgent", "normal"]  # oldest first
    assert await inbox(sort="priority") == ["urgent", "normal", "minor"]
    assert await inbox(priority="minor") == ["minor"]
    assert await inbox(priority="urgent", state="dispatched") == ["urgent"]
    assert await inbox(priority="urgent", state="signed_for") == []
    for bad in ({"sort": "bogus"}, {"priority": "high"}):
        resp = await app.client.get("/departments/jt/assignments", headers=JT, params=bad)
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "validation_error")


async def test_a_department_finds_a_case_by_its_number(app):
    """The console opens /cases/<案件编号> for a clerk through this filter: one request, not
    pages of the department's history."""
    mine, other = whistled(category="E0102"), whistled(category="E0102")  # both to cg
    for e in (mine, other):
        await app.whistle(e)
    no = mine.payload.case_no

    async def found(headers: dict[str, str], department: str = "cg", **params: str) -> list:
        resp = await app.client.get(
            f"/departments/{department}/assignments", headers=headers, params=params
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    rows = await found(CG, case_no=no)
    assert [(r["case_id"], r["case_no"]) for r in rows] == [(str(mine.case_id), no)]
    assert [r["case_id"] for r in await found(CG, case_no=f" {no.lower()} ")] == [str(mine.case_id)]
    assert await found(CG, case_no=no, state="resolved") == []
    assert await found(CG, case_no="YA20990101-9999") == []
    assert await found(JINXIU, case_no=no) == []  # outside that community's subtree
    assert [r["case_id"] for r in await found(TAOYUAN, case_no=no)] == [str(mine.case_id)]
    assert await found(XF, department="xf", case_no=no) == []  # not xf's case
    resp = await app.client.get(
        "/departments/cg/assignments", headers=CG, params={"case_no": "X" * 41}
    )
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "validation_error")
