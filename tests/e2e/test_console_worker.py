"""The grid worker's phone screens and the resident's rating page, in a real browser on the
real stack: 我的网格 (/worker), 上报问题 (/report) with a photo and a point tapped on the grid
map, 随手做 with the phone's position and an after-photo, and 群众评单 through a one-time link.
Everything the screens claim is checked again through the services' APIs."""

from __future__ import annotations

import io
import re
import uuid

import httpx
import pytest
from PIL import Image
from playwright.async_api import expect

from tests.helpers import eventually
from tests.e2e.console import (
    assert_accessible,
    assert_cjk_rendered,
    new_context,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.e2e

# A point inside 桃园社区第3网格 (YA0101-03: lon 112.534–112.538, lat 37.885–37.888).
IN_GRID_03 = {"latitude": 37.8866, "longitude": 112.5362}
CASE_ID = re.compile(r"/cases/([0-9a-f-]{36})$")
# What the screens create, for the tests after them (each still works alone).
made: dict[str, str] = {}


def picture(fmt: str, size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def token(stack, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.mint_demo_token(who)}"}


async def case_id_of(page) -> str:
    href = await page.get_by_role("link", name=re.compile("查看案件详情")).get_attribute("href")
    found = CASE_ID.search(href or "")
    assert found, href
    return found.group(1)


async def tap_grid(page, code: str) -> None:
    """A finger on the report map, in the middle of the grid's visible part."""
    grid_map = page.get_by_role("region", name=re.compile("网格地图"))
    await grid_map.evaluate("el => el.scrollIntoView({block: 'center'})")
    area = await grid_map.bounding_box()
    shape = await page.locator(f"path.grid-{code}").bounding_box()
    left, top = max(area["x"], shape["x"]), max(area["y"], shape["y"])
    right = min(area["x"] + area["width"], shape["x"] + shape["width"])
    bottom = min(area["y"] + area["height"], shape["y"] + shape["height"])
    assert right > left and bottom > top, f"grid {code} is not on the map"
    await grid_map.click(
        position={"x": (left + right) / 2 - area["x"], "y": (top + bottom) / 2 - area["y"]}
    )


async def pick_category(page, major: str, minor: str) -> None:
    await page.get_by_label("大类").select_option(label=major)
    await page.get_by_label("小类").select_option(label=minor)


async def test_worker_reports_a_case_with_a_photo_and_a_tapped_point(stack, browser, console_url):
    context = await new_context(browser, phone=True)
    try:
        page = await sign_in(context, console_url, "wangfang", start="/worker")

        # 我的网格: his two grids by name, on the map and in the list, and the big button.
        await expect(page.get_by_role("heading", name="我的网格", level=1)).to_be_visible()
        grids = page.locator(".grid-names")
        await expect(grids.get_by_text("桃园社区第3网格")).to_be_visible()
        await expect(grids.get_by_text("桃园社区第4网格")).to_be_visible()
        await expect(page.locator("path.grid-YA0101-03")).to_be_visible()
        await expect(page.get_by_role("button", name=re.compile("未结案"))).to_be_visible()
        await screenshot(page, "worker-home")
        await assert_accessible(page, "worker-home")
        await assert_cjk_rendered(page, "上报问题")

        await page.get_by_role("link", name="上报问题").click()
        await expect(page).to_have_url(re.compile(r"/report$"))
        await expect(page.get_by_role("heading", name="上报问题", level=1)).to_be_visible()

        # Sending an empty form says what is missing and sends nothing.
        await page.get_by_role("button", name="提交上报").click()
        await expect(page.get_by_text("请补全标注的内容后再提交。")).to_be_visible()
        await expect(page.get_by_text("请选择网格，或在地图上点选位置")).to_be_visible()
        await expect(page.get_by_text("请描述发现的问题")).to_be_visible()

        description = f"单元门口堆放装修垃圾，堵塞消防通道 {uuid.uuid4().hex[:6]}"
        await pick_category(page, "事件·市容环境", "乱堆物料")
        await page.get_by_label("问题描述").fill(description)
        await page.get_by_label("详细地址").fill("桃园小区5号楼2单元")
        await page.get_by_label("紧急").check()
        # What was typed survives a reload (a phone kills a tab in the background).
        await page.reload()
        await expect(page.get_by_label("问题描述")).to_have_value(description)
        await expect(page.get_by_label("小类")).to_have_value("E0101")
        await expect(page.get_by_label("紧急")).to_be_checked()

        # A tap on the map, inside grid 3: intake says which grid holds the point.
        await tap_grid(page, "YA0101-03")
        await expect(page.get_by_text("位置在桃园社区第3网格")).to_be_visible()
        await expect(page.get_by_role("combobox", name=re.compile("^网格"))).to_have_value(
            "YA0101-03"
        )
        await expect(page.get_by_text(re.compile("已选位置"))).to_be_visible()

        # A tap on a neighbour's grid is refused with the grid named, and the point cleared.
        await tap_grid(page, "YA0101-02")
        await expect(page.get_by_text(re.compile("不在您可上报的网格内"))).to_be_visible()
        await expect(page.get_by_text(re.compile("已选位置"))).to_have_count(0)
        await tap_grid(page, "YA0101-03")
        await expect(page.get_by_text("位置在桃园社区第3网格")).to_be_visible()

        # One real photo, and one file that only claims to be one.
        before = picture("PNG", (64, 48), (200, 80, 40))
        await page.get_by_label(re.compile("现场照片")).set_input_files(
            files=[
                {"name": "corridor.png", "mimeType": "image/png", "buffer": before},
                {"name": "broken.png", "mimeType": "image/png", "buffer": b"not a picture at all"},
            ]
        )
        await expect(page.get_by_role("img", name="待上传照片2")).to_be_visible()
        await screenshot(page, "worker-report")
        await assert_accessible(page, "worker-report")

        await page.get_by_role("button", name="提交上报").click()
        await expect(page.get_by_role("heading", name="已上报")).to_be_visible()
        await expect(page.locator(".upload.done")).to_have_count(1)
        await expect(page.locator(".upload.done").get_by_text("已上传")).to_be_visible()
        # The refused one stays, with intake's reason and a retry; removing it is a choice.
        failed = page.locator(".upload.failed")
        await expect(failed.get_by_role("alert")).to_contain_text("文件不是有效的图片")
        await failed.get_by_role("button", name="重试").click()
        await expect(failed.get_by_role("alert")).to_contain_text("文件不是有效的图片")
        await failed.get_by_role("button", name="移除").click()
        await expect(page.locator(".upload.failed")).to_have_count(0)
        case_no = (await page.locator(".case-no-big strong").inner_text()).strip()
        assert re.fullmatch(r"YA\d{8}-\d{4}", case_no), case_no
        case_id = await case_id_of(page)
        await screenshot(page, "worker-report-sent")

        # The case and its photo really exist, where the tap put them.
        async with httpx.AsyncClient(
            base_url=stack.url("intake"), timeout=10, headers=token(stack, "wangfang")
        ) as http:
            case = (await http.get(f"/cases/{case_id}")).raise_for_status().json()
            assert case["case_no"] == case_no
            assert case["grid_code"] == "YA0101-03"
            assert case["category"] == "E0101"
            assert case["priority"] == "urgent"
            assert case["description"] == description
            assert case["location"]["address"] == "桃园小区5号楼2单元"
            assert 37.885 <= case["location"]["lat"] <= 37.888
            assert 112.534 <= case["location"]["lon"] <= 112.538
            photos = (await http.get(f"/cases/{case_id}/photos")).raise_for_status().json()
            assert [(p["kind"], p["width"], p["height"]) for p in photos] == [("before", 64, 48)]
        made["reported"] = case_id

        # Back home: the case is among his cases with its status.
        await page.get_by_role("link", name="返回我的网格").click()
        card = page.locator(".case-card").filter(has=page.get_by_role("link", name=case_no))
        await expect(card).to_be_visible()
        await expect(card.get_by_text("已上报")).to_be_visible()
        await expect(card.get_by_text("乱堆物料")).to_be_visible()
        await page.get_by_role("button", name=re.compile("未结案")).click()
        await expect(page.get_by_role("button", name=re.compile("未结案"))).to_have_attribute(
            "aria-pressed", "true"
        )
        await expect(card).to_be_visible()
        await expect(card.get_by_role("link", name=case_no)).to_have_attribute(
            "href", f"/cases/{case_id}"
        )
    finally:
        await context.close()


async def test_position_refused_is_explained(stack, browser, console_url):
    context = await new_context(browser, phone=True)  # no geolocation permission
    try:
        page = await sign_in(context, console_url, "wangfang", start="/report")
        await page.get_by_role("button", name="使用当前位置").click()
        await expect(page.get_by_text(re.compile("定位被拒绝"))).to_be_visible()
        await expect(page.get_by_text(re.compile("已选位置"))).to_have_count(0)
    finally:
        await context.close()


async def test_fix_on_spot_with_position_and_after_photo_ends_closed(stack, browser, console_url):
    context = await new_context(
        browser, phone=True, geolocation=IN_GRID_03, permissions=["geolocation"]
    )
    try:
        page = await sign_in(context, console_url, "wangfang", start="/report")
        description = f"楼道口散落建筑垃圾，已当场清理 {uuid.uuid4().hex[:6]}"
        await pick_category(page, "事件·市容环境", "乱堆物料")
        await page.get_by_label("问题描述").fill(description)

        await page.get_by_role("button", name="使用当前位置").click()
        await expect(page.get_by_text("位置在桃园社区第3网格")).to_be_visible()
        await expect(page.get_by_role("combobox", name=re.compile("^网格"))).to_have_value(
            "YA0101-03"
        )

        await page.get_by_label(re.compile("现场照片")).set_input_files(
            files=[
                {
                    "name": "before.jpg",
                    "mimeType": "image/jpeg",
                    "buffer": picture("JPEG", (80, 60), (90, 90, 90)),
                }
            ]
        )
        await page.get_by_label("已现场解决（随手做）").check()
        await page.get_by_label("处理说明").fill("已叫保洁当场清运完毕")
        await page.get_by_label("整改后照片").set_input_files(
            files=[
                {
                    "name": "after.jpg",
                    "mimeType": "image/jpeg",
                    "buffer": picture("JPEG", (60, 80), (30, 160, 60)),
                }
            ]
        )
        await page.get_by_role("button", name="上报并随手做结案").click()

        await expect(page.get_by_role("heading", name="已上报")).to_be_visible()
        await expect(page.get_by_text("已随手做结案。")).to_be_visible()
        await expect(page.locator(".outcome-head").get_by_text("已结案")).to_be_visible()
        await expect(page.locator(".upload.done")).to_have_count(2)
        case_id = await case_id_of(page)
        await screenshot(page, "worker-fix-on-spot")

        # The earlier open report of the same kind nearby is offered as a possible duplicate.
        if "reported" in made:
            async with httpx.AsyncClient(
                base_url=stack.url("intake"), timeout=10, headers=token(stack, "wangfang")
            ) as http:
                first = (await http.get(f"/cases/{made['reported']}")).raise_for_status().json()
            dupes = page.locator(".dupes")
            await expect(dupes.get_by_role("heading", name="可能重复的案件")).to_be_visible()
            await expect(dupes.get_by_role("link", name=first["case_no"])).to_have_attribute(
                "href", f"/cases/{made['reported']}"
            )

        async with httpx.AsyncClient(
            base_url=stack.url("intake"), timeout=10, headers=token(stack, "wangfang")
        ) as http:
            case = (await http.get(f"/cases/{case_id}")).raise_for_status().json()
            assert case["status"] == "closed"
            assert case["description"] == description
            assert case["grid_code"] == "YA0101-03"
            assert case["location"]["lat"] == pytest.approx(IN_GRID_03["latitude"], abs=1e-5)
            assert case["location"]["lon"] == pytest.approx(IN_GRID_03["longitude"], abs=1e-5)
            photos = (await http.get(f"/cases/{case_id}/photos")).raise_for_status().json()
            assert sorted((p["kind"], p["width"], p["height"]) for p in photos) == [
                ("after", 60, 80),
                ("before", 80, 60),
            ]
        # Closed at grid level (随手做), as tracking recorded it.
        closed = await timeline_event(stack, case_id, "case.closed")
        assert closed["payload"]["resolution"] == "on_spot"
        assert closed["payload"]["note"] == "已叫保洁当场清运完毕"
        made["fixed"] = case_id

        await page.get_by_role("link", name="返回我的网格").click()
        card = page.locator(".case-card").filter(has_text=description)
        await expect(card.get_by_text("已结案")).to_be_visible()
    finally:
        await context.close()


async def timeline_event(stack, case_id: str, kind: str) -> dict:
    """The case's event of ``kind`` on tracking's timeline, once it got there."""
    async with httpx.AsyncClient(
        base_url=stack.url("tracking"), timeout=10, headers=token(stack, "taoyuan")
    ) as http:

        async def probe():
            res = await http.get(f"/cases/{case_id}/timeline")
            found = [e for e in res.json()["events"] if e["type"] == kind] if res.is_success else []
            return found[-1] if found else None

        return await eventually(probe, message=f"no {kind} on the timeline of {case_id}")


async def closed_case(stack) -> str:
    """A case the worker closed himself, made through the API (when run alone)."""
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, headers=token(stack, "wangfang")
    ) as http:
        case = (
            (
                await http.post(
                    "/cases",
                    json={
                        "grid_code": "YA0101-04",
                        "category": "E0101",
                        "description": "楼道堆放杂物，已清理",
                    },
                )
            )
            .raise_for_status()
            .json()
        )
        (
            await http.post(f"/cases/{case['id']}/fix-on-spot", json={"note": "已清理"})
        ).raise_for_status()
    return case["id"]


async def test_resident_rates_through_a_one_time_link(stack, browser, console_url):
    case_id = made.get("fixed") or await closed_case(stack)
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), timeout=10, headers=token(stack, "taoyuan")
    ) as http:
        link = (await http.post(f"/cases/{case_id}/rating-link")).raise_for_status().json()
        case = (await http.get(f"/cases/{case_id}")).raise_for_status().json()
    assert link["path"].startswith("/ratings/")

    context = await new_context(browser, phone=True)  # a resident: no account, no sign-in
    try:
        page = await context.new_page()
        await page.goto(console_url + link["path"])
        await expect(page.get_by_role("heading", name="评价办理结果")).to_be_visible()
        await expect(page.get_by_text(case["case_no"])).to_be_visible()
        await expect(page.get_by_text(case["description"])).to_be_visible()
        await expect(page.get_by_text("事件·市容环境 › 乱堆物料")).to_be_visible()
        await expect(page.get_by_text("已结案")).to_be_visible()

        # Sending without stars asks for them.
        await page.get_by_role("button", name="提交评价").click()
        await expect(page.get_by_text("请选择1到5星")).to_be_visible()

        # Stars are radio buttons: the keyboard moves through them.
        await page.get_by_label("1星，非常不满意").check()
        for _ in range(3):
            await page.keyboard.press("ArrowRight")
        await expect(page.get_by_label("4星，满意")).to_be_checked()
        await expect(page.get_by_text("4星 · 满意")).to_be_visible()
        await page.get_by_label("意见建议（选填）").fill("清理得很及时，谢谢网格员")
        await screenshot(page, "resident-rating")
        await assert_accessible(page, "resident-rating")

        await page.get_by_role("button", name="提交评价").click()
        await expect(page.get_by_text("感谢您的评价！")).to_be_visible()
        await expect(page.get_by_text("清理得很及时，谢谢网格员")).to_be_visible()
        await screenshot(page, "resident-rating-thanks")

        # The rating is on the case: tracking has it, and it cannot be given twice.
        rated = await timeline_event(stack, case_id, "case.rated")
        assert rated["payload"]["score"] == 4
        assert rated["payload"]["comment"] == "清理得很及时，谢谢网格员"
        assert rated["payload"]["channel"] == "link"
        async with httpx.AsyncClient(
            base_url=stack.url("intake"), timeout=10, headers=token(stack, "taoyuan")
        ) as http:
            again = await http.post(f"/cases/{case_id}/rating", json={"score": 5})
        assert again.status_code == 409, again.text

        # The link is spent: opening it again says so, in either language.
        await page.reload()
        await expect(page.get_by_role("alert")).to_have_text("评价链接无效、已使用或已过期")
        await expect(page.get_by_role("button", name="提交评价")).to_have_count(0)
        await page.get_by_role("button", name="English").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "the rating link is invalid, used or expired"
        )
        await expect(
            page.get_by_role("heading", name="Rate how your problem was handled")
        ).to_be_visible()
    finally:
        await context.close()
