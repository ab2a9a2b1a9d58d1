"""The supervisors' insights in a real browser on the real stack (issue 16): the command
board's predicted breach (预计超时) with its probability, reason and expected resolution; the
KPI page's 随手做 / 案件来源 counts, 考核诚信 findings with their evidence links, and the SLA
回测 (backtest) charted against what really happened — each figure compared with the API's
own answer to the page.

The data is made through the real APIs. A new SLA policy version (in force from now) gives
CATEGORY, used by no other end-to-end test, a one-minute resolution clock (calendar time,
warning at 99 %). Six such cases are signed for by 交通运输局 and resolved only after
that minute: the department's history says it is slow, so its next case is forecast to be
late the moment it is dispatched — on the near-overdue board before its warning light. One of
the six is sent back for rework (返工) after its resolution: a premature close (过早办结). A
seventh, from a WeChat group (微信群), is fixed on the spot by the grid worker (随手做)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Page, Response, expect

from tests.e2e.console import (
    assert_accessible,
    assert_cjk_rendered,
    new_context,
    screenshot,
    sign_in,
)
from tests.e2e.test_loop import as_, assignment_of, report
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

CATEGORY = "C0202"  # 交通标志损坏 (C02 → 交通运输局): no other end-to-end test uses it
DEPARTMENT, DEPARTMENT_NAME = "jt", "榆安区交通运输局"
GRID = "YA0101-03"  # wangfang's, in 桃园社区
RESOLVE = timedelta(minutes=1)
POLICY = {  # CATEGORY's own rule; every other category keeps the policy in force
    "sign_for": "30 minutes",
    "resolve": "1 minutes",
    "warning_ratio": 0.99,  # the warning light a moment before the deadline
    "ladder": {"steps": [["community", "1 days"]], "repeat_every": None},
}
HISTORY = 6
CLOCKS = {"sign_for": "报到时限", "on_site": "到场时限", "resolve": "办结时限"}


async def one_minute_resolution(http: httpx.AsyncClient, stack) -> None:
    tracking, admin = stack.url("tracking"), as_(stack, "admin")
    items = (await http.get(f"{tracking}/sla/policy-versions", headers=admin)).json()["items"]
    latest = items[-1]["policy"]
    effective = datetime.now(UTC) + timedelta(seconds=2)
    body = {
        **latest,
        "version": items[-1]["version"] + 1,
        "effective_from": effective.isoformat(),
        "note": "e2e: one-minute resolution for 交通标志损坏",
        "rules": {**latest.get("rules", {}), CATEGORY: {"normal": POLICY}},
    }
    resp = await http.post(f"{tracking}/sla/policy-versions", json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    await asyncio.sleep(max(0.0, (effective - datetime.now(UTC)).total_seconds()) + 0.3)


async def dispatched_case(http: httpx.AsyncClient, stack, n: int, **extra) -> dict:
    """A CATEGORY case reported by wangfang and whistled by 桃园社区 (routed to jt)."""
    body = report(
        GRID,
        CATEGORY,
        description=f"路口限速标志牌倾倒（{n}号）",
        location={"address": f"桃园路{n}号路口"},
        **extra,
    )
    created = await http.post(
        f"{stack.url('intake')}/cases", json=body, headers=as_(stack, "wangfang")
    )
    assert created.status_code == 201, created.text
    case = created.json()
    whistled = await http.post(
        f"{stack.url('intake')}/cases/{case['id']}/whistle", json={}, headers=as_(stack, "taoyuan")
    )
    assert whistled.status_code == 200, whistled.text
    return case


async def sign_for(http: httpx.AsyncClient, stack, case: dict) -> dict:
    a = await eventually(
        lambda: assignment_of(http, stack, DEPARTMENT, case["id"]),
        message=f"{case['case_no']} dispatched to {DEPARTMENT}",
    )
    signed = await http.post(
        f"{stack.url('dispatch')}/assignments/{a['id']}/sign-for",
        json={},
        headers=as_(stack, f"{DEPARTMENT}-duty"),
    )
    assert signed.status_code == 200, signed.text
    return a


@pytest.fixture(scope="module")
async def story(stack) -> dict:
    """The slow department's history, a premature close and an on-the-spot fix."""
    intake, dispatch = stack.url("intake"), stack.url("dispatch")
    async with httpx.AsyncClient(timeout=15) as http:
        await one_minute_resolution(http, stack)
        cases = [await dispatched_case(http, stack, n) for n in range(1, HISTORY + 1)]
        assignments = [await sign_for(http, stack, c) for c in cases]
        # resolved only once the minute has run out: each took longer than its allowance
        await asyncio.sleep(RESOLVE.total_seconds() + 6)
        for a in assignments:
            done = await http.post(
                f"{dispatch}/assignments/{a['id']}/resolve",
                json={"result": "已扶正并加固标志牌"},
                headers=as_(stack, f"{DEPARTMENT}-duty"),
            )
            assert done.status_code == 200, done.text
        # 核查不通过 → 返工 right after the resolution: a premature close of jt's
        reworked = cases[0]

        async def resolved() -> bool:
            resp = await http.get(f"{intake}/cases/{reworked['id']}", headers=as_(stack, "taoyuan"))
            return resp.json()["status"] == "resolved"

        await eventually(resolved, message="intake heard the resolution")
        back = await http.post(
            f"{intake}/cases/{reworked['id']}/rework",
            json={"reason": "标志牌仍然松动，需重新固定"},
            headers=as_(stack, "taoyuan"),
        )
        assert back.status_code == 200, back.text
        # 随手做, reported from the residents' WeChat group
        spot = (
            await http.post(
                f"{intake}/cases",
                json=report(GRID, "E0103", source="wechat_group"),
                headers=as_(stack, "wangfang"),
            )
        ).json()
        fixed = await http.post(
            f"{intake}/cases/{spot['id']}/fix-on-spot",
            json={"note": "现场清理楼道杂物"},
            headers=as_(stack, "wangfang"),
        )
        assert fixed.status_code == 200, fixed.text
    return {"cases": cases, "reworked": reworked, "spot": spot}


async def rows_of(page: Page, caption: str) -> list[list[str]]:
    """A table's rows (header cells and data cells, as shown), found by its caption."""
    table = page.get_by_role("table", name=caption)
    await expect(table).to_be_visible()
    return await table.evaluate(
        "t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.innerText.trim()))"
    )


def first_number(text: str) -> int:
    found = re.match(r"-?\d+", text)
    assert found, f"no number in {text!r}"
    return int(found.group())


@pytest.mark.timeout(600)
async def test_board_shows_a_predicted_breach_before_the_warning(
    stack, browser, console_url, story
):
    context = await new_context(browser)
    try:
        page = await sign_in(context, console_url, "supervisor", start="/board")
        await expect(page.get_by_role("status").filter(has_text="实时推送已连接")).to_be_visible()
        async with httpx.AsyncClient(timeout=15) as http:
            case = await dispatched_case(http, stack, 99)
            await sign_for(http, stack, case)
            near = (
                page.get_by_role("region", name=re.compile("^临期"))
                .get_by_role("listitem")
                .filter(has_text=case["case_no"])
            )
            # the board heard the dispatch through its stream: the item is there, predicted
            await expect(near).to_be_visible(timeout=20_000)
            resp = await http.get(
                f"{stack.url('tracking')}/near-overdue",
                params={"limit": 500},
                headers=as_(stack, "supervisor"),
            )
            item = next(
                i
                for i in resp.json()["items"]
                if i["case_no"] == case["case_no"] and i["clock"] == "resolve"
            )
        assert item["predicted"] and item["breach_likely"], item
        assert datetime.fromisoformat(item["warn_at"]) > datetime.now(UTC)
        await expect(near).to_contain_text("预计超时")
        await expect(near).not_to_contain_text("临期")  # not yet warned: not a yellow light
        probability = round(item["breach_probability"] * 100)
        await expect(near).to_contain_text(f"超时概率 {probability}%")
        await expect(near).to_contain_text(item["breach_reason"])
        assert item["breach_reason"].startswith("按该部门近30天同类案件办理时长")
        await expect(near).to_contain_text("预计办结")
        await expect(near).to_contain_text("可能区间")
        counter = page.locator(".board-counters .counter.purple")
        await expect(counter).to_contain_text("预计超时")
        assert first_number(await counter.locator(".n").inner_text()) >= 1
        # keyboard: the case is reached by Tab and named by its number
        link = near.get_by_role("link", name=case["case_no"])
        await link.focus()
        await expect(link).to_be_focused()
        await screenshot(page, "insights-board-predicted")
        await assert_accessible(page, "insights-board-predicted")
        await assert_cjk_rendered(page, "预计超时")

        # English once: the badge and the reason in English (still before the warning)
        await page.get_by_role("button", name="English").click()
        near_en = (
            page.get_by_role("region", name=re.compile("^Near-late"))
            .get_by_role("listitem")
            .filter(has_text=case["case_no"])
        )
        await expect(near_en).to_contain_text("Likely late")
        await expect(near_en).to_contain_text(f"{probability}% likely to be late")
        await expect(near_en).to_contain_text(item["breach_reason_en"])
        await screenshot(page, "insights-board-predicted-en")
        await page.get_by_role("button", name="中文").click()
        await expect(page.get_by_role("heading", name="指挥大屏")).to_be_visible()
    finally:
        await context.close()


def tally_cells(row: dict) -> list[int]:
    """A backtest row as its table shows it: assignments, clocks, warned, late, escalated."""
    b, live = row["backtest"], row["live"]
    return [
        row["assignments"],
        b["clocks"],
        live["clocks"],
        b["warned"],
        live["warned"],
        b["late"],
        live["late"],
        sum(b["escalated"].values()),
        sum(live["escalated"].values()),
    ]


async def test_kpi_counts_integrity_findings_and_a_backtest(stack, browser, console_url, story):
    context = await new_context(browser)
    try:
        answers: dict[str, Response] = {}

        def keep(r: Response) -> None:  # the page's own answers from tracking's KPI routes
            if "/api/tracking/kpi/" in r.url:
                answers[r.url.split("/api/tracking")[1].split("?")[0]] = r

        context.on("response", keep)
        page = await sign_in(context, console_url, "supervisor", start="/kpi")
        await expect(page.get_by_role("heading", name="考核诚信")).to_be_visible()

        # 随手做: wangfang's on-the-spot closings, as the API counted them
        rows = await rows_of(page, "网格员随手做")
        grid_work = await answers["/kpi/grid-work"].json()
        mine = next(w for w in grid_work["workers"] if w["subject"] == "wangfang")
        assert mine["on_spot"] >= 1
        assert [r[:2] for r in rows] == [
            [w["name"] or w["subject"], str(w["on_spot"])] for w in grid_work["workers"]
        ]
        assert "桃园社区第3网格" in next(r for r in rows if r[0] == "网格员王芳")[2]

        # 案件来源: the totals per source, the WeChat group's case among them
        total = (await rows_of(page, "各街道案件来源"))[-1]  # drawn: its answer is in
        sources = await answers["/kpi/sources"].json()
        assert total[0] == "合计"
        assert total[1:] == [str(sources["total"]["reported"])] + [
            str(sources["total"]["by_source"][s["code"]]) for s in sources["sources"]
        ]
        assert sources["total"]["by_source"]["wechat_group"] >= 1
        await expect(page.get_by_role("table", name="各街道案件来源")).to_contain_text("微信群")

        # 考核诚信: jt's premature close, with the reworked case as evidence
        summary = await rows_of(page, "各部门检查结果（发现数/检查数）")
        integrity = await answers["/kpi/integrity"].json()
        jt = next(d for d in integrity["departments"] if d["department_id"] == DEPARTMENT)
        premature = jt["findings"]["premature_close"]
        assert premature["flagged"] >= 1
        jt_row = next(r for r in summary if r[0] == DEPARTMENT_NAME)
        assert jt_row[2].startswith(f"{premature['flagged']}/{premature['examined']}")
        card = page.get_by_role("article", name=re.compile(f"^{DEPARTMENT_NAME}"))
        await expect(card.get_by_role("heading", name=re.compile("^过早办结"))).to_be_visible()
        evidence = card.get_by_role("link", name=story["reworked"]["case_no"]).first
        await expect(evidence).to_have_attribute("href", f"/cases/{story['reworked']['id']}")
        await expect(
            page.get_by_text(re.compile("^部门办结后 7 天内，案件又被返工或重开"))
        ).to_be_visible()
        await screenshot(page, "insights-kpi")
        await assert_accessible(page, "insights-kpi")
        await assert_cjk_rendered(page, "考核诚信")

        # SLA 回测: the demo policy (version 1) on today's jt cases — the one-minute clock
        # made them late; seven working days would not have
        form = page.get_by_role("form", name="回测条件")
        await form.get_by_label("策略版本").select_option("1")
        await form.get_by_label("案件类别").select_option(CATEGORY)
        async with page.expect_response(re.compile(r"/sla/backtest$")) as answer:
            await form.get_by_role("button", name="运行回测").click()
        result = await (await answer.value).json()
        assert result["version"] == 1 and result["draft"] is False
        assert result["assignments"] >= HISTORY
        await expect(page.get_by_text(re.compile(r"^策略版本 1$"))).to_be_visible()
        by_clock = await rows_of(page, "回测：按时限")
        assert [[r[0], *(first_number(c) for c in r[1:])] for r in by_clock] == [
            [CLOCKS[c["clock"]], *tally_cells(c)] for c in result["clocks"]
        ]
        resolve = next(c for c in result["clocks"] if c["clock"] == "resolve")
        assert resolve["live"]["late"] >= HISTORY > resolve["backtest"]["late"]
        by_dept = await rows_of(page, "回测：按部门")
        assert [[first_number(c) for c in r[1:]] for r in by_dept] == [
            tally_cells(d) for d in result["departments"]
        ]
        chart = page.get_by_role("img", name=re.compile("^回测与实际对比柱状图"))
        await expect(chart).to_be_visible()

        async def drawn():
            return await chart.evaluate(
                "c => window.Chart?.getChart(c)?.data.datasets.map(d => d.data)"
            )

        datasets = await eventually(drawn, message="the backtest chart was drawn")
        weeks = result["weeks"]
        assert datasets[0] == [w["backtest"]["late"] for w in weeks]
        assert datasets[1] == [w["live"]["late"] for w in weeks]
        assert datasets[2] == [w["backtest"]["warned"] for w in weeks]
        assert datasets[3] == [w["live"]["warned"] for w in weeks]
        assert datasets[5] == [sum(w["live"]["escalated"].values()) for w in weeks]
        await screenshot(page, "insights-backtest")
        await assert_accessible(page, "insights-backtest")
        await assert_cjk_rendered(page, "回测：按时限")

        # a bad period: the API's own words, nothing run
        await form.get_by_label("派单开始日期").fill("2026-12-31")
        await form.get_by_label("派单结束日期（含当天）").fill("2026-01-01")
        async with page.expect_response(re.compile(r"/sla/backtest$")) as answer:
            await form.get_by_role("button", name="运行回测").click()
        assert (await answer.value).status == 422
        alert = page.get_by_role("alert").filter(has_text="无法回测")
        await expect(alert).to_contain_text("开始日期不能晚于结束日期")
        await expect(page.get_by_role("table", name="回测：按时限")).to_have_count(0)
    finally:
        await context.close()


async def test_each_section_only_for_the_roles_allowed(stack, browser, console_url, story):
    context = await new_context(browser)
    try:
        # a community: its seeds' counts and the backtest, not the integrity checks
        page = await sign_in(context, console_url, "taoyuan", start="/kpi")
        await expect(page.get_by_role("heading", name="随手做 · 小事不出网格")).to_be_visible()
        await expect(page.get_by_role("heading", name="SLA 回测")).to_be_visible()
        await expect(page.get_by_role("heading", name="部门三率")).to_be_visible()
        await expect(page.get_by_role("heading", name="考核诚信")).to_have_count(0)
    finally:
        await context.close()
    context = await new_context(browser)
    try:
        # a department: none of them, and its own KPIs still there
        page = await sign_in(context, console_url, f"{DEPARTMENT}-duty", start="/kpi")
        await expect(page.get_by_role("heading", name="部门三率")).to_be_visible()
        for heading in ("考核诚信", "SLA 回测", "案件来源"):
            await expect(page.get_by_role("heading", name=heading)).to_have_count(0)
    finally:
        await context.close()
