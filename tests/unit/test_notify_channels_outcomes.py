"""How notify's channels classify what happens, without a network: each vendor's answers,
HTTP statuses and Retry-After, SMTP failures — transient or permanent, rate-limited, gone —
and a send bounded in time, a hang and a bug turned into transient results.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiosmtplib
import httpx
import pytest

from services.notify.channels import dingtalk, feishu, http, sms, smtp, wecom
from services.notify.channels.base import DeliveryResult, Outcome, SendContext, send_bounded
from tests.unit.notify_channels_fixtures import AT, MSG


# --- SMTP failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "outcome", "code"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "5.1.1 no such user", "a@x.cn")]
            ),
            Outcome.PERMANENT,
            "smtp 550",
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [
                    aiosmtplib.SMTPRecipientRefused(550, "no", "a@x.cn"),
                    aiosmtplib.SMTPRecipientRefused(451, "greylisted", "b@x.cn"),
                ]
            ),
            Outcome.TRANSIENT,
            "smtp 451",
        ),
        (
            aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"),
            Outcome.PERMANENT,
            "smtp 535",
        ),
        (aiosmtplib.SMTPSenderRefused(553, "not yours", "n@x.cn"), Outcome.PERMANENT, "smtp 553"),
        (
            aiosmtplib.SMTPDataError(452, "4.3.1 insufficient storage"),
            Outcome.TRANSIENT,
            "smtp 452",
        ),
        (aiosmtplib.SMTPConnectError("refused"), Outcome.TRANSIENT, "network"),
        (aiosmtplib.SMTPServerDisconnected("gone"), Outcome.TRANSIENT, "network"),
        (aiosmtplib.SMTPReadTimeoutError("slow"), Outcome.TRANSIENT, "timeout"),
        (aiosmtplib.SMTPNotSupported("no STARTTLS"), Outcome.PERMANENT, "smtp_not_supported"),
        (ConnectionRefusedError(111, "refused"), Outcome.TRANSIENT, "network"),
    ],
)
def test_smtp_failures_are_classified(exc, outcome, code):
    result = smtp.classify(exc)
    assert (result.outcome, result.code) == (outcome, code)


# --- vendors' answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "answer", "outcome", "rate_limited", "gone"),
    [
        (wecom, {"errcode": 0, "errmsg": "ok"}, Outcome.SENT, False, False),
        (
            wecom,
            {"errcode": 45009, "errmsg": "api freq out of limit"},
            Outcome.TRANSIENT,
            True,
            False,
        ),
        (wecom, {"errcode": -1, "errmsg": "system busy"}, Outcome.TRANSIENT, False, False),
        (
            wecom,
            {"errcode": 93000, "errmsg": "invalid webhook url"},
            Outcome.PERMANENT,
            False,
            True,
        ),
        (
            wecom,
            {"errcode": 40008, "errmsg": "invalid message type"},
            Outcome.PERMANENT,
            False,
            False,
        ),
        (wecom, {"errmsg": "?"}, Outcome.PERMANENT, False, False),
        (dingtalk, {"errcode": 0, "errmsg": "ok"}, Outcome.SENT, False, False),
        (dingtalk, {"errcode": 410100, "errmsg": "send too fast"}, Outcome.TRANSIENT, True, False),
        (
            dingtalk,
            {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"},
            Outcome.TRANSIENT,
            True,
            False,
        ),
        (dingtalk, {"errcode": -1, "errmsg": "系统繁忙"}, Outcome.TRANSIENT, False, False),
        (
            dingtalk,
            {"errcode": 310000, "errmsg": "sign not match"},
            Outcome.PERMANENT,
            False,
            False,
        ),
        (
            dingtalk,
            {"errcode": 300001, "errmsg": "token is not exist"},
            Outcome.PERMANENT,
            False,
            True,
        ),
        (feishu, {"code": 0, "msg": "success", "data": {}}, Outcome.SENT, False, False),
        (feishu, {"StatusCode": 0, "StatusMessage": "success"}, Outcome.SENT, False, False),
        (feishu, {"code": 11232, "msg": "frequency limited"}, Outcome.TRANSIENT, True, False),
        (feishu, {"code": 9499, "msg": "too many request"}, Outcome.TRANSIENT, True, False),
        (
            feishu,
            {
                "code": 19021,
                "msg": "sign match fail or timestamp is not within one hour from current time",
            },
            Outcome.PERMANENT,
            False,
            False,
        ),
        (
            feishu,
            {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"},
            Outcome.PERMANENT,
            False,
            True,
        ),
        (feishu, {"code": 9499, "msg": "Bad Request"}, Outcome.PERMANENT, False, False),
    ],
)
def test_vendor_answers_are_classified(module, answer, outcome, rate_limited, gone):
    result = module.classify(answer)
    assert (result.outcome, result.rate_limited, result.gone) == (outcome, rate_limited, gone)


def response(status: int, body: object = b"", **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers=headers, request=httpx.Request("POST", "https://x.test/")
    )


@pytest.mark.parametrize(
    ("resp", "outcome", "code"),
    [
        (response(200, {"code": "OK", "request_id": "r1"}), Outcome.SENT, "OK"),
        (response(200, {"code": "THROTTLED"}), Outcome.TRANSIENT, "THROTTLED"),
        (response(200, {"code": "SYSTEM_BUSY"}), Outcome.TRANSIENT, "SYSTEM_BUSY"),
        (response(200, {"code": "INVALID_SIGNATURE"}), Outcome.PERMANENT, "INVALID_SIGNATURE"),
        (response(200, {"code": "SOMETHING_NEW"}), Outcome.PERMANENT, "SOMETHING_NEW"),
        (response(401, {"code": "INVALID_APP_KEY"}), Outcome.PERMANENT, "INVALID_APP_KEY"),
        (response(503, b"<html>busy</html>"), Outcome.TRANSIENT, "HTTP 503"),
        (response(200, b"<html>login</html>"), Outcome.PERMANENT, "not_json"),
    ],
)
def test_generic_sms_answers_are_classified(resp, outcome, code):
    result = sms.GenericSmsProvider().classify(resp)
    assert (result.outcome, result.code) == (outcome, code)


@pytest.mark.parametrize(
    ("status", "outcome", "gone"),
    [
        (200, None, False),
        (204, None, False),
        (301, Outcome.PERMANENT, False),
        (400, Outcome.PERMANENT, False),
        (404, Outcome.PERMANENT, False),
        (410, Outcome.PERMANENT, True),
        (408, Outcome.TRANSIENT, False),
        (429, Outcome.TRANSIENT, False),
        (500, Outcome.TRANSIENT, False),
        (503, Outcome.TRANSIENT, False),
    ],
)
def test_http_status_classification(status, outcome, gone):
    result = http.status_result(response(status))
    assert (result.outcome if result else None) == outcome
    assert (result.gone if result else False) is gone


def test_retry_after_and_rate_limit_from_429():
    result = http.status_result(response(429, b"slow down", **{"retry-after": "30"}))
    assert result.transient and result.rate_limited and result.retry_after == 30
    dated = response(503, **{"retry-after": "Sat, 22 Nov 2025 08:27:40 GMT"})
    assert http.retry_after(dated, now=AT) == 60
    assert http.retry_after(response(503, **{"retry-after": "soon"})) is None


def test_a_vendor_code_in_a_4xx_body_decides_but_5xx_stays_transient():
    limited = http.vendor_json(response(400, {"code": 11232, "msg": "frequency limited"}), "code")
    assert feishu.classify(limited).rate_limited
    busy = http.vendor_json(response(502, {"code": 19021}), "code")
    assert isinstance(busy, DeliveryResult) and busy.transient


# --- bounded sends --------------------------------------------------------------------------------


class Hangs:
    kind = "hangs"

    def validate_settings(self, raw):
        return raw

    async def send(self, message, settings, ctx):
        await asyncio.sleep(60)


class Breaks(Hangs):
    kind = "breaks"

    async def send(self, message, settings, ctx):
        raise RuntimeError("a bug")


async def test_send_bounded_turns_a_hang_into_a_transient_timeout_and_a_bug_into_an_error():
    ctx = SendContext(timeout=0.1)
    started = time.monotonic()
    hung = await send_bounded(Hangs(), MSG, {}, ctx)
    assert hung.transient and hung.code == "timeout"
    assert time.monotonic() - started < 3
    broken = await send_bounded(Breaks(), MSG, {}, ctx)
    assert broken.transient and broken.code == "error" and "a bug" in broken.detail


def test_http_channels_need_a_client():
    with pytest.raises(RuntimeError):
        SendContext().client()
