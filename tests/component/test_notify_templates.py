"""Message templates on the real stack (PostgreSQL, the broker, notify's consumer): an admin
replaces a template, the next dispatch is written with it, a reset brings the shipped text
back; a bad template is refused with 422 in both languages and changes nothing.

Its own module (so its own database): a replaced template is in force for every message.
"""

from __future__ import annotations

import pytest

from services.notify.domain import LOCALES, NoticeKind, shipped
from tests.component.notify_fixtures import (  # noqa: F401  (notify is a fixture)
    ADMIN,
    add_recipient,
    dispatched,
    inbox_of,
    notify,
    snapshot,
    staff,
    uid,
)
from tests.helpers import eventually, publish_event

URL = "/templates/case.dispatched/zh-CN"
SHIPPED_TITLE = "【派单】案件{case_no}已派至榆安区城市管理局"


async def next_message(client, bootstrap, dept: str, case_no: str) -> dict:
    """Publish a dispatch to ``dept`` and return the message its desk receives."""
    await publish_event(bootstrap, dispatched(dept, case_no=case_no))

    async def arrived():
        rows = await inbox_of(client, f"duty-{dept}", staff(dept))
        return next((m for m in rows if case_no in m["body_en"]), None)

    return await eventually(arrived, timeout=45, message=f"the dispatch of {case_no} arrived")


async def test_an_edited_template_is_used_for_the_next_message_until_it_is_reset(notify):  # noqa: F811
    client, _, bootstrap = notify
    dept = f"cg-{uid()}"
    await add_recipient(
        client, id=f"duty-{dept}", name="城管值班室", kind="department", department_id=dept
    )

    listed = await client.get("/templates", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert [(r["kind"], r["locale"]) for r in rows] == [
        (k.value, locale) for k in NoticeKind for locale in LOCALES
    ]
    assert all(r["default"] and r["updated_by"] is None for r in rows)
    [shipped_row] = [r for r in rows if (r["kind"], r["locale"]) == ("case.dispatched", "zh-CN")]
    assert shipped_row["title"] == shipped().template(NoticeKind.DISPATCHED, "zh-CN").title
    assert {"case_no", "department", "link", "issue"} <= set(shipped_row["fields"])

    first = await next_message(client, bootstrap, dept, "YA20261122-0101")
    assert first["title"] == SHIPPED_TITLE.format(case_no="YA20261122-0101")

    edited = {
        "title": "【新派单】${urgent}${case_no}请${department}签收",
        "body": "${department}：案件${case_no}待签收。${where}${issue}办理入口：${link}",
    }
    put = await client.put(URL, json=edited, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert put.json()["default"] is False and put.json()["updated_by"] == "admin"
    assert (put.json()["title"], put.json()["body"]) == (edited["title"], edited["body"])

    second = await next_message(client, bootstrap, dept, "YA20261122-0102")
    assert second["title"] == "【新派单】YA20261122-0102请榆安区城市管理局签收"
    assert second["body"].startswith("榆安区城市管理局：案件YA20261122-0102待签收。位置：")
    assert "问题：楼下空地乱堆建筑垃圾。办理入口：" in second["body"]
    assert second["body"].endswith(second["link"])
    assert second["title_en"] == "[Dispatched] Case YA20261122-0102 assigned to 榆安区城市管理局"

    # changed again: the consumer's cached wording follows at once
    again = {"title": "【再改】${case_no}", "body": "${case_no} → ${link}"}
    assert (await client.put(URL, json=again, headers=ADMIN)).status_code == 200
    third = await next_message(client, bootstrap, dept, "YA20261122-0103")
    assert third["title"] == "【再改】YA20261122-0103"

    reset = await client.delete(URL, headers=ADMIN)
    assert reset.status_code == 200, reset.text
    assert reset.json()["default"] is True and reset.json()["title"] == shipped_row["title"]
    fourth = await next_message(client, bootstrap, dept, "YA20261122-0104")
    assert fourth["title"] == SHIPPED_TITLE.format(case_no="YA20261122-0104")
    assert fourth["body"] == first["body"].replace("YA20261122-0101", "YA20261122-0104").replace(
        first["link"], fourth["link"]
    )
    # resetting what is already shipped changes nothing
    _, dsn, _ = notify
    before = await snapshot(dsn)
    assert (await client.delete(URL, headers=ADMIN)).json()["default"] is True
    assert await snapshot(dsn) == before


@pytest.mark.parametrize(
    ("url", "body", "code", "zh", "en"),
    [
        (
            URL,
            {"title": "【派单】${case_no}", "body": "延期${days}个工作日"},
            "unknown_placeholder",
            "${days}",
            "${days}, which a case.dispatched message does not have",
        ),
        (
            "/templates/case.overdue/en",
            {"title": "[Overdue] ${case_no}", "body": "fee $5 ${link}"},
            "template_syntax",
            "第 5 个字符",
            "at character 5",
        ),
        (
            URL,
            {"title": "【派单】${case_no", "body": "${link}"},
            "template_syntax",
            "标题",
            "the title",
        ),
        (
            URL,
            {"title": "两行\n标题", "body": "${link}"},
            "template_title_line",
            "一行",
            "one line",
        ),
        (URL, {"title": " ", "body": "${link}"}, "template_empty", "不能为空", "may not be empty"),
    ],
)
async def test_a_bad_template_is_refused_in_both_languages_and_changes_nothing(
    notify,  # noqa: F811
    url,
    body,
    code,
    zh,
    en,
):
    client, dsn, _ = notify
    before = await snapshot(dsn)
    refused_zh = await client.put(url, json=body, headers=ADMIN)
    refused_en = await client.put(url, json=body, headers={**ADMIN, "Accept-Language": "en"})
    for resp, words in ((refused_zh, zh), (refused_en, en)):
        assert resp.status_code == 422, resp.text
        error = resp.json()["error"]
        assert error["code"] == code and words in error["message"], error
    assert await snapshot(dsn) == before


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PUT", "/templates/case.nothing/zh-CN", {"title": "t", "body": "b"}),
        ("PUT", "/templates/case.dispatched/fr", {"title": "t", "body": "b"}),
        ("PUT", URL, {"title": "t", "body": "b", "html": "<b>"}),
        ("PUT", URL, {"title": "t"}),
        ("DELETE", "/templates/case.dispatched/zh", None),
        ("GET", "/templates?kind=case.nothing", None),
    ],
)
async def test_an_unknown_kind_locale_or_field_is_422(notify, method, url, body):  # noqa: F811
    client, dsn, _ = notify
    before = await snapshot(dsn)
    resp = await client.request(method, url, json=body, headers=ADMIN)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["message"]
    assert await snapshot(dsn) == before
