"""The department clerk's screens (职能部门) in a real browser on the real stack: the deep link
a department's webhook receives opens that very assignment after sign-in; the clerk signs for
it (报到), notes progress and resolves it with an after-photo (办结); the inbox (待办) shows a
newly whistled case live, without a reload, and marks its message read."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import expect
from standardwebhooks import Webhook

from tests.e2e.cases import as_, png, report_and_whistle
from tests.e2e.console import (
    DEMO_PASSWORD,
    assert_accessible,
    assert_cjk_rendered,
    new_context,
    screenshot,
)
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of a 24-byte test key
HOOK = "/duty-cg-console"
SLOW = 30_000  # ms: report → whistle → dispatch → notify → browser crosses four processes


async def cg_assignment(http: httpx.AsyncClient, stack, case_id: str) -> dict | None:
    rows = (
        await http.get(
            f"{stack.url('dispatch')}/departments/cg/assignments",
            params={"limit": 200},
            headers=as_(stack, "cg-duty"),
        )
    ).json()
    return next((a for a in rows if a["case_id"] == case_id), None)


async def test_a_deep_link_opens_the_assignment_and_the_clerk_resolves_it(
    stack, browser, console_url, webhooks
):
    async with httpx.AsyncClient(timeout=15) as http:
        # the duty desk of 城管 reads its messages on a webhook (for this test only: the other
        # tests on this stack expect its preferences as they were)
        desk = f"{stack.url('notify')}/recipients/duty-cg/preferences"
        before = (await http.get(desk, headers=as_(stack, "admin"))).raise_for_status().json()
        prefs = {
            "channels": [
                {"kind": "webhook", "settings": {"url": webhooks.url(HOOK), "secret": SECRET}}
            ]
        }
        resp = await http.put(desk, json=prefs, headers=as_(stack, "admin"))
        assert resp.status_code == 200, resp.text

        case = await report_and_whistle(http, stack, "单元门口乱堆装修垃圾，堵塞通道")
        assignment = await eventually(
            lambda: cg_assignment(http, stack, case["id"]),
            message="dispatch assigned the case to cg",
        )

        def dispatched_messages():
            hook = Webhook(SECRET)
            found = []
            for r in webhooks.received(HOOK):
                hook.verify(r["body"], {k.lower(): v for k, v in r["headers"].items()})
                m = r["json"]
                if m["type"] == "case.dispatched" and m["data"]["case_id"] == case["id"]:
                    found.append(m)
            return found

        try:
            [message] = await eventually(
                lambda: asyncio.sleep(0, dispatched_messages()),
                message="the duty desk's webhook received the dispatch",
            )
        finally:
            restore = {
                k: before[k]
                for k in ("channels", "locale", "quiet_hours", "muted_events")
                if k in before
            }
            resp = await http.put(desk, json=restore, headers=as_(stack, "admin"))
            assert resp.status_code == 200, resp.text

    # The link as the clerk reads it at the end of the message: absolute, on the console,
    # at exactly this assignment.
    found = re.search(r"详情：(\S+)$", message["data"]["text"]["zh"])
    assert found, message["data"]["text"]["zh"]
    link = found.group(1)
    assert link == message["data"]["link"] and message["data"]["text"]["en"].endswith(link)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == console_url
    assert parts.path == f"/assignments/{assignment['id']}"

    # A fresh browser follows the link: the sign-in page first, then that very assignment.
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(link)
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fassignments%2F"))
    await page.get_by_label("用户名").fill("cg-duty")
    await page.get_by_label("密码").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page).to_have_url(link)
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"派单 {case['case_no']}")
    facts = page.locator("dl.facts")
    await expect(facts).to_contain_text("乱堆物料")  # names, not codes
    await expect(facts).to_contain_text("桃园社区第3网格")
    await expect(facts).to_contain_text("桃园小区5号楼2单元")
    await expect(facts).to_contain_text("待报到")

    # 报到
    await page.get_by_role("button", name="报到", exact=True).click()
    await expect(page.get_by_text("已报到，开始办理")).to_be_visible()
    await expect(facts).to_contain_text("办理中")

    # an empty progress note is refused in words, and nothing is sent
    progress = page.locator(
        "section", has=page.get_by_role("heading", name="办理进展", exact=True)
    ).filter(has=page.get_by_role("button", name="提交进展"))
    await progress.get_by_role("button", name="提交进展").click()
    await expect(progress.get_by_role("alert")).to_have_text("请填写办理进展")
    note = "已到场，正在组织清运"
    await page.get_by_label("进展说明").fill(note)
    await page.get_by_role("button", name="提交进展").click()
    await expect(page.get_by_text("已记录办理进展")).to_be_visible()
    await expect(page.locator("ol.timeline")).to_contain_text(note)
    await expect(page.get_by_label("进展说明")).to_have_value("")

    # 办结 with an after-photo: the photo is uploaded first, then cited in the result
    await page.get_by_label("办理结果").fill("装修垃圾已全部清运，通道恢复畅通")
    await page.get_by_label("整改后照片").set_input_files(
        {"name": "after.png", "mimeType": "image/png", "buffer": png((40, 140, 80))}
    )
    await expect(page.get_by_role("img", name="整改后照片 1")).to_be_visible()
    await assert_cjk_rendered(page, "案件信息")
    await assert_accessible(page, "department-assignment")
    await screenshot(page, "department-assignment")
    await page.get_by_role("button", name="上传照片并办结").click()
    await expect(page.get_by_text("已办结，等待社区核查")).to_be_visible(timeout=SLOW)
    await expect(facts).to_contain_text("已办结")
    await expect(facts).to_contain_text("装修垃圾已全部清运")
    await expect(page.get_by_text("办结引用")).to_be_visible()

    async with httpx.AsyncClient(timeout=15) as http:
        got = (
            await http.get(
                f"{stack.url('dispatch')}/assignments/{assignment['id']}",
                headers=as_(stack, "cg-duty"),
            )
        ).json()
        assert got["state"] == "resolved", got
        assert got["result"] == "装修垃圾已全部清运，通道恢复畅通"
        assert [n["note"] for n in got["notes"]] == [note]
        photos = (
            await http.get(
                f"{stack.url('intake')}/cases/{case['id']}/photos", headers=as_(stack, "cg-duty")
            )
        ).json()
        after = [p for p in photos if p["kind"] == "after"]
        assert len(after) == 1 and after[0]["uploaded_by_department"] == "cg"
        assert got["photo_ids"] == [after[0]["id"]]
    await context.close()


async def test_the_inbox_shows_a_new_dispatch_live_and_marks_its_message_read(
    stack, browser, console_url
):
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(console_url + "/inbox")
    await page.get_by_label("用户名").fill("cg-duty")
    await page.get_by_label("密码").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("待办 · 榆安区城市管理局")
    await expect(page.get_by_role("status").filter(has_text="实时更新中")).to_be_visible(
        timeout=SLOW
    )
    await page.evaluate("window.__sameDocument = true")  # gone if the page were reloaded

    async with httpx.AsyncClient(timeout=15) as http:
        case = await report_and_whistle(http, stack, "楼道口堆放建筑垃圾，影响通行")
        assignment = await eventually(
            lambda: cg_assignment(http, stack, case["id"]),
            message="dispatch assigned the case to cg",
        )

    # the row arrives on its own, with names, role, state and the deadline's clock
    row = page.get_by_role("row").filter(
        has=page.get_by_role("link", name=case["case_no"], exact=True)
    )
    await expect(row).to_be_visible(timeout=SLOW)
    for text in ("乱堆物料", "迎泽街道 › 桃园社区 › 桃园社区第3网格", "主办", "待报到"):
        await expect(row).to_contain_text(text)
    await expect(row).to_contain_text("报到时限", timeout=SLOW)  # once tracking runs the clock
    await expect(
        page.get_by_text(f"案件{case['case_no']}已派至榆安区城市管理局").first
    ).to_be_visible()
    assert await page.evaluate("window.__sameDocument === true")

    # the state filter: waiting for 报到 shows it, resolved ones do not
    await page.get_by_label("状态筛选").select_option(label="已办结")
    await expect(page.get_by_role("link", name=case["case_no"], exact=True)).to_have_count(0)
    await page.get_by_label("状态筛选").select_option(label="待报到")
    await expect(page.get_by_role("link", name=case["case_no"], exact=True)).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/inbox\?state=dispatched$"))

    # its message among the unread ones, opened straight at the assignment, then marked read
    messages = page.locator("section.dept-messages")
    item = messages.get_by_role("listitem").filter(
        has_text=f"【派单】案件{case['case_no']}已派至榆安区城市管理局"
    )
    await expect(item).to_be_visible()
    await expect(item.get_by_role("link", name=re.compile("^查看"))).to_have_attribute(
        "href", f"/assignments/{assignment['id']}"
    )
    await assert_accessible(page, "department-inbox")
    await screenshot(page, "department-inbox")
    await item.get_by_role("button", name=re.compile("^标为已读")).click()
    await expect(item).to_have_count(0)
    async with httpx.AsyncClient(timeout=15) as http:
        inbox = (
            await http.get(
                f"{stack.url('notify')}/recipients/duty-cg/inbox",
                params={"limit": 200},
                headers=as_(stack, "cg-duty"),
            )
        ).json()
    mine = [m for m in inbox if m["case_id"] == case["id"] and m["type"] == "case.dispatched"]
    assert len(mine) == 1 and mine[0]["read_at"] is not None

    # and the row takes the clerk to the assignment
    await page.get_by_role("link", name=case["case_no"], exact=True).click()
    await expect(page).to_have_url(f"{console_url}/assignments/{assignment['id']}")
    await expect(page.get_by_role("button", name="报到", exact=True)).to_be_visible()
    await context.close()
