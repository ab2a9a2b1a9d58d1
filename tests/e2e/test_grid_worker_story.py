"""The whole grid-worker story on the real stack (issue 4): report, whistle, the department
reports in and resolves, the on-site check fails (返工) and the case goes back to the same
department, passes the second time, is rated (群众评单), reopened, and fixed on the spot."""

from __future__ import annotations

import pytest

from tests.e2e.test_loop import as_, report
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


async def status_of(http, stack, case_id: str, headers: dict) -> str:
    return (await http.get(f"{stack.url('intake')}/cases/{case_id}", headers=headers)).json()[
        "status"
    ]


async def test_rework_then_pass_rate_reopen_and_fix_on_spot(stack, http):
    intake, dispatch, tracking = stack.url("intake"), stack.url("dispatch"), stack.url("tracking")
    worker, community, cg = as_(stack, "wangfang"), as_(stack, "taoyuan"), as_(stack, "cg-duty")
    body = report("YA0101-04", "E0102", description="小区东门垃圾桶满溢，垃圾散落")
    case = (await http.post(f"{intake}/cases", json=body, headers=worker)).json()
    case_id = case["id"]
    assert case["possible_duplicates"] == [] or all(
        d["id"] != case_id for d in case["possible_duplicates"]
    )
    assert (
        await http.post(f"{intake}/cases/{case_id}/whistle", json={}, headers=community)
    ).status_code == 200

    async def handle_once() -> str:
        async def open_assignment():
            rows = (
                await http.get(
                    f"{dispatch}/departments/cg/assignments",
                    params={"state": "dispatched"},
                    headers=cg,
                )
            ).json()
            return next((a for a in rows if a["case_id"] == case_id), None)

        a = await eventually(open_assignment, message="an open assignment at cg")
        assert (
            await http.post(f"{dispatch}/assignments/{a['id']}/sign-for", json={}, headers=cg)
        ).status_code == 200
        assert (
            await http.post(
                f"{dispatch}/assignments/{a['id']}/resolve", json={"result": "已清运"}, headers=cg
            )
        ).status_code == 200

        async def resolved():
            return await status_of(http, stack, case_id, worker) == "resolved"

        await eventually(resolved, message="intake saw the result")
        return a["id"]

    first = await handle_once()
    # 核查不通过 → 返工: back to the same department, as a rework of the first assignment.
    sent_back = await http.post(
        f"{intake}/cases/{case_id}/rework",
        json={"reason": "垃圾未清理干净，地面仍有污渍"},
        headers=community,
    )
    assert sent_back.status_code == 200 and sent_back.json()["status"] == "rework"
    second = await handle_once()
    assert second != first
    again = (await http.get(f"{dispatch}/assignments/{second}", headers=cg)).json()
    assert again["reason"].startswith("返工：垃圾未清理干净")

    closed = await http.post(
        f"{intake}/cases/{case_id}/close", json={"note": "复查通过"}, headers=community
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    rated = await http.post(
        f"{intake}/cases/{case_id}/rating", json={"score": 4, "comment": "处理及时"}, headers=worker
    )
    assert rated.status_code == 201
    twice = await http.post(f"{intake}/cases/{case_id}/rating", json={"score": 5}, headers=worker)
    assert twice.status_code == 409

    # The problem comes back: reopen, and this time the grid worker fixes it on the spot.
    reopened = await http.post(
        f"{intake}/cases/{case_id}/reopen", json={"reason": "垃圾再次满溢"}, headers=worker
    )
    assert reopened.status_code == 200 and reopened.json()["status"] == "reopened"
    fixed = await http.post(
        f"{intake}/cases/{case_id}/fix-on-spot", json={"note": "联系保洁员现场清运"}, headers=worker
    )
    assert fixed.status_code == 200 and fixed.json()["status"] == "closed"

    expected = [
        "case.reported",
        "case.whistled",
        "case.dispatched",
        "case.signed_for",
        "case.resolved",
        "case.rework_requested",
        "case.dispatched",
        "case.signed_for",
        "case.resolved",
        "case.closed",
        "case.rated",
        "case.reopened",
        "case.closed",
    ]

    async def timeline():
        resp = await http.get(
            f"{tracking}/cases/{case_id}/timeline", headers=as_(stack, "supervisor")
        )
        if resp.status_code != 200:
            return None
        data = resp.json()
        types = [e["type"] for e in data["events"] if e["producer"] != "tracking"]
        return data if types == expected else None

    data = await eventually(timeline, timeout=45, message="the whole story on the timeline")
    assert data["case"]["status"] == "closed"
    reworked = [e for e in data["events"] if e["type"] == "case.dispatched"]
    assert [e["payload"].get("rework") for e in reworked] == [False, True]


async def test_one_time_rating_link_for_the_resident(stack, http):
    intake = stack.url("intake")
    worker = as_(stack, "wangfang")
    case = (
        await http.post(f"{intake}/cases", json=report("YA0101-03", "E0103"), headers=worker)
    ).json()
    await http.post(
        f"{intake}/cases/{case['id']}/fix-on-spot", json={"note": "已清理"}, headers=worker
    )
    link = await http.post(f"{intake}/cases/{case['id']}/rating-link", headers=worker)
    assert link.status_code == 201
    page = await http.get(f"{intake}{link.json()['path']}")  # the resident: no account
    assert page.status_code == 200 and page.json()["case_no"] == case["case_no"]
    assert (await http.post(f"{intake}{link.json()['path']}", json={"score": 5})).status_code == 201
    used = await http.post(f"{intake}{link.json()['path']}", json={"score": 1})
    assert used.status_code == 404 and used.json()["error"]["code"] == "rating_link_invalid"
