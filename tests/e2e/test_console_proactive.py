"""Issue 16's console screens in a real browser on the real stack: the grid worker verifies
residents' own reports (群众上报待核实: one accepted, one dismissed with a reason), reports
with a source and a position pasted from a map app in GCJ-02, reads the expected resolution
time (预计办结时间) on a case page, and a community accepts one 未诉先办 hotspot (landing on the
proactive case) and dismisses another. What the screens claim is checked through the APIs."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from services.intake import demo as jdemo
from services.intake.coords import CoordSystem, from_wgs84
from shared.clock import BEIJING
from tests.e2e.cases import as_, report_and_whistle
from tests.e2e.console import (
    assert_accessible,
    assert_cjk_rendered,
    new_context,
    screenshot,
    sign_in,
)
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

GRID = "YA0101-03"  # 桃园社区第3网格, wangfang's
HOTSPOT_GRID = "YA0101-02"  # 桃园社区第2网格: no other browser test reports there
CASE_ID = re.compile(r"/cases/([0-9a-f-]{36})$")


async def file_resident_report(stack, description: str) -> dict[str, Any]:
    """A resident's report through anonymous Open311 (no token), in the middle of GRID."""
    lat, lon = jdemo.centre(GRID)
    form = {
        "service_code": "E0101",
        "lat": str(lat),
        "long": str(lon),
        "address_string": "桃园小区7号楼东侧",
        "description": description,
        "first_name": "明",
        "last_name": "李",
        "phone": "13912345678",
        "device_id": f"phone-{uuid.uuid4()}",
    }
    async with httpx.AsyncClient(base_url=stack.url("intake"), timeout=10) as http:
        resp = await http.post("/open311/v2/requests.json", data=form)
    assert resp.status_code == 201, resp.text
    [answer] = resp.json()
    return answer


async def intake_get(stack, who: str, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, headers=as_(stack, who)
    ) as http:
        return (await http.get(path, params=params)).raise_for_status().json()


async def case_by_no(stack, who: str, case_no: str) -> dict[str, Any]:
    [case] = [
        c for c in await intake_get(stack, who, "/cases", q=case_no) if c["case_no"] == case_no
    ]
    return case


def report_card(page: Page, description: str):
    return page.locator(".pv-report").filter(has_text=description)


async def test_worker_accepts_one_resident_report_and_dismisses_another(
    stack, browser, console_url
):
    tag = uuid.uuid4().hex[:6]
    true_one = f"7号楼东侧井盖破损，有人差点踩空 {tag}"
    groundless = f"7号楼东侧有人乱扔垃圾 {tag}"
    first = await file_resident_report(stack, true_one)
    second = await file_resident_report(stack, groundless)

    context = await new_context(browser, phone=True)
    try:
        page = await sign_in(context, console_url, "wangfang", start="/worker")
        # 我的网格 shows how many residents' reports wait for him, and leads to them.
        entry = page.get_by_role("link", name=re.compile("群众上报待核实"))
        await expect(entry).to_be_visible()
        await expect(entry.locator(".pv-badge")).to_have_text(re.compile(r"^[1-9]\d*件$"))
        waiting = len(await intake_get(stack, "wangfang", "/resident-reports"))
        assert waiting >= 2
        await expect(entry.locator(".pv-badge")).to_have_text(f"{waiting}件")
        await screenshot(page, "proactive-worker-home")
        await entry.click()
        await expect(page).to_have_url(re.compile(r"/verify$"))
        await expect(page.get_by_role("heading", name="群众上报待核实", level=1)).to_be_visible()

        # Each report: what the resident wrote, where, when, who (contact masked).
        card = report_card(page, true_one)
        await expect(card.get_by_role("heading", name=first["service_request_id"])).to_be_visible()
        await expect(card.get_by_text("桃园社区第3网格 · 桃园小区7号楼东侧")).to_be_visible()
        await expect(card.get_by_text(re.compile(r"139\*\*\*\*5678"))).to_be_visible()
        await expect(card.get_by_text("待核实")).to_be_visible()
        await screenshot(page, "proactive-verify")
        await assert_accessible(page, "proactive-verify")
        await assert_cjk_rendered(page, "群众上报待核实")

        # One action takes it on: the case enters the loop.
        await card.get_by_role("button", name="核实属实，受理").click()
        await expect(card.get_by_text("已受理")).to_be_visible()
        opened = card.get_by_role("link", name=f"打开案件 {first['service_request_id']}")
        await expect(opened).to_be_visible()
        accepted = await case_by_no(stack, "wangfang", first["service_request_id"])
        assert (accepted["status"], accepted["source"]) == ("reported", "resident")

        # Not taking one on needs a reason; without one nothing is sent.
        other = report_card(page, groundless)
        await other.get_by_role("button", name="不予受理…").click()
        await other.get_by_role("button", name="确认不予受理").click()
        await expect(other.get_by_text("请选择不予受理的原因")).to_be_visible()
        still = await case_by_no(stack, "wangfang", second["service_request_id"])
        assert still["status"] == "to_verify"
        await other.get_by_label("不予受理的原因").select_option(label="现场核实未发现所报问题")
        await other.get_by_label("说明").fill("现场查看，地面干净")
        await screenshot(page, "proactive-verify-dismiss")
        await other.get_by_role("button", name="确认不予受理").click()
        await expect(other.get_by_text("不予受理", exact=True)).to_be_visible()
        await expect(other.get_by_text("现场查看，地面干净")).to_be_visible()
        dismissed = await case_by_no(stack, "wangfang", second["service_request_id"])
        assert dismissed["status"] == "closed"
        decided = await intake_get(stack, "wangfang", "/resident-reports", state="dismissed")
        [mine] = [r for r in decided if r["id"] == dismissed["id"]]
        assert mine["verification"]["reason"] == "not_found"
        assert mine["verification"]["note"] == "现场查看，地面干净"

        # The accepted case's page says where it came from.
        await opened.click()
        await expect(page).to_have_url(re.compile(f"/cases/{accepted['id']}$"))
        await expect(page.locator(".cw-source")).to_have_text("群众上报")
        await screenshot(page, "proactive-resident-case")
    finally:
        await context.close()


async def test_worker_reports_with_a_source_and_a_gcj02_position(stack, browser, console_url):
    centre = jdemo.centre(GRID)
    # a map app shows six decimals
    lat, lon = (round(x, 6) for x in from_wgs84(*centre, CoordSystem.GCJ02))
    # Taken as WGS-84, the map app's pin would be another grid (that is why it is declared).
    undeclared = await intake_get(stack, "wangfang", "/areas/locate", lat=lat, lon=lon)
    assert undeclared["code"] != GRID

    context = await new_context(browser, phone=True)
    try:
        page = await sign_in(context, console_url, "wangfang", start="/report")
        description = f"微信群里居民反映：楼下违规设置户外广告牌 {uuid.uuid4().hex[:6]}"
        await expect(page.get_by_label("案件来源")).to_have_value("grid_patrol")
        await page.get_by_label("案件来源").select_option(label="微信群")
        await page.get_by_label("大类").select_option(label="事件·市容环境")
        await page.get_by_label("小类").select_option(label="违规户外广告")
        await page.get_by_label("问题描述").fill(description)

        # Pasted from 高德 (longitude first); the map it came from must be named.
        await page.get_by_text("输入地图软件中的坐标").click()
        await page.get_by_label("坐标", exact=True).fill(f"{lon:.6f},{lat:.6f}")
        await page.get_by_role("button", name="按坐标定位").click()
        await expect(page.get_by_text("请选择坐标来自哪种地图")).to_be_visible()
        await page.get_by_label(re.compile("^GCJ-02")).check()
        await page.get_by_role("button", name="按坐标定位").click()
        await expect(page.get_by_text("位置在桃园社区第3网格")).to_be_visible()
        await expect(page.get_by_text(re.compile(r"输入的坐标（GCJ-02"))).to_be_visible()
        await screenshot(page, "proactive-report-gcj02")
        await assert_accessible(page, "proactive-report-gcj02")

        await page.get_by_role("button", name="提交上报").click()
        await expect(page.get_by_role("heading", name="已上报")).to_be_visible()
        await expect(page.get_by_text("案件来源：微信群")).to_be_visible()
        href = await page.get_by_role("link", name=re.compile("查看案件详情")).get_attribute("href")
        case_id = CASE_ID.search(href or "").group(1)  # type: ignore[union-attr]
        case = await intake_get(stack, "wangfang", f"/cases/{case_id}")
        assert case["grid_code"] == GRID and case["source"] == "wechat_group"
        assert case["position_sent"] == {"coord_system": "gcj02", "lat": lat, "lon": lon}
        assert case["location"]["lat"] == pytest.approx(centre[0], abs=1e-4)
        assert case["location"]["lon"] == pytest.approx(centre[1], abs=1e-4)

        # The case page: its source, the position as sent, and no forecast before dispatch.
        await page.get_by_role("link", name=re.compile("查看案件详情")).click()
        await expect(page.locator(".cw-source")).to_have_text("微信群")
        await expect(
            page.get_by_text(re.compile("上报时为GCJ-02.*已换算为 WGS-84"))
        ).to_be_visible()
        await expect(page.locator(".cw-expected")).to_have_text("暂无预测")
        await screenshot(page, "proactive-case-no-forecast")
    finally:
        await context.close()


async def test_case_page_shows_the_expected_resolution(stack, browser, console_url, http):
    case = await report_and_whistle(http, stack, f"5号楼前乱堆建材 {uuid.uuid4().hex[:6]}")

    async def forecast() -> dict | None:
        c = await intake_get(stack, "taoyuan", f"/cases/{case['id']}")
        return c if c["expected_resolution_at"] else None

    known = await eventually(forecast, message="no resolution forecast reached intake")
    expected = datetime.fromisoformat(known["expected_resolution_at"])
    assert expected > datetime.now(UTC)
    shown = expected.astimezone(BEIJING).strftime("%Y/%m/%d %H:%M")

    for lang in ("zh-CN", "en"):
        context = await new_context(browser, phone=True)
        try:
            page = await sign_in(context, console_url, "wangfang", start=f"/cases/{case['id']}")
            if lang == "en":
                await page.get_by_role("button", name="English").click()
                cell = page.locator(".cw-expected")
                await expect(page.get_by_text("Expected resolution")).to_be_visible()
                await expect(cell).to_contain_text("in about")
                await expect(page.locator(".cw-source")).to_have_text("Grid patrol")
                await screenshot(page, "proactive-case-forecast-en")
                continue
            cell = page.locator(".cw-expected")
            await expect(cell).to_contain_text(shown)
            await expect(cell).not_to_contain_text("暂无预测")
            if known["expected_latest"]:
                await expect(cell).to_contain_text("可能范围")
            await assert_cjk_rendered(page, "预计办结时间")
            await screenshot(page, "proactive-case-forecast")
            await assert_accessible(page, "proactive-case-forecast")
        finally:
            await context.close()


async def seed_cluster(stack, category: str, n: int = 3) -> list[dict]:
    """``n`` cases of one category in HOTSPOT_GRID this week: a hotspot (three make one)."""
    made = []
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, headers=as_(stack, "taoyuan")
    ) as http:
        for i in range(n):
            resp = await http.post(
                "/cases",
                json={
                    "grid_code": HOTSPOT_GRID,
                    "category": category,
                    "description": f"桃园小区北门又出现同类问题（第{i + 1}次）",
                    "location": {"address": "桃园小区北门"},
                },
            )
            assert resp.status_code == 201, resp.text
            made.append(resp.json())
    return made


def hotspot_card(page: Page, category_name: str):
    return page.locator(".hs-spot").filter(
        has=page.get_by_role("heading", name=re.compile(f"桃园社区第2网格 × .*{category_name}"))
    )


async def test_community_accepts_one_hotspot_and_dismisses_another(stack, browser, console_url):
    ads = await seed_cluster(stack, "E0104")  # 违规户外广告
    await seed_cluster(stack, "E0401")  # 占道经营

    context = await new_context(browser)
    try:
        page = await sign_in(context, console_url, "taoyuan", start="/cases")
        await page.get_by_role("navigation").get_by_role("link", name="未诉先办").click()
        await expect(page.get_by_role("heading", name="未诉先办", level=1)).to_be_visible()

        spot = hotspot_card(page, "违规户外广告")
        await expect(spot.get_by_text("待研判")).to_be_visible()
        await expect(spot.locator(".hs-count strong")).to_have_text("3")
        await spot.get_by_text(re.compile("案件举例")).click()
        for c in ads:
            await expect(spot.get_by_role("link", name=c["case_no"])).to_have_attribute(
                "href", f"/cases/{c['id']}"
            )
        await screenshot(page, "proactive-hotspots")
        await assert_accessible(page, "proactive-hotspots")
        await assert_cjk_rendered(page, "未诉先办")

        # Dismissing needs a reason; then it says why and who.
        other = hotspot_card(page, "占道经营")
        await other.get_by_role("button", name="忽略…").click()
        await other.get_by_role("button", name="确认忽略").click()
        await expect(other.get_by_text("请选择忽略的原因")).to_be_visible()
        await other.get_by_label("忽略原因").select_option("seasonal")
        await other.get_by_label("说明").fill("夏季夜市，入秋后自然消失")
        await other.get_by_role("button", name="确认忽略").click()
        await expect(other.get_by_text("已忽略", exact=True)).to_be_visible()
        await expect(other.get_by_text(re.compile("已忽略：季节性问题"))).to_be_visible()

        # One action opens the proactive case; its link lands on it.
        await spot.get_by_role("button", name="主动受理（生成案件）").click()
        link = spot.get_by_role("link", name=re.compile("打开未诉先办案件"))
        await expect(link).to_be_visible()
        await screenshot(page, "proactive-hotspot-accepted")
        await link.click()
        await expect(page).to_have_url(CASE_ID)
        case_id = CASE_ID.search(page.url).group(1)  # type: ignore[union-attr]
        await expect(page.locator(".cw-source")).to_have_text("未诉先办")
        proactive = await intake_get(stack, "taoyuan", f"/cases/{case_id}")
        assert (proactive["source"], proactive["grid_code"], proactive["category"]) == (
            "proactive",
            HOTSPOT_GRID,
            "E0104",
        )

        listing = await intake_get(
            stack, "taoyuan", "/hotspots", area=f"YA/YA01/YA0101/{HOTSPOT_GRID}"
        )
        states = {h["category"]: h for h in listing["hotspots"]}
        assert states["E0104"]["state"] == "accepted"
        assert states["E0104"]["decision"]["case_id"] == case_id
        assert states["E0401"]["state"] == "dismissed"
        assert states["E0401"]["decision"]["reason"] == "seasonal"

        # The state filter: only what is still to decide.
        await page.go_back()
        await page.get_by_label("状态").select_option("proposed")
        await expect(hotspot_card(page, "违规户外广告")).to_have_count(0)
    finally:
        await context.close()
