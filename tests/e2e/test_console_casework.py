"""The community's, the district's and the supervisor's case screens in a real browser on the
real stack: 辖区案件 (/cases) found by number, the case page (/cases/:id) — 吹哨 naming a
department by name, the timeline following dispatch, 返工 and 核查结案 after the department's
results, the rating link with its QR code, the CSV export —, 督办 by the supervisor, and the
manual-dispatch queue (/manual-dispatch) for a case nobody is configured for. The cases are set
up through the services' APIs as the grid worker and the department would; what the screens
claim is checked again through the APIs."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.console import (
    assert_accessible,
    assert_cjk_rendered,
    new_context,
    screenshot,
    sign_in,
)
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

# The timeline reaches tracking a moment after each step; the page refreshes itself.
SLOW = 45_000


def token(stack, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.mint_demo_token(who)}"}


async def report(stack, who: str, **change) -> dict:
    body = {
        "grid_code": "YA0101-03",
        "category": "E0101",
        "priority": "normal",
        "description": f"楼道口堆放装修垃圾，堵塞消防通道（{uuid.uuid4().hex[:6]}）",
        "location": {"address": "桃园小区7号楼1单元"},
        **change,
    }
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(f"{stack.url('intake')}/cases", json=body, headers=token(stack, who))
    assert resp.status_code == 201, resp.text
    return resp.json()


async def open_assignment(stack, department: str, case_id: str) -> dict | None:
    """The department's assignment on the case still waiting to be signed for, if any yet."""
    async with httpx.AsyncClient(timeout=10) as http:
        rows = (
            await http.get(
                f"{stack.url('dispatch')}/departments/{department}/assignments",
                headers=token(stack, f"{department}-duty"),
            )
        ).json()
    return next((a for a in rows if a["case_id"] == case_id and a["state"] == "dispatched"), None)


async def department_resolves(stack, department: str, case_id: str, result: str) -> None:
    """The department signs for its assignment and resolves it, as on its own screens."""
    assignment = await eventually(
        lambda: open_assignment(stack, department, case_id),
        timeout=45,
        message=f"{department} has the case",
    )
    headers = token(stack, f"{department}-duty")
    base = f"{stack.url('dispatch')}/assignments/{assignment['id']}"
    async with httpx.AsyncClient(timeout=10) as http:
        signed = await http.post(f"{base}/sign-for", headers=headers)
        assert signed.status_code == 200, signed.text
        resolved = await http.post(f"{base}/resolve", json={"result": result}, headers=headers)
        assert resolved.status_code == 200, resolved.text


async def shot(page, name: str) -> None:
    """A full-page screenshot from the top (the sticky header stays where it belongs)."""
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, name)


async def timeline_types(stack, case_id: str) -> list[str]:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(
            f"{stack.url('tracking')}/cases/{case_id}/timeline", headers=token(stack, "supervisor")
        )
    return [e["type"] for e in resp.json()["events"]] if resp.status_code == 200 else []


async def test_community_whistles_reworks_closes_and_hands_out_the_rating_link(
    stack, browser, console_url
):
    case = await report(stack, "wangfang")
    context = await new_context(browser, accept_downloads=True)
    try:
        page = await sign_in(context, console_url, "taoyuan", start="/cases")
        await expect(page.get_by_role("heading", name="辖区案件", level=1)).to_be_visible()

        # Found by its number through the search box; the row says what and where in names.
        await page.get_by_label("搜索", exact=True).fill(case["case_no"])
        await page.get_by_role("button", name="搜索", exact=True).click()
        await expect(page).to_have_url(re.compile(rf"q={case['case_no']}"))
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=case["case_no"]))
        await expect(row).to_have_count(1)
        await expect(row.get_by_text("乱堆物料")).to_be_visible()
        await expect(row.get_by_text("桃园社区第3网格")).to_be_visible()
        await expect(row.get_by_text("已上报")).to_be_visible()
        await expect(page.get_by_text("共显示 1 件")).to_be_visible()
        await shot(page, "cases-list")
        await assert_accessible(page, "cases-list")

        # The 大类 filter by name narrows to nothing for another class, and back.
        await page.get_by_label("大类").select_option(label="事件·民生服务")
        await expect(page.get_by_text("没有符合筛选条件的案件")).to_be_visible()
        await page.get_by_label("大类").select_option(label="事件·市容环境")
        await row.get_by_role("link", name=case["case_no"]).click()

        await expect(
            page.get_by_role("heading", name=f"案件 {case['case_no']}", level=1)
        ).to_be_visible()
        facts = page.locator(".cw-facts")
        await expect(facts.get_by_text("事件·市容环境 › 乱堆物料")).to_be_visible()
        await expect(facts.get_by_text("迎泽街道 › 桃园社区 › 桃园社区第3网格")).to_be_visible()
        await expect(facts.get_by_text("桃园小区7号楼1单元")).to_be_visible()

        # 吹哨, naming the lead department by its Chinese name.
        await page.get_by_label("点名主办部门（可选）").select_option(label="榆安区城市管理局")
        await page.get_by_label("吹哨说明").fill("居民反映强烈，请尽快清运")
        await page.get_by_role("button", name="吹哨", exact=True).click()
        await expect(page.get_by_text("点名榆安区城市管理局主办")).to_be_visible()
        await expect(facts.get_by_text("已派单")).to_be_visible(timeout=SLOW)
        history = page.locator(".cw-timeline")
        await expect(history.get_by_text("社区吹哨，点名召集：榆安区城市管理局")).to_be_visible(
            timeout=SLOW
        )
        await expect(
            history.get_by_text(re.compile("派给榆安区城市管理局主办，依据：吹哨点名"))
        ).to_be_visible(timeout=SLOW)
        await expect(page.locator(".cw-assignment").get_by_text("榆安区城市管理局")).to_be_visible()

        # The department reports it done: a rework with a reason (an empty one is refused here).
        await department_resolves(stack, "cg", case["id"], "已清运大部分垃圾")
        await expect(facts.get_by_text("已办结待核查")).to_be_visible(timeout=SLOW)
        await expect(
            page.get_by_text("榆安区城市管理局办结：已清运大部分垃圾").first
        ).to_be_visible()
        await page.get_by_role("button", name="未通过，退回返工").click()
        await expect(page.get_by_text("请填写返工原因")).to_be_visible()
        await page.get_by_label("返工原因").fill("楼道内仍有两袋垃圾未清运")
        await page.get_by_role("button", name="未通过，退回返工").click()
        await expect(
            history.get_by_text("核查未通过，退回榆安区城市管理局返工：楼道内仍有两袋垃圾未清运")
        ).to_be_visible(timeout=SLOW)

        # Resolved again after the rework: verified and closed.
        await department_resolves(stack, "cg", case["id"], "已全部清运，通道畅通")
        await expect(
            page.get_by_text("榆安区城市管理局办结：已全部清运，通道畅通").first
        ).to_be_visible(timeout=SLOW)
        await page.get_by_label("核查意见").fill("现场核查，通道已畅通")
        await page.get_by_role("button", name="核查通过，结案").click()
        await expect(facts.get_by_text("已结案", exact=True)).to_be_visible(timeout=SLOW)
        await expect(
            history.get_by_text("现场核查通过，结案；核查意见：现场核查，通道已畅通")
        ).to_be_visible(timeout=SLOW)

        # The resident's one-time rating link, as an address to copy and a QR code to scan.
        await page.get_by_role("button", name="生成评价链接").click()
        await expect(
            page.get_by_role("img", name=f"评价链接二维码（案件 {case['case_no']}）")
        ).to_be_visible()
        link = page.get_by_label("评价链接地址")
        await expect(link).to_have_value(
            re.compile(rf"^{re.escape(console_url)}/ratings/[A-Za-z0-9_-]{{16,}}$")
        )
        async with httpx.AsyncClient(timeout=10) as http:
            rating_page = await http.get(await link.input_value())
        assert rating_page.status_code == 200 and "text/html" in rating_page.headers["content-type"]

        # The whole history as a CSV file for Excel, named after the case.
        async with page.expect_download() as got:
            await page.get_by_role("button", name="导出 CSV").click()
        download = await got.value
        assert download.suggested_filename == f"{case['case_no']}-history.csv"
        content = (await download.path()).read_text("utf-8-sig")
        # (the rows are the case's events; its number names the file)
        assert case["description"] in content and "榆安区城市管理局" in content
        assert "返工" in content and "核查结案" in content

        await shot(page, "case-page")
        await assert_accessible(page, "case-page")
        await assert_cjk_rendered(page, "办理全过程")
        types = await timeline_types(stack, case["id"])
        assert types.count("case.resolved") == 2 and "case.rework_requested" in types
        assert "case.closed" in types
    finally:
        await context.close()


async def test_supervisor_urges_the_department_from_the_case_page(stack, browser, console_url):
    case = await report(stack, "wangfang", description="楼顶广告牌松动，存在坠落隐患")
    async with httpx.AsyncClient(timeout=10) as http:
        whistled = await http.post(
            f"{stack.url('intake')}/cases/{case['id']}/whistle",
            json={"departments": ["cg"]},
            headers=token(stack, "taoyuan"),
        )
    assert whistled.status_code == 200, whistled.text
    await eventually(
        lambda: open_assignment(stack, "cg", case["id"]), timeout=45, message="dispatched to cg"
    )
    context = await new_context(browser)
    try:
        page = await sign_in(context, console_url, "supervisor", start=f"/cases/{case['id']}")
        await expect(
            page.get_by_role("heading", name=f"案件 {case['case_no']}", level=1)
        ).to_be_visible()
        # the supervisor reads and urges; nothing else is offered
        await expect(page.get_by_role("button", name="吹哨", exact=True)).to_have_count(0)
        await expect(page.get_by_text("督办部门：榆安区城市管理局")).to_be_visible(timeout=SLOW)
        await page.get_by_label("督办内容").fill("请今天内报到并到场处置")
        await page.get_by_role("button", name="督办", exact=True).click()
        await expect(page.get_by_text("已督办：榆安区城市管理局（第1次）")).to_be_visible()
        await expect(
            page.locator(".cw-timeline").get_by_text(
                "督办榆安区城市管理局（第 1 次）：请今天内报到并到场处置"
            )
        ).to_be_visible(timeout=SLOW)
        await expect(
            page.locator(".cw-timeline").get_by_text("区委组织部督办科（督办）")
        ).to_be_visible()
        assert (await timeline_types(stack, case["id"])).count("case.urged") == 1
    finally:
        await context.close()

    # The department reads the same page, acts nowhere here, and is sent to its assignment.
    assignment = await open_assignment(stack, "cg", case["id"])
    clerk = await new_context(browser)
    try:
        page = await sign_in(clerk, console_url, "cg-duty", start=f"/cases/{case['id']}")
        await expect(
            page.get_by_role("heading", name=f"案件 {case['case_no']}", level=1)
        ).to_be_visible()
        await expect(
            page.locator(".cw-facts").get_by_text("楼顶广告牌松动，存在坠落隐患")
        ).to_be_visible()
        await expect(
            page.locator(".cw-timeline").get_by_text(
                "督办榆安区城市管理局（第 1 次）：请今天内报到并到场处置"
            )
        ).to_be_visible()
        await expect(page.get_by_role("button", name="督办", exact=True)).to_have_count(0)
        link = page.get_by_role("link", name="办理本部门的派单")
        await expect(link).to_have_attribute("href", f"/assignments/{assignment['id']}")
    finally:
        await clerk.close()


async def test_district_dispatches_an_unroutable_case_by_hand(stack, browser, console_url):
    # 独居老人帮扶 (E0501) in 北关社区: no rule, default unit or liaison unit takes it.
    case = await report(
        stack,
        "command",
        grid_code="YA0401-02",
        category="E0501",
        description="独居老人王大爷家中暖气不热，需要上门帮扶",
        location={"address": "北关小区3号楼"},
    )
    async with httpx.AsyncClient(timeout=10) as http:
        whistled = await http.post(
            f"{stack.url('intake')}/cases/{case['id']}/whistle",
            json={},
            headers=token(stack, "command"),
        )
        assert whistled.status_code == 200, whistled.text

        async def waiting() -> bool:
            rows = (
                await http.get(
                    f"{stack.url('dispatch')}/manual-dispatch", headers=token(stack, "command")
                )
            ).json()
            return any(r["case_id"] == case["id"] for r in rows)

        await eventually(waiting, timeout=45, message="the case waits for manual dispatch")

    # 桃园社区 may not read a case of 北关社区: the server's reason is shown.
    other = await new_context(browser)
    try:
        page = await sign_in(other, console_url, "taoyuan", start=f"/cases/{case['id']}")
        await expect(page.get_by_role("alert")).to_contain_text("辖区")
    finally:
        await other.close()

    context = await new_context(browser)
    try:
        page = await sign_in(context, console_url, "command", start="/manual-dispatch")
        await expect(page.get_by_role("heading", name="人工派单", level=1)).to_be_visible()
        item = page.get_by_role("listitem").filter(
            has=page.get_by_role("link", name=case["case_no"])
        )
        await expect(item.get_by_text("事件·民生服务 › 独居老人帮扶")).to_be_visible()
        await expect(item.get_by_text("北城街道 › 北关社区 › 北关社区第2网格")).to_be_visible()
        await item.get_by_role("button", name=f"人工派单 {case['case_no']}").click()
        await item.get_by_role("button", name="派单", exact=True).click()
        await expect(item.get_by_text("请选择主办部门")).to_be_visible()
        await item.get_by_label("主办部门").select_option(label="榆安区民政局")
        await item.get_by_label("派单说明").fill("请民政局联系社区上门帮扶")
        await shot(page, "manual-dispatch")
        await assert_accessible(page, "manual-dispatch")
        await item.get_by_role("button", name="派单", exact=True).click()
        await expect(page.get_by_text(f"{case['case_no']}：已派单给榆安区民政局")).to_be_visible()
        await expect(page.get_by_role("link", name=case["case_no"])).to_have_count(0)

        assignment = await eventually(
            lambda: open_assignment(stack, "mz", case["id"]),
            timeout=45,
            message="民政局 has the case",
        )
        assert (
            assignment["basis"] == "manual" and "请民政局联系社区上门帮扶" in assignment["reason"]
        )

        # The case page names the department the district chose.
        await page.goto(f"{console_url}/cases/{case['id']}")
        await expect(
            page.locator(".cw-timeline").get_by_text(
                re.compile("派给榆安区民政局主办，依据：人工派单")
            )
        ).to_be_visible(timeout=SLOW)
    finally:
        await context.close()


async def test_grid_worker_closes_his_case_on_a_phone_and_records_the_rating(
    stack, browser, console_url
):
    case = await report(
        stack,
        "wangfang",
        grid_code="YA0101-04",
        category="C0101",
        description="小区路灯不亮，夜间行人易摔倒",
        location={"address": "桃园小区东门"},
    )
    async with httpx.AsyncClient(timeout=10) as http:
        whistled = await http.post(
            f"{stack.url('intake')}/cases/{case['id']}/whistle",
            json={},
            headers=token(stack, "taoyuan"),
        )
    assert whistled.status_code == 200, whistled.text
    await department_resolves(stack, "gd", case["id"], "已更换灯泡，恢复照明")
    context = await new_context(browser, phone=True)
    try:
        page = await sign_in(context, console_url, "wangfang", start="/cases")
        await expect(page.get_by_role("heading", name="我的案件", level=1)).to_be_visible()
        # his two grids by name, nobody else's
        grid = page.get_by_label("网格")
        await expect(grid.locator("option")).to_have_text(
            ["全部网格", "桃园社区第3网格", "桃园社区第4网格"]
        )
        await grid.select_option(label="桃园社区第4网格")
        await expect(page).to_have_url(re.compile("grid=YA%2FYA01%2FYA0101%2FYA0101-04"))
        await page.get_by_role("link", name=case["case_no"]).click()
        facts = page.locator(".cw-facts")
        await expect(facts.get_by_text("已办结待核查")).to_be_visible(timeout=SLOW)
        await expect(
            page.get_by_text("榆安供电公司办结：已更换灯泡，恢复照明").first
        ).to_be_visible(timeout=SLOW)
        # a grid worker verifies, but neither whistles nor urges
        await expect(page.get_by_role("button", name="督办", exact=True)).to_have_count(0)
        await page.get_by_role("button", name="核查通过，结案").click()
        await expect(facts.get_by_text("已结案", exact=True)).to_be_visible(timeout=SLOW)

        # The resident has no phone at hand: the worker records the rating for him.
        await page.get_by_text("代群众录入评价").click()
        await page.get_by_role("button", name="提交评价").click()
        await expect(page.get_by_text("请选择满意度")).to_be_visible()
        await page.get_by_label("4分 · 满意").check()
        await page.get_by_label("群众意见").fill("修得很快")
        await page.get_by_role("button", name="提交评价").click()
        await expect(page.get_by_text("已代群众评价 4 分")).to_be_visible()
        await expect(
            page.locator(".cw-timeline").get_by_text("评价 4/5 分（网格员代录）：修得很快")
        ).to_be_visible(timeout=SLOW)
        await expect(page.get_by_role("button", name="生成评价链接")).to_have_count(0)
        await shot(page, "case-page-phone")
        await assert_accessible(page, "case-page-phone")
    finally:
        await context.close()


async def test_community_merges_a_duplicate_into_the_first_report(stack, browser, console_url):
    first = await report(
        stack,
        "wangfang",
        category="E0103",
        description="3号楼楼道堆放杂物",
        location={"address": "桃园小区3号楼"},
    )
    second = await report(
        stack,
        "taoyuan",
        category="E0103",
        description="3号楼楼道里有很多纸箱",
        location={"address": "桃园小区3号楼2单元"},
    )
    context = await new_context(browser)
    try:
        page = await sign_in(context, console_url, "taoyuan", start=f"/cases/{second['id']}")
        merge = page.locator("section").filter(has=page.get_by_role("heading", name="合并重复案件"))
        await merge.get_by_role("button", name="把本案件合并到所选主案件").click()
        await expect(merge.get_by_text("请选择主案件")).to_be_visible()
        await merge.get_by_label(re.compile(first["case_no"])).check()
        await merge.get_by_role("button", name="把本案件合并到所选主案件").click()
        await expect(page.get_by_text(f"已合并到主案件 {first['case_no']}")).to_be_visible()
        await expect(page.locator(".cw-facts").get_by_text("已结案", exact=True)).to_be_visible()
        history = page.locator(".cw-timeline")
        await expect(
            history.get_by_text(f"作为重复案件并入主案件 {first['case_no']}")
        ).to_be_visible(timeout=SLOW)
        # a merged duplicate is neither rated nor reopened; the primary credits both reporters
        await expect(page.get_by_role("button", name="生成评价链接")).to_have_count(0)
        await history.get_by_role("link", name=f"打开主案件 {first['case_no']}").click()
        await expect(
            page.get_by_role("heading", name=f"案件 {first['case_no']}", level=1)
        ).to_be_visible()
        await expect(
            page.locator(".cw-facts").get_by_text(re.compile("合并的重复上报：桃园社区书记"))
        ).to_be_visible()
    finally:
        await context.close()
