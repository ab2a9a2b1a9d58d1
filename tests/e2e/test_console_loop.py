"""The whole loop clicked through in the console by four people in four browsers, as the issue
tells it: 网格发现 (a grid worker reports with a photo on his phone) → 社区吹哨 (the community
whistles) → 部门报到 (the department signs for it and resolves it with an after-photo, its
inbox updating live) → 核查结案 (the community verifies and closes) → 群众评单 (the resident
rates through the one-time link, without an account). What the screens say is checked against
the services afterwards."""

from __future__ import annotations

import io
import re
import uuid

import httpx
import pytest
from PIL import Image
from playwright.async_api import expect

from tests.e2e.console import (
    assert_cjk_rendered,
    assert_offline,
    new_context,
    screenshot,
    sign_in,
)
from tests.helpers import eventually

pytestmark = pytest.mark.e2e
SLOW = 45_000  # ms: one step crosses the gateway, three services and the broker


def picture(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(out, format="JPEG")
    return out.getvalue()


async def test_four_people_take_a_case_around_the_loop(stack, browser, console_url):
    worker = await new_context(browser, phone=True)
    community = await new_context(browser)
    department = await new_context(browser)
    resident = await new_context(browser, phone=True)
    try:
        # The department's clerk has his inbox open from the start: the case must come to him.
        clerk = await sign_in(department, console_url, "cg-duty", start="/inbox")
        await expect(clerk.get_by_role("status").filter(has_text="实时更新中")).to_be_visible(
            timeout=SLOW
        )

        # 1. 网格发现 — on the phone, with a photo.
        phone = await sign_in(worker, console_url, "wangfang", start="/report")
        description = f"小区北门人行道堆放建筑垃圾，行人绕行 {uuid.uuid4().hex[:6]}"
        await phone.get_by_role("combobox", name=re.compile("^网格")).select_option(
            label="桃园社区第3网格"
        )
        await phone.get_by_label("大类").select_option(label="事件·市容环境")
        await phone.get_by_label("小类").select_option(label="乱堆物料")
        await phone.get_by_label("问题描述").fill(description)
        await phone.get_by_label("详细地址").fill("桃园小区北门")
        await phone.get_by_label(re.compile("现场照片")).set_input_files(
            files=[
                {"name": "before.jpg", "mimeType": "image/jpeg", "buffer": picture((150, 90, 40))}
            ]
        )
        await phone.get_by_role("button", name="提交上报").click()
        await expect(phone.get_by_role("heading", name="已上报")).to_be_visible(timeout=SLOW)
        await expect(phone.locator(".upload.done")).to_have_count(1, timeout=SLOW)
        case_no = (await phone.locator(".case-no-big strong").inner_text()).strip()
        href = await phone.get_by_role("link", name=re.compile("查看案件详情")).get_attribute(
            "href"
        )
        case_id = href.rsplit("/", 1)[1]
        await screenshot(phone, "loop-1-worker-reported")

        # 2. 社区吹哨 — the community finds it among its cases and whistles it.
        desk = await sign_in(community, console_url, "taoyuan", start="/cases")
        await desk.get_by_label("搜索", exact=True).fill(case_no)
        await desk.get_by_role("button", name="搜索", exact=True).click()
        await desk.get_by_role("link", name=case_no).click()
        await expect(desk.get_by_role("heading", name=f"案件 {case_no}", level=1)).to_be_visible()
        await expect(desk.locator(".cw-facts").get_by_text(description)).to_be_visible()
        await desk.get_by_label("吹哨说明").fill("请城管尽快清运")
        await desk.get_by_role("button", name="吹哨", exact=True).click()
        await expect(desk.locator(".cw-facts").get_by_text("已派单")).to_be_visible(timeout=SLOW)
        await screenshot(desk, "loop-2-community-whistled")

        # 3. 部门报到 — the case arrived in the clerk's open inbox without a reload.
        row = clerk.get_by_role("row").filter(
            has=clerk.get_by_role("link", name=case_no, exact=True)
        )
        await expect(row).to_be_visible(timeout=SLOW)
        await expect(row).to_contain_text("待报到")
        await screenshot(clerk, "loop-3-department-inbox")
        await row.get_by_role("link", name=case_no, exact=True).click()
        await expect(clerk.get_by_role("heading", level=1)).to_have_text(f"派单 {case_no}")
        await expect(clerk.locator("dl.facts")).to_contain_text("桃园社区第3网格")
        await clerk.get_by_role("button", name="报到", exact=True).click()
        await expect(clerk.get_by_text("已报到，开始办理")).to_be_visible(timeout=SLOW)
        await clerk.get_by_label("办理结果").fill("建筑垃圾已清运，人行道已恢复通行")
        await clerk.get_by_label("整改后照片").set_input_files(
            {"name": "after.jpg", "mimeType": "image/jpeg", "buffer": picture((60, 160, 80))}
        )
        await clerk.get_by_role("button", name="上传照片并办结").click()
        await expect(clerk.get_by_text("已办结，等待社区核查")).to_be_visible(timeout=SLOW)
        await screenshot(clerk, "loop-4-department-resolved")

        # 4. 核查结案 — back to the community: verified on site and closed.
        await desk.reload()
        facts = desk.locator(".cw-facts")
        await expect(facts.get_by_text("已办结待核查")).to_be_visible(timeout=SLOW)
        await desk.get_by_label("核查意见").fill("现场核查，人行道畅通")
        await desk.get_by_role("button", name="核查通过，结案").click()
        await expect(facts.get_by_text("已结案", exact=True)).to_be_visible(timeout=SLOW)
        await desk.get_by_role("button", name="生成评价链接").click()
        await expect(
            desk.get_by_role("img", name=f"评价链接二维码（案件 {case_no}）")
        ).to_be_visible()
        link = await desk.get_by_label("评价链接地址").input_value()
        assert link.startswith(console_url + "/ratings/")
        await screenshot(desk, "loop-5-community-closed")

        # 5. 群众评单 — the resident opens the link on his phone, no account.
        page = await resident.new_page()
        await page.goto(link)
        await expect(page.get_by_text(case_no)).to_be_visible()
        await assert_cjk_rendered(page, "评价办理结果")
        await page.get_by_label("5星，非常满意").check()
        await page.get_by_label("意见建议（选填）").fill("处理及时")
        await page.get_by_role("button", name="提交评价").click()
        await expect(page.get_by_text("感谢您的评价！")).to_be_visible()
        await screenshot(page, "loop-6-resident-rated")

        # What the screens said is what the services hold.
        async with httpx.AsyncClient(timeout=10) as http:
            supervisor = {"Authorization": f"Bearer {stack.mint_demo_token('supervisor')}"}
            taoyuan = {"Authorization": f"Bearer {stack.mint_demo_token('taoyuan')}"}
            case = (
                await http.get(f"{stack.url('intake')}/cases/{case_id}", headers=taoyuan)
            ).json()
            assert case["status"] == "closed" and case["case_no"] == case_no
            photos = (
                await http.get(f"{stack.url('intake')}/cases/{case_id}/photos", headers=taoyuan)
            ).json()
            assert sorted(p["kind"] for p in photos) == ["after", "before"]

            async def rated():
                timeline = (
                    await http.get(
                        f"{stack.url('tracking')}/cases/{case_id}/timeline", headers=supervisor
                    )
                ).json()
                types = [e["type"] for e in timeline["events"]]
                return types if "case.rated" in types else None

            types = await eventually(rated, message="the rating never reached the timeline")
        for step in (
            "case.reported",
            "case.whistled",
            "case.dispatched",
            "case.signed_for",
            "case.resolved",
            "case.closed",
            "case.rated",
        ):
            assert step in types, (step, types)
        assert (
            types.index("case.reported")
            < types.index("case.signed_for")
            < types.index("case.closed")
            < types.index("case.rated")
        )
        for context in (worker, community, department, resident):
            assert_offline(context)
    finally:
        for context in (worker, community, department, resident):
            await context.close()
