"""The supervisors' screens in a real browser on the real stack: the command board (指挥大屏)
turning a case late while it is open — live, without a reload —, the KPI page (考核, 红黑榜)
with its charts and tables, and the approvals (延期审批) deciding a department's extension
request with fewer days than asked."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.conftest import SIGN_FOR_DEADLINE_SECONDS
from tests.e2e.console import (
    DESK,
    assert_accessible,
    assert_cjk_rendered,
    new_context,
    screenshot,
    sign_in,
)
from tests.e2e.test_loop import as_, assignment_of, report
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

GRID = "YA0101-03"  # 桃园社区第3网格, wangfang's
POSITION = {"lat": 37.8866, "lon": 112.5361}  # inside that grid's boundary
DEPARTMENT = "cg"  # the demo rule sends E0101 in YA to 榆安区城市管理局
DEPARTMENT_NAME = "榆安区城市管理局"


async def test_board_goes_late_live_kpis_and_an_extension_approved(stack, browser, console_url):
    intake, dispatch = stack.url("intake"), stack.url("dispatch")
    context = await new_context(browser)
    try:
        page = await sign_in(context, console_url, "supervisor", start="/board")
        await expect(page.get_by_role("heading", name="指挥大屏")).to_be_visible()
        await expect(page.get_by_role("status").filter(has_text="实时推送已连接")).to_be_visible()
        # the grid map is drawn without tiles: every grid of the district, communities named
        await expect(page.locator(".board-map path.leaflet-interactive").first).to_be_visible()
        await expect(
            page.locator(".board-map .community-label", has_text="桃园社区")
        ).to_be_visible()
        assert await page.locator(".board-map img.leaflet-tile").count() == 0
        await page.evaluate("window.__boardNotReloaded = true")
        url_before = page.url

        async with httpx.AsyncClient(timeout=10) as http:
            # 网格发现 → 社区吹哨 through the API, while the board stays open
            body = report(GRID, location={"address": "桃园小区5号楼2单元", **POSITION})
            created = await http.post(f"{intake}/cases", json=body, headers=as_(stack, "wangfang"))
            assert created.status_code == 201, created.text
            case = created.json()
            case_no = case["case_no"]
            whistled = await http.post(
                f"{intake}/cases/{case['id']}/whistle",
                json={"note": "请尽快清运"},
                headers=as_(stack, "taoyuan"),
            )
            assert whistled.status_code == 200, whistled.text

            # nobody signs for it: SIGN_FOR_DEADLINE_SECONDS later the board shows it late
            late = (
                page.get_by_role("region", name=re.compile("^超时"))
                .get_by_role("listitem")
                .filter(has_text=case_no)
            )
            await expect(late).to_be_visible(timeout=(SIGN_FOR_DEADLINE_SECONDS + 40) * 1000)
            await expect(late).to_contain_text("超时")
            await expect(late).to_contain_text(DEPARTMENT_NAME)
            await expect(late).to_contain_text("报到时限")
            await expect(late).to_contain_text("桃园社区第3网格")
            # on the map: a red marker at the reported position and the grid tinted red
            marker = page.locator(f".board-map path.case-marker.case-{case_no}")
            await expect(marker).to_have_count(1)
            await expect(marker).to_have_class(re.compile(r"\boverdue\b"))
            await expect(page.locator(f".board-map path.grid-{GRID}.zone-overdue")).to_have_count(1)
            # the red counter counts it (other late cases of the session may be there too)
            red = page.locator(".board-counters .counter.red .n").first
            assert int(await red.inner_text()) >= 1
            # the live stream brought the changes (the feed lists what happened since opening)
            feed = page.get_by_role("region", name="实时动态")
            await expect(
                feed.get_by_role("listitem").filter(has_text=case_no).first
            ).to_be_visible()
            assert await page.evaluate("window.__boardNotReloaded === true"), "the board reloaded"
            assert page.url == url_before

            await screenshot(page, "supervisor-board")
            await assert_accessible(page, "supervisor-board")
            await assert_cjk_rendered(page, "指挥大屏")

            # 考核: the three rates per department and per area, charts with tables, 红黑榜
            await page.get_by_role("navigation").get_by_role("link", name="考核").click()
            await expect(page.get_by_role("heading", name="部门三率")).to_be_visible()
            departments = page.get_by_role("table", name="部门三率")
            await expect(departments).to_contain_text(DEPARTMENT_NAME)
            await expect(
                departments.get_by_role("row").filter(has_text=DEPARTMENT_NAME)
            ).to_contain_text("%")
            await expect(page.get_by_role("table", name="辖区三率")).to_contain_text("迎泽街道")
            dept_chart = page.get_by_role("img", name=re.compile("^部门三率"))
            await expect(dept_chart).to_be_visible()

            async def chart_labels():
                return await dept_chart.evaluate(
                    "c => (window.Chart?.getChart(c)?.data.labels ?? []).join('|')"
                )

            labels = await eventually(chart_labels, message="the department chart was drawn")
            assert DEPARTMENT_NAME in labels
            await expect(page.get_by_role("img", name=re.compile("^辖区三率"))).to_be_visible()
            await expect(page.get_by_role("img", name=re.compile("近 8 周"))).to_be_visible()
            trend = page.get_by_role("table", name="近 8 周趋势")
            await expect(trend.get_by_role("row")).to_have_count(9)  # header + 8 weeks
            await expect(page.get_by_role("heading", name="排名与红黑榜")).to_be_visible()
            await expect(page.get_by_text(re.compile("同时满足：响应率 ≥"))).to_be_visible()
            # the CSV export for Excel comes with the server's file name, names inside
            async with page.expect_download() as download:
                await page.get_by_role("button", name=re.compile("^导出 CSV 部门三率")).click()
            csv_file = await download.value
            assert re.fullmatch(r"kpi-departments-\d{8}-\d{8}\.csv", csv_file.suggested_filename)
            content = (await csv_file.path()).read_text("utf-8-sig")
            assert DEPARTMENT_NAME in content
            await screenshot(page, "supervisor-kpi")
            await assert_accessible(page, "supervisor-kpi")
            # on a 1366-px laptop the whole table shows, its last column too
            await page.set_viewport_size({"width": 1366, "height": 768})
            overflow = await departments.evaluate(
                "t => t.closest('.table-wrap').scrollWidth - t.closest('.table-wrap').clientWidth"
            )
            assert overflow <= 1, f"部门三率 scrolls sideways by {overflow}px at 1366 px"
            await screenshot(page, "supervisor-kpi-1366")
            await page.set_viewport_size(DESK["viewport"])

            # 延期: the department signs for the case and asks for 3 more working days
            assignment = await eventually(
                lambda: assignment_of(http, stack, DEPARTMENT, case["id"]),
                message="dispatch assigned the case to cg",
            )
            duty = as_(stack, f"{DEPARTMENT}-duty")
            signed = await http.post(
                f"{dispatch}/assignments/{assignment['id']}/sign-for", json={}, headers=duty
            )
            assert signed.status_code == 200, signed.text
            asked = await http.post(
                f"{dispatch}/assignments/{assignment['id']}/extensions",
                json={"days": 3, "reason": "需协调环卫车辆分批清运"},
                headers=duty,
            )
            assert asked.status_code == 201, asked.text
            request_id = asked.json()["id"]

            # …and the supervisor approves 2 of them on /requests
            await page.get_by_role("navigation").get_by_role("link", name="延期挂账审批").click()
            pending = (
                page.get_by_role("region", name=re.compile("^延期申请"))
                .get_by_role("listitem")
                .filter(has_text=case_no)
            )
            await expect(pending).to_be_visible()
            await expect(pending).to_contain_text("申请延期 3 个工作日")
            await expect(pending).to_contain_text("需协调环卫车辆分批清运")
            await expect(pending).to_contain_text(DEPARTMENT_NAME)
            await screenshot(page, "supervisor-requests")
            await assert_accessible(page, "supervisor-requests")

            # a refusal needs a reason: the form says so and nothing is sent
            await pending.get_by_role("button", name="驳回申请").click()
            await expect(pending.get_by_role("alert")).to_contain_text("请填写驳回理由")

            await pending.get_by_label("批准天数（工作日）").fill("2")
            await pending.get_by_label("审批意见（可选）").fill("同意延期两个工作日")
            await pending.get_by_role("button", name="批准延期").click()
            await expect(
                page.get_by_text(f"已批准 {case_no} 延期 2 个工作日（申请 3 个）")
            ).to_be_visible()
            await expect(pending).to_have_count(0)
            decided = (
                page.get_by_role("region", name="最近处理")
                .get_by_role("listitem")
                .filter(has_text=case_no)
            )
            await expect(decided).to_contain_text("已批准 2/3 个工作日")

            shown = await http.get(
                f"{dispatch}/extension-requests/{request_id}", headers=as_(stack, "supervisor")
            )
            assert shown.status_code == 200, shown.text
            decision = shown.json()
            assert decision["state"] == "approved"
            assert decision["granted_days"] == 2
            assert decision["comment"] == "同意延期两个工作日"
    finally:
        await context.close()
