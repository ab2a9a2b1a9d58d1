"""The department clerk's other actions on an assignment page (派单详情), clicked through in a
desk browser as 城管's duty clerk (cg-duty) on the real stack, each checked through the
dispatch API: 退单 (the case goes on to the community's liaison unit), 转办 to another
department picked by name, 延期 (asked here, approved by the supervisor, seen here) and
挂账 (asked, approved, then 恢复办理 here)."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.cases import as_, report_and_whistle
from tests.e2e.console import assert_accessible, new_context, screenshot, sign_in
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

SLOW = 30_000  # ms: a decision in dispatch → notify → the desk's live stream → the page


async def assignments_of(
    http: httpx.AsyncClient, stack, department: str, case_id: str
) -> list[dict]:
    """The case's assignments at a department, as the district's supervisor reads them."""
    resp = await http.get(
        f"{stack.url('dispatch')}/departments/{department}/assignments",
        params={"limit": 200},
        headers=as_(stack, "supervisor"),
    )
    assert resp.status_code == 200, resp.text
    return [a for a in resp.json() if a["case_id"] == case_id]


async def cg_assignment(http: httpx.AsyncClient, stack, case_id: str) -> dict | None:
    return next(iter(await assignments_of(http, stack, "cg", case_id)), None)


async def assignment(http: httpx.AsyncClient, stack, assignment_id: str) -> dict:
    resp = await http.get(
        f"{stack.url('dispatch')}/assignments/{assignment_id}", headers=as_(stack, "cg-duty")
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def new_case_at_cg(stack, description: str) -> tuple[dict, dict]:
    async with httpx.AsyncClient(timeout=15) as http:
        case = await report_and_whistle(http, stack, description)
        a = await eventually(
            lambda: cg_assignment(http, stack, case["id"]),
            message="dispatch assigned the case to cg",
        )
    return case, a


async def open_as_cg(browser, console_url: str, case: dict, a: dict):
    context = await new_context(browser)
    page = await sign_in(context, console_url, "cg-duty", start=f"/assignments/{a['id']}")
    await expect(page).to_have_url(f"{console_url}/assignments/{a['id']}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"派单 {case['case_no']}")
    return context, page


def card(page: Page, summary: str):
    """A folded action (退单, 转办, 延期, 挂账/缓办): its <details> by the summary's words."""
    return page.locator("details", has=page.locator("summary", has_text=summary))


async def shot(page: Page, name: str) -> None:
    """A full-page screenshot from the top (the sticky header would sit mid-page otherwise)."""
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, name)


async def photos_gone(page: Page, http: httpx.AsyncClient, stack, case_id: str) -> None:
    """Once the case left cg, intake refuses cg its photos (403): the page says so quietly
    instead of showing that refusal as an error — also when opened afresh."""

    async def refused():
        resp = await http.get(
            f"{stack.url('intake')}/cases/{case_id}/photos", headers=as_(stack, "cg-duty")
        )
        return resp.status_code == 403

    await eventually(refused, message="intake no longer shows cg the case's photos")
    await page.reload()
    photos = page.get_by_role("region", name="现场照片")
    await expect(photos).to_contain_text("本部门已退单或转办此派单，照片不再显示。")
    await expect(photos.get_by_role("alert")).to_have_count(0)


async def sign_for(page: Page) -> None:
    await page.get_by_role("button", name="报到", exact=True).click()
    await expect(page.get_by_text("已报到，开始办理")).to_be_visible()
    await expect(page.locator("dl.facts")).to_contain_text("办理中")


async def test_reject_needs_a_reason_and_routes_the_case_on(stack, browser, console_url):
    case, a = await new_case_at_cg(stack, "单元门口堆放废旧家具，堵塞消防通道")
    context, page = await open_as_cg(browser, console_url, case, a)
    try:
        reject = card(page, "退单（不属于本部门职责）")
        await reject.locator("summary").click()
        # an empty reason is refused in words, and nothing is sent
        await reject.get_by_role("button", name="退单", exact=True).click()
        await expect(reject.get_by_role("alert")).to_have_text("请填写退单理由")
        await assert_accessible(page, "department-reject")
        async with httpx.AsyncClient(timeout=15) as http:
            assert (await assignment(http, stack, a["id"]))["state"] == "dispatched"

        reason = "废旧家具属供电线路改造遗留物，应由供电公司清理"
        await reject.get_by_label("退单理由").fill(reason)
        await reject.get_by_role("button", name="退单", exact=True).click()
        await expect(page.get_by_text("已退单，案件将改派")).to_be_visible()
        facts = page.locator("dl.facts")
        await expect(facts).to_contain_text("已退单")
        await expect(facts).to_contain_text(reason)
        await expect(page.get_by_text("此派单已退单，无需再办理。")).to_be_visible()
        await expect(page.get_by_role("button", name="报到", exact=True)).to_have_count(0)
        await shot(page, "department-rejected")

        async with httpx.AsyncClient(timeout=15) as http:
            gone = await assignment(http, stack, a["id"])
            assert gone["state"] == "rejected", gone
            assert gone["exit_reason"] == reason
            # E0101 has only 城管's rule in the district and no single default body there, so
            # the case goes on to 桃园社区's first liaison unit (包联单位): 榆安供电公司
            [moved] = await eventually(
                lambda: assignments_of(http, stack, "gd", case["id"]),
                message="the case was re-routed to gd",
            )
            assert moved["state"] == "dispatched" and moved["role"] == "lead", moved
            assert moved["basis"] == "liaison", moved
            assert moved["reason"].startswith(f"退单后改派：榆安区城市管理局退单（{reason}）"), (
                moved
            )
            waiting = await http.get(
                f"{stack.url('dispatch')}/manual-dispatch",
                params={"limit": 200},
                headers=as_(stack, "taoyuan"),
            )
            assert waiting.status_code == 200, waiting.text
            assert case["id"] not in {w["case_id"] for w in waiting.json()}
            await photos_gone(page, http, stack, case["id"])
            await expect(page.locator("dl.facts")).to_contain_text("已退单")
    finally:
        await context.close()


async def test_transfer_to_a_department_picked_by_name(stack, browser, console_url):
    case, a = await new_case_at_cg(stack, "小区空地堆放建筑渣土，疑似违规施工")
    context, page = await open_as_cg(browser, console_url, case, a)
    try:
        await sign_for(page)
        transfer = card(page, "转办给其他部门")
        await transfer.locator("summary").click()
        await transfer.get_by_label("转给哪个部门").select_option(label="榆安区住房和城乡建设局")
        reason = "渣土来自违规装修施工，属住建部门监管"
        await transfer.get_by_label("转办理由").fill(reason)
        await transfer.get_by_role("button", name="转办", exact=True).click()
        await expect(page.get_by_text("已转办至榆安区住房和城乡建设局")).to_be_visible()
        facts = page.locator("dl.facts")
        await expect(facts).to_contain_text("已转办")
        await expect(facts).to_contain_text(reason)
        await expect(facts.locator("dt", has_text="转至").locator("+ dd")).to_have_text(
            "榆安区住房和城乡建设局"
        )
        await expect(page.get_by_text("此派单已转办，无需再办理。")).to_be_visible()
        await shot(page, "department-transferred")

        async with httpx.AsyncClient(timeout=15) as http:
            old = await assignment(http, stack, a["id"])
            assert old["state"] == "transferred", old
            assert old["transferred_to"] == "zj" and old["exit_reason"] == reason, old
            [new] = await assignments_of(http, stack, "zj", case["id"])
            assert new["state"] == "dispatched" and new["role"] == "lead", new
            assert new["basis"] == "transfer", new
            assert new["id"] != a["id"]
            await photos_gone(page, http, stack, case["id"])
            await expect(page.locator("dl.facts")).to_contain_text("已转办")
    finally:
        await context.close()


async def test_extension_asked_here_and_approved_by_the_supervisor(stack, browser, console_url):
    case, a = await new_case_at_cg(stack, "楼后空地堆放大量装修垃圾，需调车分批清运")
    context, page = await open_as_cg(browser, console_url, case, a)
    try:
        await sign_for(page)
        extension = card(page, "申请延期")
        await extension.locator("summary").click()
        await extension.get_by_label("延期工作日数").fill("3")
        reason = "垃圾量大，需协调环卫车辆分批清运"
        await extension.get_by_label("延期理由").fill(reason)
        await extension.get_by_role("button", name="提交延期申请").click()
        await expect(page.get_by_text("延期申请已提交，等待督办审批")).to_be_visible()
        requests = page.get_by_role("region", name="延期与挂账/缓办申请")
        item = requests.get_by_role("listitem").filter(has_text="延期 3 个工作日")
        await expect(item).to_contain_text("待审批")
        await expect(item).to_contain_text(reason)
        await expect(extension).to_contain_text("已有一份延期申请（3 个工作日）待审批")
        await shot(page, "department-extension-pending")

        async with httpx.AsyncClient(timeout=15) as http:
            asked = await assignment(http, stack, a["id"])
            [pending] = asked["extensions"]
            assert pending["state"] == "pending" and pending["days"] == 3, pending
            assert pending["reason"] == reason and pending["requested_by"] == "cg-duty"
            # the deadline tracking runs for the resolution, before the extension
            before = await eventually(
                lambda: _deadline_of(http, stack, a["id"], "resolve"),
                message="tracking announced the resolution deadline",
            )
            approved = await http.post(
                f"{stack.url('dispatch')}/extension-requests/{pending['id']}/approve",
                json={"comment": "同意延期"},
                headers=as_(stack, "supervisor"),
            )
            assert approved.status_code == 200, approved.text

        # the decision reaches the desk's live stream and the page reads the assignment again
        await expect(item).to_contain_text("已批准", timeout=SLOW)
        await expect(item).to_contain_text("批准 3 个工作日")
        await expect(item).to_contain_text("同意延期")
        await expect(extension.get_by_role("button", name="提交延期申请")).to_be_visible()
        await shot(page, "department-extension-approved")

        async with httpx.AsyncClient(timeout=15) as http:
            [done] = (await assignment(http, stack, a["id"]))["extensions"]
            assert done["state"] == "approved" and done["granted_days"] == 3, done
            assert done["decided_by"] == "supervisor"

            async def moved():
                after = await _deadline_of(http, stack, a["id"], "resolve")
                return after is not None and after > before

            await eventually(moved, message="the resolution deadline moved by the extension")
    finally:
        await context.close()


async def _deadline_of(
    http: httpx.AsyncClient, stack, assignment_id: str, clock: str
) -> datetime | None:
    got = await assignment(http, stack, assignment_id)
    if got["deadline_clock"] != clock or not got["deadline"]:
        return None
    return datetime.fromisoformat(got["deadline"])


async def test_hang_approved_then_resumed(stack, browser, console_url):
    case, a = await new_case_at_cg(stack, "路边堆放的建材归属不明，需查找产权人")
    context, page = await open_as_cg(browser, console_url, case, a)
    try:
        await sign_for(page)
        pause = card(page, "申请挂账/缓办")
        await pause.locator("summary").click()
        await pause.get_by_role("radio", name="挂账（暂时无法解决）").check()
        reason = "建材产权人外出务工，暂时无法联系"
        # (the label's text is "理由 *": by the accessible name, which leaves the mark out)
        await pause.get_by_role("textbox", name="理由", exact=True).fill(reason)
        await pause.get_by_role("button", name="提交申请").click()
        await expect(page.get_by_text("挂账申请已提交，等待督办审批")).to_be_visible()
        requests = page.get_by_role("region", name="延期与挂账/缓办申请")
        item = requests.get_by_role("listitem").filter(has_text=reason)
        await expect(item).to_contain_text("挂账")
        await expect(item).to_contain_text("待审批")
        await expect(pause).to_contain_text("已有一份挂账申请待审批")
        await shot(page, "department-hang-pending")

        async with httpx.AsyncClient(timeout=15) as http:
            [pending] = (await assignment(http, stack, a["id"]))["pauses"]
            assert pending["state"] == "pending" and pending["kind"] == "hang", pending
            assert pending["reason"] == reason
            approved = await http.post(
                f"{stack.url('dispatch')}/pause-requests/{pending['id']}/approve",
                json={"comment": "同意挂账，联系上产权人后恢复"},
                headers=as_(stack, "supervisor"),
            )
            assert approved.status_code == 200, approved.text

        # live: the page shows the assignment on hold, its clocks standing still
        facts = page.locator("dl.facts")
        await expect(facts).to_contain_text("挂账中", timeout=SLOW)
        await expect(facts).to_contain_text("计时已暂停")
        await expect(item).to_contain_text("已批准")
        resume = page.get_by_role("region", name="恢复办理")
        await expect(resume).to_contain_text("本派单挂账中，时限暂停计时")
        await expect(card(page, "申请挂账/缓办")).to_have_count(0)
        await shot(page, "department-hung")
        async with httpx.AsyncClient(timeout=15) as http:
            paused = await assignment(http, stack, a["id"])
            assert paused["paused"] is True and paused["pause_kind"] == "hang", paused

        await resume.get_by_label("说明（可选）").fill("已联系上产权人，今日清理")
        await resume.get_by_role("button", name="恢复办理").click()
        await expect(page.get_by_text("已恢复办理，时限继续计时")).to_be_visible()
        await expect(facts).not_to_contain_text("挂账中")
        await expect(page.get_by_role("heading", name="恢复办理")).to_have_count(0)
        await expect(item).to_contain_text("已结束")
        await expect(item).to_contain_text("恢复办理")
        # the resolution clock runs again: its moved deadline shows without a reload
        await expect(facts).to_contain_text("办结时限", timeout=30_000)
        await expect(facts).not_to_contain_text("无正在计时的时限")
        await shot(page, "department-resumed")

        async with httpx.AsyncClient(timeout=15) as http:
            running = await assignment(http, stack, a["id"])
            assert running["state"] == "signed_for" and running["paused"] is False, running
            assert running["pause_kind"] is None
            [ended] = running["pauses"]
            assert ended["state"] == "ended" and ended["ended_how"] == "resumed", ended
            assert (
                ended["ended_by"] == "cg-duty" and ended["end_note"] == "已联系上产权人，今日清理"
            )
            # tracking runs the resolution clock again, and dispatch shows its deadline
            await eventually(
                lambda: _deadline_of(http, stack, a["id"], "resolve"),
                message="the resolution clock runs again",
            )
    finally:
        await context.close()
