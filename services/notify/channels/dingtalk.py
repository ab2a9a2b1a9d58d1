"""DingTalk (钉钉) custom group robot (自定义机器人), with 加签 (signed) security.

Vendor docs: https://open.dingtalk.com/document/robots/custom-robot-access (security
settings, 加签) and https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages
(message types, error codes).

``POST https://oapi.dingtalk.com/robot/send?access_token=TOKEN&timestamp=T&sign=S`` where,
for a robot secured by 加签, ``T`` is the current time in milliseconds (DingTalk refuses one
more than an hour off) and ``S`` = urlEncode(base64(HMAC-SHA256(key = secret,
msg = f"{T}\\n{secret}"))), all UTF-8; the secret is the ``SEC…`` string on the robot's
security page. Body: ``{"msgtype": "markdown", "markdown": {"title", "text"}, "at":
{"atMobiles": [...], "isAtAll": bool}}`` (a mentioned mobile must also appear as ``@mobile``
in the text) or ``msgtype`` ``text``. A robot secured by keywords (自定义关键词) or an IP
allow-list instead takes ``sign: false``; a ``keyword`` is then put into every message that
lacks it.

The answer is ``{"errcode": 0, "errmsg": "ok"}`` or an error: 410100 (发送速度太快而限流) and the
older 130101 "send too fast" are rate limits (20 messages a minute per robot) and -1 "system
busy" is transient; 310000 (sign not match, keywords not in content, IP not allowed) and
other codes are permanent; 300001 / 400101 (no such access_token) and 400106 (no such
robot) mean the robot is gone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from services.notify.channels import http
from services.notify.channels.base import (
    DeliveryResult,
    InvalidSetting,
    Message,
    SendContext,
    fit_utf8,
)
from services.notify.channels.settings import Fields, check_url, phone_number

RATE_LIMITED = {410100, 130101}
BUSY = {-1}
GONE = {300001, 400101, 400106}
TEXT_MAX_BYTES = 20000  # DingTalk's documented limit is 20,000 bytes for a message body


@dataclass(frozen=True)
class DingTalkSettings:
    url: str  # https://oapi.dingtalk.com/robot/send?access_token=…
    secret: str | None = field(default=None, repr=False)  # SEC…, for 加签
    sign: bool = True
    keyword: str | None = None  # when the robot is secured by 自定义关键词
    msgtype: str = "markdown"  # markdown | text
    at_mobiles: tuple[str, ...] = ()
    at_all_when_urgent: bool = False


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), not yet
    URL-encoded (the query string encoding does that, exactly once)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def signed_url(settings: DingTalkSettings, now: datetime) -> httpx.URL:
    """The robot URL, plus ``timestamp`` and the URL-encoded ``sign`` when 加签 is on
    (merged into the query: the access_token stays)."""
    url = httpx.URL(settings.url)
    if not settings.sign or not settings.secret:
        return url
    timestamp = int(now.timestamp() * 1000)
    return url.copy_merge_params(
        {"timestamp": str(timestamp), "sign": sign(settings.secret, timestamp)}
    )


def payload(message: Message, settings: DingTalkSettings) -> dict[str, Any]:
    at_all = settings.at_all_when_urgent and message.urgent
    mentions = "".join(f" @{m}" for m in settings.at_mobiles)
    at = {"atMobiles": list(settings.at_mobiles), "isAtAll": at_all}
    keyword = settings.keyword or ""
    if settings.msgtype == "text":
        content = message.titled_text()
        if keyword not in content:
            content = f"{keyword} {content}"
        return {
            "msgtype": "text",
            "text": {"content": fit_utf8(content, TEXT_MAX_BYTES) + mentions},
            "at": at,
        }
    text = message.markdown_body()
    if message.urgent:
        text = f"**{message.urgent_mark}** {text}"
    if keyword not in text:
        text = f"{keyword} {text}"
    return {
        "msgtype": "markdown",
        "markdown": {"title": message.title, "text": fit_utf8(text, TEXT_MAX_BYTES) + mentions},
        "at": at,
    }


classify = http.errcode_classifier("DingTalk", rate_limited=RATE_LIMITED, busy=BUSY, gone=GONE)


class DingTalkChannel:
    kind = "dingtalk"

    def validate_settings(self, raw: Mapping[str, Any]) -> DingTalkSettings:
        f = Fields.of(raw, DingTalkSettings)
        url = check_url(
            "url", f.text("url", required=True) or "", https_only=True, query_key="access_token"
        )
        signed = f.flag("sign", True)
        secret = f.text("secret", max_len=200)
        if signed and secret is None:
            raise InvalidSetting(
                "secret",
                "机器人开启了加签，必须填写密钥（SEC 开头）；"
                "若用关键词或 IP 安全设置，请设 sign 为 false",
                "required when sign is on (the SEC… string); set sign to "
                "false for a robot secured by keywords or IP",
            )
        if secret is not None and not secret.startswith("SEC"):
            raise InvalidSetting(
                "secret",
                "钉钉加签密钥以 SEC 开头（请勿填写 access_token）",
                "a DingTalk signing secret starts with SEC (not the access_token)",
            )
        keyword = f.text("keyword", max_len=100)
        return DingTalkSettings(
            url=url,
            secret=secret,
            sign=signed,
            keyword=keyword,
            msgtype=f.choice("msgtype", ("markdown", "text"), "markdown"),
            at_mobiles=tuple(
                phone_number("at_mobiles", m).removeprefix("+86") for m in f.texts("at_mobiles")
            ),
            at_all_when_urgent=f.flag("at_all_when_urgent", False),
        )

    async def send(
        self, message: Message, settings: DingTalkSettings, ctx: SendContext
    ) -> DeliveryResult:
        return await http.post_to_robot(
            ctx, signed_url(settings, ctx.clock()), payload(message, settings), classify, "errcode"
        )
