"""A joint case (吹哨召集多个部门) on the real embedded stack: the community names two
departments; the lead pushes it back (退单) and routing finds the next; the co-handler hands
its part on (转办); the lead asks for more time (延期) and a supervisor grants part of it;
the case is resolved only when every department has reported, with after-photos; the
on-site check fails (返工) and the same departments redo it; then it closes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.e2e.test_loop import as_, report
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 32), (90, 140, 60)).save(buf, "JPEG")
    return buf.getvalue()


async def test_a_joint_case_with_a_rejection_a_transfer_an_extension_and_a_rework(stack, http):
    intake, dispatch, tracking = stack.url("intake"), stack.url("dispatch"), stack.url("tracking")
    worker, community = as_(stack, "wangfang"), as_(stack, "taoyuan")
    jt, zj, cg, jd = (as_(stack, f"{d}-duty") for d in ("jt", "zj", "cg", "jd-yz"))
    supervisor = as_(stack, "sup-yingze")

    body = report("YA0101-03", "C0503", description="5号楼外墙瓷砖松动，有脱落伤人隐患")
    case_id = (await http.post(f"{intake}/cases", json=body, headers=worker)).json()["id"]
    # 社区吹哨: the community convenes 交通局 (to lead: the sidewalk must be closed) and 城管.
    whistle = await http.post(
        f"{intake}/cases/{case_id}/whistle",
        headers=community,
        json={"departments": ["jt", "cg"], "note": "人行道需临时封闭"},
    )
    assert whistle.status_code == 200, whistle.text

    async def assignments() -> list[dict]:
        rows = []
        for dept, who in (("jt", jt), ("zj", zj), ("cg", cg), ("jd-yz", jd)):
            listed = (
                await http.get(
                    f"{dispatch}/departments/{dept}/assignments", headers=who, params={"limit": 200}
                )
            ).json()
            rows += [a for a in listed if a["case_id"] == case_id]
        return rows

    async def open_at(dept: str) -> dict | None:
        return next(
            (
                a
                for a in await assignments()
                if a["department_id"] == dept and a["state"] == "dispatched"
            ),
            None,
        )

    lead = await eventually(lambda: open_at("jt"), message="jt leads (named first)")
    co = await open_at("cg")
    assert (lead["role"], lead["basis"], co["role"]) == ("lead", "named", "co")

    # 退单: 交通局 pushes the lead back; the rule for 外墙脱落隐患 (住建局 leads) decides next;
    # 城管, already co-handling, is not convened twice.
    rejected = await http.post(
        f"{dispatch}/assignments/{lead['id']}/reject",
        headers=jt,
        json={"reason": "外墙安全不属交通职责，可配合封闭人行道"},
    )
    assert rejected.status_code == 200, rejected.text
    new_lead = await eventually(lambda: open_at("zj"), message="re-routed to zj")
    assert (new_lead["role"], new_lead["basis"]) == ("lead", "rule")
    assert "退单后改派" in new_lead["reason"] and "榆安区交通运输局退单" in new_lead["reason"]

    # 转办: 城管 hands its part on to the street office, which signs for it.
    moved = await http.post(
        f"{dispatch}/assignments/{co['id']}/transfer",
        headers=cg,
        json={"to_department_id": "jd-yz", "reason": "需街道协调业主搭设脚手架"},
    )
    assert moved.status_code == 200, moved.text
    street = await eventually(lambda: open_at("jd-yz"), message="transferred to the street")
    assert (street["role"], street["basis"]) == ("co", "transfer")

    for a, who in ((new_lead, zj), (street, jd)):
        signed = await http.post(f"{dispatch}/assignments/{a['id']}/sign-for", headers=who)
        assert signed.status_code == 200, signed.text

    # 延期: 住建局 asks for three working days; the street's supervisor grants two.
    asked = await http.post(
        f"{dispatch}/assignments/{new_lead['id']}/extensions",
        headers=zj,
        json={"days": 3, "reason": "需联系专业高空作业队"},
    )
    assert asked.status_code == 201, asked.text
    granted = await http.post(
        f"{dispatch}/extension-requests/{asked.json()['id']}/approve",
        headers=supervisor,
        json={"days": 2, "comment": "同意两个工作日"},
    )
    assert granted.status_code == 200 and granted.json()["granted_days"] == 2

    # 办结 with after-photos: 住建局 uploads its photo to the case, then cites it.
    async def upload():  # intake learns of zj's assignment from dispatch's event
        resp = await http.post(
            f"{intake}/cases/{case_id}/photos",
            params={"kind": "after"},
            headers=zj,
            files={"file": ("after.jpg", _jpeg(), "image/jpeg")},
        )
        assert resp.status_code in (201, 403), resp.text
        return resp if resp.status_code == 201 else None

    photo_id = (await eventually(upload, message="zj's after-photo accepted")).json()["id"]

    async def resolve_citing_photo():  # dispatch learns of the photo from intake's event
        resp = await http.post(
            f"{dispatch}/assignments/{new_lead['id']}/resolve",
            headers=zj,
            json={"result": "已拆除松动瓷砖并加固", "photo_ids": [photo_id]},
        )
        return resp if resp.status_code == 200 else None

    resolved = await eventually(resolve_citing_photo, message="zj resolved citing its photo")
    assert resolved.json()["photo_ids"] == [photo_id]

    async def status() -> str:
        return (await http.get(f"{intake}/cases/{case_id}", headers=worker)).json()["status"]

    assert await status() != "resolved"  # the street office has not reported yet
    done = await http.post(
        f"{dispatch}/assignments/{street['id']}/resolve",
        headers=jd,
        json={"result": "已协调业主搭设脚手架并封闭人行道"},
    )
    assert done.status_code == 200, done.text
    await eventually(lambda: _is(status, "resolved"), message="resolved once all reported")

    # 返工: the on-site check fails; both departments that reported get it back.
    back = await http.post(
        f"{intake}/cases/{case_id}/rework",
        headers=community,
        json={"reason": "北侧仍有两块瓷砖松动"},
    )
    assert back.status_code == 200, back.text

    async def reworked() -> list[dict] | None:
        rows = [a for a in await assignments() if a["state"] == "dispatched"]
        return rows if len(rows) == 2 else None

    again = await eventually(reworked, message="both departments got the rework")
    assert sorted(a["department_id"] for a in again) == ["jd-yz", "zj"]
    assert all(
        a["basis"] == "rework" and a["reason"].startswith("返工：北侧仍有两块瓷砖松动")
        for a in again
    )
    for a in again:
        who = zj if a["department_id"] == "zj" else jd
        assert (
            await http.post(f"{dispatch}/assignments/{a['id']}/sign-for", headers=who)
        ).status_code == 200
        assert (
            await http.post(
                f"{dispatch}/assignments/{a['id']}/resolve",
                headers=who,
                json={"result": "已全部处理"},
            )
        ).status_code == 200
    await eventually(lambda: _is(status, "resolved"), message="resolved again")
    closed = await http.post(
        f"{intake}/cases/{case_id}/close", json={"note": "复查通过"}, headers=community
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"

    # The case history keeps who did what, in order.
    wanted = [
        "case.rejected",
        "case.transferred",
        "case.extension_requested",
        "case.extension_decided",
    ]

    async def history():
        resp = await http.get(
            f"{tracking}/cases/{case_id}/timeline", headers=as_(stack, "supervisor")
        )
        if resp.status_code != 200:
            return None
        events = resp.json()["events"]
        types = [e["type"] for e in events if e["producer"] != "tracking"]
        return events if all(t in types for t in wanted) and types[-1] == "case.closed" else None

    events = await eventually(history, timeout=45, message="the joint case's history")
    actors = {e["type"]: e["actor"]["subject"] for e in events if e["type"] in wanted}
    assert actors == {
        "case.rejected": "jt-duty",
        "case.transferred": "cg-duty",
        "case.extension_requested": "zj-duty",
        "case.extension_decided": "sup-yingze",
    }


async def _is(status, wanted: str) -> bool:
    return await status() == wanted
