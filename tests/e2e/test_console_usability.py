"""What got in the console's users' way, in a real browser on the real stack: a grid worker
outdoors with no signal read the browser's English ("Failed to fetch", "Failed to fetch
dynamically imported module: http://…") and could not retry; a case number in an address
(what people say and paste) met the server's validation text; the phone header's language and
sign-out links were 22 px tall and the header kept 90 px of the screen; photo fields showed the
browser's own "Choose Files / No file chosen"."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.cases import as_, png, report_and_whistle
from tests.e2e.console import ARTIFACTS, assert_accessible, new_context, screenshot, sign_in
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

NETWORK_ZH = "网络连接失败，请检查网络后重试。"
THUMB = 44  # px: the smallest target a thumb hits reliably


async def height_of(page: Page, name: str) -> float:
    box = await page.get_by_role("button", name=name, exact=True).bounding_box()
    assert box is not None, name
    return box["height"]


async def until(page: Page, js: str, what: str, seconds: float = 15) -> None:
    """Poll a page expression (page.wait_for_function's evaluation is refused by the
    console's Content-Security-Policy)."""
    for _ in range(int(seconds * 10)):
        if await page.evaluate(js):
            return
        await page.wait_for_timeout(100)
    raise AssertionError(f"not within {seconds}s: {what}")


async def no_sideways_scroll(page: Page) -> None:
    wide = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the phone's page scrolls sideways by {wide}px"


async def test_phone_header_targets_a_thumb_can_hit_and_one_row_while_scrolling(
    stack, browser, console_url
):
    context = await new_context(browser, phone=True)
    try:
        page = await sign_in(context, console_url, "wangfang", start="/report")
        await expect(page.get_by_role("heading", name="上报问题", level=1)).to_be_visible()
        assert await height_of(page, "English") >= THUMB
        assert await height_of(page, "退出") >= THUMB
        assert await height_of(page, "菜单") >= THUMB
        await screenshot(page, "usability-header-top")
        # Down the long report form: the menu stays on screen, the identity row slides away
        # and the header keeps one row, not 90 px.
        await page.mouse.wheel(0, 900)
        await until(page, "window.scrollY > 300", "the page scrolled")
        menu = await page.get_by_role("button", name="菜单").bounding_box()
        assert menu is not None and menu["y"] >= 0
        header = await page.locator("header.top").bounding_box()
        assert header is not None
        visible = header["y"] + header["height"]
        assert visible <= 64, f"the sticky header covers {visible}px of the phone"
        await page.screenshot(path=str(ARTIFACTS / "usability-header-scrolled.png"))
        await no_sideways_scroll(page)
    finally:
        await context.close()


async def test_no_signal_is_said_in_words_and_a_screen_can_be_retried(stack, browser, console_url):
    context = await new_context(browser, phone=True)
    try:
        # The 我的案件 screen's code does not come (the signal dropped as he tapped).
        await context.route(
            "**/static/app/pages/cases.js", lambda r: r.abort("internetdisconnected")
        )
        page = await sign_in(context, console_url, "wangfang", start="/worker")
        await expect(page.get_by_role("heading", name="我的网格", level=1)).to_be_visible()
        await page.get_by_role("button", name="菜单").click()
        await page.get_by_role("link", name="我的案件").click()
        await expect(page.get_by_role("alert")).to_have_text(NETWORK_ZH)
        await expect(page.get_by_text("Failed to fetch")).to_have_count(0)
        await no_sideways_scroll(page)
        await screenshot(page, "usability-no-signal-screen")
        await context.unroute("**/static/app/pages/cases.js")
        await page.get_by_role("button", name="重试").click()
        await expect(page.get_by_role("heading", name="我的案件", level=1)).to_be_visible()

        # No signal at all: his other screens' code came while there was one, so 上报 opens
        # (what he types is kept) and 待核实 says in words why it has nothing.
        await until(
            page,
            "performance.getEntriesByType('resource').some(e => e.name.endsWith('/pages/report.js'))",
            "the report screen's code was fetched in advance",
        )
        await context.set_offline(True)
        await page.get_by_role("button", name="菜单").click()
        await page.get_by_role("link", name="上报", exact=True).click()
        await expect(page.get_by_role("heading", name="上报问题", level=1)).to_be_visible()
        await page.get_by_role("button", name="菜单").click()
        await page.get_by_role("link", name="待核实").click()
        await expect(page.get_by_role("heading", name="群众上报待核实", level=1)).to_be_visible()
        await expect(page.get_by_role("alert")).to_have_text(NETWORK_ZH)
        await expect(page.get_by_text("Failed to fetch")).to_have_count(0)
        await screenshot(page, "usability-no-signal-data")
        # in English, in English
        await page.get_by_role("button", name="English").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "The network failed; check the connection and try again."
        )
        await context.set_offline(False)
        await page.get_by_role("button", name="Refresh").click()
        await expect(page.get_by_role("alert")).to_have_count(0)
    finally:
        await context.close()


async def test_a_case_number_in_the_address_opens_the_case(stack, browser, console_url):
    async with httpx.AsyncClient(timeout=15) as http:
        case = await report_and_whistle(http, stack, "楼道堆放杂物，影响通行（按编号打开）")

        async def cg_assignment() -> dict | None:
            rows = (
                await http.get(
                    f"{stack.url('dispatch')}/departments/cg/assignments",
                    params={"limit": 200},
                    headers=as_(stack, "cg-duty"),
                )
            ).json()
            return next((a for a in rows if a["case_id"] == case["id"]), None)

        assignment = await eventually(cg_assignment, message="dispatch assigned it to cg")

    worker = await new_context(browser, phone=True)
    clerk = await new_context(browser, phone=True)
    try:
        # the grid worker types the number he was told on the phone
        page = await sign_in(worker, console_url, "wangfang", start=f"/cases/{case['case_no']}")
        await expect(page).to_have_url(re.compile(rf"/cases/{case['id']}$"))
        await expect(page.get_by_role("heading", name=f"案件 {case['case_no']}")).to_be_visible()
        # on a phone the case comes first; exporting its history is at the history's end
        export = page.get_by_role("button", name="导出 CSV")
        await expect(export).to_be_attached()
        facts = await page.get_by_text("案件编号", exact=True).first.bounding_box()
        history = await page.get_by_role("heading", name="办理全过程").bounding_box()
        button = await export.bounding_box()
        assert facts and history and button
        assert facts["y"] < history["y"] < button["y"]
        # and finds it on his home screen, its number a target a thumb can hit
        await page.goto(f"{console_url}/worker")
        link = page.get_by_role("link", name=case["case_no"])
        await expect(link).to_be_visible()
        box = await link.bounding_box()
        assert box is not None and box["height"] >= THUMB
        # a tap anywhere on its card (here: on the description) opens it
        card = page.locator(".case-card").filter(has=link)
        await card.scroll_into_view_if_needed()
        desc = await card.get_by_text("楼道堆放杂物，影响通行（按编号打开）").bounding_box()
        assert desc is not None
        await page.touchscreen.tap(desc["x"] + desc["width"] / 2, desc["y"] + desc["height"] / 2)
        await expect(page).to_have_url(re.compile(rf"/cases/{case['id']}$"))
        # lower case, as typed on a phone keyboard
        await page.goto(f"{console_url}/cases/{case['case_no'].lower()}")
        await expect(page).to_have_url(re.compile(rf"/cases/{case['id']}$"))
        # an address that is no case says so in words, not in the server's validation text
        await page.goto(f"{console_url}/cases/not-a-case")
        await expect(page.get_by_role("alert")).to_have_text("案件不存在，请检查链接或案件编号。")
        await expect(page.get_by_text(re.compile("UUID|path\\.|Input should"))).to_have_count(0)
        await expect(page.get_by_role("link", name="返回我的网格")).to_be_visible()
        await screenshot(page, "usability-no-such-case")

        # the department's clerk gets its own assignment of that case
        desk = await sign_in(clerk, console_url, "cg-duty", start=f"/cases/{case['case_no']}")
        await expect(desk).to_have_url(re.compile(rf"/assignments/{assignment['id']}$"))
        await expect(desk.get_by_role("heading", name=re.compile(case["case_no"]))).to_be_visible()
        await desk.goto(f"{console_url}/assignments/xyz")
        await expect(desk.get_by_role("alert")).to_have_text("派单不存在，请检查链接。")
        await expect(desk.get_by_role("link", name="返回待办")).to_be_visible()
    finally:
        await worker.close()
        await clerk.close()


async def test_photo_fields_speak_the_console_language(stack, browser, console_url):
    context = await new_context(browser, phone=True)
    try:
        page = await sign_in(context, console_url, "wangfang", start="/report")
        pick = page.get_by_text("拍照或选择照片")
        await expect(pick).to_be_visible()
        box = await pick.bounding_box()
        assert box is not None and box["height"] >= THUMB
        await expect(page.get_by_text("未选择照片")).to_be_visible()
        # the browser's own control (its own language, a small target) is not what one sees
        native = await page.locator("input[type=file]").first.bounding_box()
        assert native is not None and native["width"] <= 1
        # the field is still the labelled file input (screen readers, keyboards, tests)
        await page.get_by_label(re.compile("现场照片")).set_input_files(
            files=[{"name": "door.png", "mimeType": "image/png", "buffer": png((90, 140, 60))}]
        )
        await expect(page.get_by_text("已选 1/9 张")).to_be_visible()
        await expect(page.get_by_role("img", name="待上传照片1")).to_be_visible()
        await assert_accessible(page, "usability-photo-field")
        await screenshot(page, "usability-photo-field")
        await page.get_by_role("button", name="English").click()
        await expect(page.get_by_text("Take or choose photos").first).to_be_visible()
    finally:
        await context.close()


async def test_a_clerk_on_a_phone_sees_the_late_list_before_the_map(stack, browser, console_url):
    context = await new_context(browser, phone=True)
    try:
        page = await sign_in(context, console_url, "cg-duty", start="/board")
        late = page.get_by_role("heading", name=re.compile("超时（红灯）"))
        near = page.get_by_role("heading", name=re.compile("临期（黄灯）"))
        area_map = page.get_by_role("heading", name="辖区地图")
        await expect(late).to_be_visible()
        await expect(area_map).to_be_visible()
        y = {}
        for name, loc in (("late", late), ("near", near), ("map", area_map)):
            box = await loc.bounding_box()
            assert box is not None, name
            y[name] = box["y"]
        assert y["late"] < y["near"] < y["map"], y
        await no_sideways_scroll(page)
        await screenshot(page, "usability-board-phone")
    finally:
        await context.close()


async def test_a_refused_request_reads_in_chinese(stack, browser, console_url):
    context = await new_context(browser)
    try:
        # an old bookmark with a state the system no longer knows
        page = await sign_in(context, console_url, "taoyuan", start="/cases?status=pending")
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("请求内容无效")
        await expect(alert).to_contain_text("query.status: 应为以下之一：'to_verify'、'reported'")
        await expect(page.get_by_text(re.compile("Input should"))).to_have_count(0)
        await screenshot(page, "usability-refused-in-chinese")
    finally:
        await context.close()
