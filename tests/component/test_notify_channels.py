"""Notify's channels against real local servers that speak each vendor's protocol (the
robots, a Standard Webhooks receiver, an SMS gateway and SMTP servers of
tests/component/notify_vendors.py): each channel's request as the vendor checks it, the
vendor's refusals and rate limits, hanging and dead endpoints.

test_notify_secrets.py and test_notify_targets.py import the servers and the helpers below
from here.
"""

from __future__ import annotations

import asyncio
import base64
import email
import time
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime

import httpx
import pytest

from services.notify.channels import DeliveryResult, Message, Outcome
from tests.component import notify_vendors
from tests.component.notify_vendors import (
    MSG,
    send,
    DING_SECRET,
    FEISHU_SECRET,
    HOOK_SECRET,
    SMS,
    b64_hmac,
    email_settings,
)
from tests.conftest import free_port

pytestmark = notify_vendors.SMTP_AUTH_WITHOUT_TLS
vendors = notify_vendors.vendors  # the robots, webhook receiver and SMS gateway, one a module
smtp_servers = notify_vendors.smtp_servers  # the SMTP servers, one set a module


@pytest.fixture(scope="module")
async def http():
    async with httpx.AsyncClient(follow_redirects=False) as client:
        yield client


# --- WeCom ----------------------------------------------------------------------------------------


async def test_wecom_robot_gets_markdown_under_its_key(vendors, http):
    url = f"{vendors.base}/cgi-bin/webhook/send?key=good-key"
    result = await send("wecom", {"url": url}, http, Message(**{**MSG.__dict__, "urgent": True}))
    assert result.ok and result.code == "errcode 0", result
    hit = vendors.of("wecom")[-1]
    assert hit.json["msgtype"] == "markdown"
    assert hit.json["markdown"]["content"].startswith('<font color="warning">【紧急】</font>')
    assert MSG.title in hit.json["markdown"]["content"]
    assert hit.headers["content-type"] == "application/json; charset=utf-8"
    text = await send("wecom", {"url": url, "msgtype": "text", "mention_mobiles": ["@all"]}, http)
    assert text.ok and vendors.of("wecom")[-1].json["text"]["mentioned_mobile_list"] == ["@all"]


@pytest.mark.parametrize(
    ("key", "outcome", "rate_limited", "gone"),
    [
        ("wrong-key", Outcome.PERMANENT, False, True),
        ("limited-key", Outcome.TRANSIENT, True, False),
        ("busy-key", Outcome.TRANSIENT, False, False),
    ],
)
async def test_wecom_wrong_key_rate_limit_and_busy(vendors, http, key, outcome, rate_limited, gone):
    result = await send("wecom", {"url": f"{vendors.base}/cgi-bin/webhook/send?key={key}"}, http)
    assert (result.outcome, result.rate_limited, result.gone) == (outcome, rate_limited, gone)


# --- DingTalk -------------------------------------------------------------------------------------


def clock_whose_sign_needs_escaping(secret: str) -> datetime:
    """A current time whose DingTalk sign has '+' and '/': proves the sign is URL-encoded
    (an unescaped '+' arrives as a space and the robot refuses it)."""
    start = int(time.time() * 1000)
    for ms in range(start, start + 100_000):
        sign = b64_hmac(secret.encode(), f"{ms}\n{secret}".encode())
        if "+" in sign and "/" in sign:
            return datetime.fromtimestamp(ms / 1000, UTC) + timedelta(microseconds=1)
    raise AssertionError("no such timestamp")


async def test_dingtalk_signed_robot_verifies_the_sign(vendors, http):
    url = f"{vendors.base}/robot/send?access_token=signed-token"
    at = clock_whose_sign_needs_escaping(DING_SECRET)
    result = await send(
        "dingtalk",
        {"url": url, "secret": DING_SECRET, "at_mobiles": ["13800138000"]},
        http,
        clock=lambda: at,
    )
    assert result.ok, result
    hit = vendors.of("dingtalk")[-1]
    assert hit.query["timestamp"] == str(int(at.timestamp() * 1000))
    assert "+" in hit.query["sign"] and "/" in hit.query["sign"]
    assert hit.json["msgtype"] == "markdown" and hit.json["markdown"]["title"] == MSG.title
    assert hit.json["at"] == {"atMobiles": ["13800138000"], "isAtAll": False}


@pytest.mark.parametrize(
    ("raw", "clock_offset", "outcome", "code", "gone"),
    [
        (
            {"url": "/robot/send?access_token=signed-token", "secret": "SECwrong"},
            0,
            Outcome.PERMANENT,
            "errcode 310000",
            False,
        ),
        (
            {"url": "/robot/send?access_token=signed-token", "secret": DING_SECRET},
            -7200,
            Outcome.PERMANENT,
            "errcode 310000",
            False,
        ),  # a timestamp two hours old
        (
            {"url": "/robot/send?access_token=nobody", "secret": DING_SECRET},
            0,
            Outcome.PERMANENT,
            "errcode 300001",
            True,
        ),
        (
            {"url": "/robot/send?access_token=limited-token", "secret": DING_SECRET},
            0,
            Outcome.TRANSIENT,
            "errcode 410100",
            False,
        ),
        (
            {"url": "/robot/send?access_token=keyword-token", "sign": False},
            0,
            Outcome.PERMANENT,
            "errcode 310000",
            False,
        ),  # the keyword is missing
        (
            {"url": "/robot/send?access_token=keyword-token", "sign": False, "keyword": "城管"},
            0,
            Outcome.SENT,
            "errcode 0",
            False,
        ),
    ],
)
async def test_dingtalk_refusals(vendors, http, raw, clock_offset, outcome, code, gone):
    at = datetime.now(UTC) + timedelta(seconds=clock_offset)
    plain = Message(id="m", title="案件提醒", text="请及时处理")
    result = await send(
        "dingtalk", {**raw, "url": vendors.base + raw["url"]}, http, plain, clock=lambda: at
    )
    assert (result.outcome, result.code, result.gone) == (outcome, code, gone), result


# --- Feishu ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("msg_type", ["interactive", "post", "text"])
async def test_feishu_signed_bot_verifies_the_sign(vendors, http, msg_type):
    url = f"{vendors.base}/open-apis/bot/v2/hook/signed-bot"
    result = await send("feishu", {"url": url, "secret": FEISHU_SECRET, "msg_type": msg_type}, http)
    assert result.ok and result.code == "code 0", result
    hit = vendors.of("feishu")[-1]
    assert hit.json["msg_type"] == msg_type and isinstance(hit.json["timestamp"], str)
    if msg_type == "interactive":
        assert hit.json["card"]["header"]["title"]["content"] == MSG.title


@pytest.mark.parametrize(
    ("token", "secret", "clock_offset", "outcome", "code", "limited", "gone"),
    [
        ("signed-bot", "wrong-secret", 0, Outcome.PERMANENT, "code 19021", False, False),
        ("signed-bot", FEISHU_SECRET, 7200, Outcome.PERMANENT, "code 19021", False, False),
        ("no-such-bot", FEISHU_SECRET, 0, Outcome.PERMANENT, "code 19001", False, True),
        ("limited-bot", FEISHU_SECRET, 0, Outcome.TRANSIENT, "code 11232", True, False),
    ],
)
async def test_feishu_refusals(
    vendors, http, token, secret, clock_offset, outcome, code, limited, gone
):
    at = datetime.now(UTC) + timedelta(seconds=clock_offset)
    result = await send(
        "feishu",
        {"url": f"{vendors.base}/open-apis/bot/v2/hook/{token}", "secret": secret},
        http,
        clock=lambda: at,
    )
    assert (result.outcome, result.code, result.rate_limited, result.gone) == (
        outcome,
        code,
        limited,
        gone,
    ), result


# --- Standard Webhooks ------------------------------------------------------------------------------


async def test_webhook_signature_verified_by_the_receiver(vendors, http):
    result = await send("webhook", {"url": f"{vendors.base}/hooks/cg", "secret": HOOK_SECRET}, http)
    assert result.ok and result.code == "HTTP 204", result
    hit = vendors.of("hook")[-1]
    assert hit.headers["webhook-id"] == MSG.id
    body = hit.json
    assert body["type"] == "case.dispatched" and body["data"]["case_no"] == "YA20261122-0001"
    assert body["data"]["title"] == MSG.title and body["data"]["message_id"] == MSG.id
    other = "whsec_" + base64.b64encode(b"f" * 32).decode()
    wrong = await send("webhook", {"url": f"{vendors.base}/hooks/cg", "secret": other}, http)
    assert (wrong.outcome, wrong.code) == (Outcome.PERMANENT, "HTTP 401")
    unsigned = await send("webhook", {"url": f"{vendors.base}/hooks/cg"}, http)
    assert unsigned.outcome is Outcome.PERMANENT


@pytest.mark.parametrize(
    ("status", "outcome", "limited", "retry_after", "gone"),
    [
        (500, Outcome.TRANSIENT, False, None, False),
        (503, Outcome.TRANSIENT, False, None, False),
        (429, Outcome.TRANSIENT, True, 7.0, False),
        (400, Outcome.PERMANENT, False, None, False),
        (404, Outcome.PERMANENT, False, None, False),
        (410, Outcome.PERMANENT, False, None, True),
    ],
)
async def test_http_status_of_any_http_channel(
    vendors, http, status, outcome, limited, retry_after, gone
):
    base = f"{vendors.base}/status/{status}"
    for kind, raw in [
        ("webhook", {"url": f"{base}/hook"}),
        ("wecom", {"url": f"{base}/wecom?key=k"}),
        ("dingtalk", {"url": f"{base}/ding?access_token=t", "secret": DING_SECRET}),
        ("feishu", {"url": f"{base}/open-apis/bot/v2/hook/t", "sign": False}),
        (
            "sms",
            {
                "url": f"{base}/sms",
                "app_key": "app-1",
                "app_secret": "s",
                "template_id": "T",
                "to": ["13800138000"],
            },
        ),
    ]:
        r = await send(kind, raw, http)
        assert (r.outcome, r.rate_limited, r.retry_after, r.gone) == (
            outcome,
            limited,
            retry_after,
            gone,
        ), (kind, r)
        assert r.code == f"HTTP {status}" and "nope" in r.detail


# --- SMS -----------------------------------------------------------------------------------------


async def test_sms_gateway_verifies_the_signature_and_takes_the_template(vendors, http):
    url = f"{vendors.base}/sms/v1/send?region=cn-east"
    result = await send("sms", {**SMS, "url": url}, http)
    assert result.ok and result.code == "OK", result
    hit = vendors.of("sms")[-1]
    assert hit.json == {
        "to": ["+8613800138000"],
        "sign_name": "榆安城管",
        "template_id": "CASE_DISPATCHED",
        "out_id": MSG.id,
        "template_params": {"case_no": "YA20261122-0001", "deadline": "2026-11-22 10:00"},
    }
    # a fixed nonce: the second request is a replay, and the gateway says so
    fixed = {"nonce": lambda: "00" * 16}
    first = await send("sms", {**SMS, "url": url}, http, **fixed)
    again = await send("sms", {**SMS, "url": url}, http, **fixed)
    assert first.ok and (again.outcome, again.code) == (Outcome.PERMANENT, "NONCE_REUSED")


@pytest.mark.parametrize(
    ("change", "clock_offset", "outcome", "code", "limited"),
    [
        ({"app_secret": "wrong"}, 0, Outcome.PERMANENT, "INVALID_SIGNATURE", False),
        ({"app_key": "app-2"}, 0, Outcome.PERMANENT, "INVALID_APP_KEY", False),
        ({}, -600, Outcome.PERMANENT, "TIMESTAMP_EXPIRED", False),
        ({"template_params": ["case_no"]}, 0, Outcome.PERMANENT, "TEMPLATE_PARAMS_MISMATCH", False),
        ({"to": ["13900000429"]}, 0, Outcome.TRANSIENT, "THROTTLED", True),
    ],
)
async def test_sms_gateway_refusals(vendors, http, change, clock_offset, outcome, code, limited):
    at = datetime.now(UTC) + timedelta(seconds=clock_offset)
    raw = {**SMS, "url": f"{vendors.base}/sms/v1/send", **change}
    result = await send("sms", raw, http, clock=lambda: at)
    assert (result.outcome, result.code, result.rate_limited) == (outcome, code, limited), result


# --- hanging and dead endpoints ----------------------------------------------------------------------


async def test_hanging_endpoints_time_out_as_transient_without_holding_up_the_others(
    vendors, http, smtp_servers
):
    hang = f"{vendors.base}/hang"
    hanging = [
        ("webhook", {"url": f"{hang}/hook"}),
        ("wecom", {"url": f"{hang}/w?key=k"}),
        ("dingtalk", {"url": f"{hang}/d?access_token=t", "sign": False}),
        ("feishu", {"url": f"{hang}/open-apis/bot/v2/hook/t", "sign": False}),
        ("sms", {**SMS, "url": f"{hang}/sms"}),
        (
            "email",
            {
                "host": "127.0.0.1",
                "port": smtp_servers.silent_port,
                "security": "none",
                "from": "notify@example.cn",
                "to": ["duty@example.cn"],
            },
        ),
    ]
    healthy = [
        ("wecom", {"url": f"{vendors.base}/cgi-bin/webhook/send?key=good-key"}),
        ("webhook", {"url": f"{vendors.base}/hooks/cg", "secret": HOOK_SECRET}),
        (
            "email",
            {
                "host": "127.0.0.1",
                "port": smtp_servers.plain.port,
                "security": "none",
                "from": "notify@example.cn",
                "to": ["duty@example.cn"],
            },
        ),
    ]
    started = time.monotonic()
    finished: dict[int, float] = {}

    async def timed(i: int, kind: str, raw: dict) -> DeliveryResult:
        result = await send(kind, raw, http, timeout=1.5)
        finished[i] = time.monotonic() - started
        return result

    jobs = hanging + healthy
    results = await asyncio.gather(*(timed(i, k, r) for i, (k, r) in enumerate(jobs)))
    n = len(hanging)
    for (kind, _), r in zip(hanging, results[:n], strict=True):
        assert r.transient and r.code == "timeout", (kind, r)
    for (kind, _), r in zip(healthy, results[n:], strict=True):
        assert r.ok, (kind, r)
    assert max(finished[i] for i in range(n, len(jobs))) < 1.0  # not behind the hanging ones
    assert all(1.4 <= finished[i] < 3.5 for i in range(n))  # each bounded by its timeout


async def test_nobody_listening_is_transient(http):
    port = free_port()
    for kind, raw in [
        ("webhook", {"url": f"http://127.0.0.1:{port}/x"}),
        ("wecom", {"url": f"http://127.0.0.1:{port}/x?key=k"}),
        (
            "email",
            {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "from": "notify@example.cn",
                "to": ["duty@example.cn"],
            },
        ),
    ]:
        r = await send(kind, raw, http)
        assert r.transient and r.code == "network", (kind, r)


# --- email ---------------------------------------------------------------------------------------


async def test_email_arrives_with_its_chinese_subject_names_and_bodies(smtp_servers, http):
    html = Message(
        **{**MSG.__dict__, "urgent": True, "html": "<p>案件 <b>YA20261122-0001</b> 已派单</p>"}
    )
    result = await send("email", email_settings(smtp_servers, "plain"), http, html)
    assert result.ok and result.code == "smtp 250", result
    mail = smtp_servers.boxes["plain"].mails[-1]
    assert mail.mail_from == "notify@xn--fsqu00a.xn--fiqs8s"
    assert mail.rcpt_tos == ["zhangsan@example.cn", "duty@example.cn"]
    head = mail.content.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"Subject: =?utf-8?" in head  # RFC 2047 on the wire
    parsed = email.message_from_bytes(mail.content, policy=default_policy)
    assert parsed["Subject"] == "【紧急】" + MSG.title
    assert parsed["From"].addresses[0].display_name == "榆安区城管值班室"
    assert [a.display_name for a in parsed["To"].addresses] == ["张三", ""]
    assert parsed["Message-ID"] == f"<{MSG.id}@xn--fsqu00a.xn--fiqs8s>"
    assert parsed["Importance"] == "high" and parsed["Auto-Submitted"] == "auto-generated"
    plain = parsed.get_body(("plain",)).get_content()
    assert plain.replace("\r\n", "\n").rstrip() == f"{MSG.text}\n详情：{MSG.link}"
    assert "<b>YA20261122-0001</b>" in parsed.get_body(("html",)).get_content()
    assert abs(parsedate_to_datetime(parsed["Date"]) - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize("which", ["starttls", "implicit"])
async def test_email_over_tls_with_login_and_a_private_ca(smtp_servers, http, which):
    result = await send("email", email_settings(smtp_servers, which), http)
    assert result.ok, result
    mail = smtp_servers.boxes[which].mails[-1]
    assert mail.tls and mail.authenticated
    parsed = email.message_from_bytes(mail.content, policy=default_policy)
    assert parsed["Subject"] == MSG.title


@pytest.mark.parametrize(
    ("which", "extra", "outcome", "code"),
    [
        ("starttls", {"password": "wrong"}, Outcome.PERMANENT, "smtp 535"),
        ("starttls", {"ca_pem": None}, Outcome.PERMANENT, "tls_certificate"),  # untrusted cert
        ("implicit", {"ca_pem": None}, Outcome.PERMANENT, "tls_certificate"),
        ("plain", {"to": ["nobody@example.cn"]}, Outcome.PERMANENT, "smtp 550"),
        ("plain", {"to": ["later@example.cn"]}, Outcome.TRANSIENT, "smtp 451"),
    ],
)
async def test_email_refusals(smtp_servers, http, which, extra, outcome, code):
    before = len(smtp_servers.boxes[which].mails)
    result = await send("email", email_settings(smtp_servers, which, **extra), http)
    assert (result.outcome, result.code) == (outcome, code), result
    assert len(smtp_servers.boxes[which].mails) == before


async def test_email_partly_refused_is_sent_once_and_says_who_was_refused(smtp_servers, http):
    raw = email_settings(smtp_servers, "plain", to=["duty@example.cn", "nobody@example.cn"])
    result = await send("email", raw, http)
    assert result.ok and "nobody@example.cn" in result.detail and "550" in result.detail
    assert smtp_servers.boxes["plain"].mails[-1].rcpt_tos == ["duty@example.cn"]
