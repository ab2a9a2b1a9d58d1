"""The console's sign-in and the administrator's user page, in a real browser: keyboard-only
sign-in, a wrong password's message, English on request, sign-out, a deep link surviving
sign-in, and a grid worker whose grids the administrator assigns (and who is refused once
disabled)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.console import (
    DEMO_PASSWORD,
    assert_accessible,
    assert_cjk_rendered,
    new_context,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.e2e


async def test_keyboard_only_sign_in_wrong_password_english_and_sign_out(browser, console_url):
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(console_url + "/")
    await expect(page).to_have_url(re.compile(r"/login"))
    await assert_cjk_rendered(page, "网格发现、社区吹哨、部门报到")
    await assert_accessible(page, "login")
    await screenshot(page, "login")
    # Keyboard only: the first Tab reaches the skip link or the username field.
    username = page.get_by_label("用户名")
    await username.focus()
    await page.keyboard.type("taoyuan")
    await page.keyboard.press("Tab")
    await page.keyboard.type("not-the-password")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")
    await page.get_by_label("密码").fill(DEMO_PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="退出")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/cases$"))
    # English on request, kept across a reload (the session survives it: refresh cookie).
    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.goto(console_url + "/cases")  # signed out: back to the sign-in page
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fcases"))
    await context.close()


async def test_the_administrator_assigns_a_grid_worker_who_then_signs_in(
    browser, console_url, stack
):
    context = await new_context(browser)
    page = await sign_in(context, console_url, "admin")
    await expect(page).to_have_url(re.compile(r"/admin/users"))
    await page.get_by_role("button", name="添加用户").first.click()
    form = page.locator("form")
    await form.get_by_label("用户名").fill("sunli")
    await form.get_by_label("姓名").fill("网格员孙丽")
    await form.get_by_label("角色").select_option(label="网格员")
    await form.get_by_label("所属社区").select_option(label="迎泽街道 › 柳巷社区")
    await form.get_by_label("柳巷社区第2网格").check()
    await form.get_by_label("初始密码").fill("liuxiang-2026")
    await assert_accessible(page, "admin-users")
    await form.get_by_role("button", name="保存").click()
    row = page.get_by_role("row").filter(has_text="sunli")
    await expect(row).to_contain_text("柳巷社区第2网格")
    await screenshot(page, "admin-users")

    async with httpx.AsyncClient(base_url=console_url) as client:
        r = await client.post(
            "/api/auth/login", json={"username": "sunli", "password": "liuxiang-2026"}
        )
        assert r.status_code == 200
        assert r.json()["user"]["grids"] == ["YA/YA01/YA0102/YA0102-02"]
        # The token is accepted by intake and carries the assigned grid.
        cases = await client.get(
            "/api/intake/cases", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert cases.status_code == 200

    await row.get_by_role("button", name=re.compile("^停用")).click()
    await expect(row).to_contain_text("已停用")
    async with httpx.AsyncClient(base_url=console_url) as client:
        r = await client.post(
            "/api/auth/login", json={"username": "sunli", "password": "liuxiang-2026"}
        )
        assert r.status_code == 401 and r.json()["error"]["code"] == "user_disabled"
    await context.close()


async def test_a_deep_link_opens_its_page_after_sign_in(browser, console_url):
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(console_url + "/admin/users?role=admin")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("用户名").fill("admin")
    await page.get_by_label("密码").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(re.compile(r"/admin/users\?role=admin$"))
    # A page the role may not use says so instead of failing.
    await page.goto(console_url + "/inbox")
    await expect(page.get_by_role("heading", name="无权访问")).to_be_visible()
    await context.close()
