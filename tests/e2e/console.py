"""Helpers for the console's browser tests: Playwright for Python driving Debian's chromium
(the registry's own browser download is not reachable here), signed-in pages per demo user,
phone and desk viewports, screenshots kept as test artefacts and an axe-core check."""

from __future__ import annotations

import os
import re
from contextlib import asynccontextmanager
from pathlib import Path

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
DEMO_PASSWORD = "whistle-demo"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESK = {"viewport": {"width": 1440, "height": 900}}
# Chromium as root in a sandbox-less container with no network beyond loopback.
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@asynccontextmanager
async def launch_browser():
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def new_context(
    browser: Browser, *, phone: bool = False, lang: str = "zh-CN", **extra
) -> BrowserContext:
    options = {
        **(PHONE if phone else DESK),
        "locale": lang,
        "timezone_id": "Asia/Shanghai",
        **extra,
    }
    context = await browser.new_context(**options)
    context.set_default_timeout(15_000)
    # The console must work on an intranet with no internet: anything it asks of another host
    # is refused here and recorded (assert_offline).
    offsite: list[str] = []

    async def refuse_offsite(route) -> None:
        offsite.append(route.request.url)
        await route.abort()

    await context.route(
        re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost)[:/])"), refuse_offsite
    )
    context.offsite = offsite  # type: ignore[attr-defined]
    return context


def assert_offline(context: BrowserContext) -> None:
    """Nothing the console loaded came from anywhere but its own origin (no CDN, no tiles)."""
    offsite = getattr(context, "offsite", [])
    assert not offsite, f"the console asked other hosts: {offsite[:5]}"


async def sign_in(context: BrowserContext, base: str, username: str, *, start: str = "/") -> Page:
    """Open ``start`` in a fresh page and sign in through the login form."""
    page = await context.new_page()
    await page.goto(base + start)
    await page.get_by_label(re.compile("用户名|Username")).fill(username)
    await page.get_by_label(re.compile("^(密码|Password)")).fill(DEMO_PASSWORD)
    await page.get_by_role("button", name=re.compile("^(登录|Sign in)$")).click()
    await expect(page.get_by_role("button", name=re.compile("退出|Sign out"))).to_be_visible()
    return page


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def assert_accessible(page: Page, what: str) -> None:
    """axe-core's serious and critical findings fail the test (labels, names, contrast,
    keyboard traps); the full report is kept beside the screenshots."""
    results = await Axe().run(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{what}-axe.txt").write_text(results.generate_report(), "utf-8")
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, f"{what}: accessibility violations: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + ", ".join(str(n.get("target")) for n in v.get("nodes", [])[:3])
        for v in bad
    )


async def assert_cjk_rendered(page: Page, text: str) -> None:
    """The Chinese text is on the page and drawn with a CJK font, not as missing-glyph boxes:
    two different characters drawn in the element's font give different pixels (every missing
    glyph is the same .notdef box)."""
    locator = page.get_by_text(text).first
    await expect(locator).to_be_visible()
    differ = await locator.evaluate(
        """el => { const s = getComputedStyle(el);
                   const draw = ch => { const c = document.createElement('canvas');
                     c.width = c.height = 64; const g = c.getContext('2d');
                     g.font = `48px ${s.fontFamily}`; g.fillText(ch, 4, 52);
                     return Array.from(g.getImageData(0, 0, 64, 64).data).join(','); };
                   const a = draw('网'), b = draw('哨'), blank = draw(' ');
                   return a !== b && a !== blank; }"""
    )
    assert differ, "Chinese characters are drawn as identical boxes: no CJK font installed?"
