"""Feishu (飞书) / Lark custom bot (自定义机器人), with signature verification (签名校验).

Vendor docs (自定义机器人使用指南: payloads, 签名校验, errors):
https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot
(formerly https://open.feishu.cn/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN); the card's
lark_md: https://open.feishu.cn/document/common-capabilities/message-card/message-cards-content/using-markdown-tags

``POST https://open.feishu.cn/open-apis/bot/v2/hook/TOKEN`` (Lark:
``open.larksuite.com``) with JSON. When the bot has 签名校验 on, the BODY carries
``"timestamp"`` (Unix SECONDS, as a string; Feishu refuses one more than an hour off) and
``"sign"`` = base64(HMAC-SHA256(key = f"{timestamp}\\n{secret}", msg = b"")): note that the
key is the string to sign and the message is empty, unlike DingTalk. Message types:
``text`` (``content.text``), ``post`` (rich text, ``content.post.zh_cn``) and
``interactive`` (a card, in ``card``: header coloured red when urgent, a lark_md body and
a button to the case).

The answer is ``{"code": 0, "msg": "success"}`` (older bots: ``StatusCode``) or an error,
sometimes with HTTP 400: 11232 (frequency limited; a bot takes 100 a minute, 5 a second) is
a rate limit, as is HTTP 429; 19021 (sign match fail or timestamp not within one hour),
19022 (IP not allowed), 19024 (keywords not found) and others are permanent; 19001 (the
webhook's token is invalid) means the bot is gone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from services.notify.channels import http
from services.notify.channels.base import (
    DeliveryResult,
    InvalidSetting,
    Message,
    SendContext,
    fit_utf8,
)
from services.notify.channels.settings import Fields, check_url

RATE_LIMITED = {11232}
GONE = {19001}
BODY_MAX_BYTES = 15000  # the whole request must stay under Feishu's 20 KB


@dataclass(frozen=True)
class FeishuSettings:
    url: str  # https://open.feishu.cn/open-apis/bot/v2/hook/…
    secret: str | None = field(default=None, repr=False)
    sign: bool = True
    msg_type: str = "interactive"  # interactive | post | text


def sign(secret: str, timestamp_s: int) -> str:
    """Feishu's 签名校验: base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _lang(message: Message) -> str:
    return "en_us" if message.english else "zh_cn"


def content(message: Message, msg_type: str) -> dict[str, Any]:
    """The message part of the body: ``{"msg_type", "content" | "card"}``."""
    details = message.label("查看详情", "View details")
    if msg_type == "text":
        text = fit_utf8(message.titled_text(), BODY_MAX_BYTES)
        return {"msg_type": "text", "content": {"text": text}}
    if msg_type == "post":
        lines = [
            [{"tag": "text", "text": line}]
            for line in fit_utf8(message.text, BODY_MAX_BYTES).splitlines()
            if line
        ]
        if message.link:
            lines.append([{"tag": "a", "text": details, "href": message.link}])
        post = {_lang(message): {"title": message.title, "content": lines}}
        return {"msg_type": "post", "content": {"post": post}}
    body = fit_utf8(message.markdown or message.markdown_text(), BODY_MAX_BYTES)
    elements: list[dict[str, Any]] = [{"tag": "div", "text": {"tag": "lark_md", "content": body}}]
    if message.link:
        elements.append(
            {
                "tag": "action",
                "actions": [
                    {
                        "tag": "button",
                        "type": "danger" if message.urgent else "primary",
                        "text": {"tag": "plain_text", "content": details},
                        "url": message.link,
                    }
                ],
            }
        )
    card = {
        "config": {"wide_screen_mode": True},
        "header": {
            "title": {"tag": "plain_text", "content": message.marked_title()},
            "template": "red" if message.urgent else "blue",
        },
        "elements": elements,
    }
    return {"msg_type": "interactive", "card": card}


def body(message: Message, settings: FeishuSettings, now: datetime) -> dict[str, Any]:
    out = content(message, settings.msg_type)
    if settings.sign and settings.secret:
        timestamp = int(now.timestamp())
        out = {"timestamp": str(timestamp), "sign": sign(settings.secret, timestamp), **out}
    return out


def classify(answer: Mapping[str, Any]) -> DeliveryResult:
    code = answer.get("code", answer.get("StatusCode"))
    msg = answer.get("msg", answer.get("StatusMessage", ""))
    return http.code_result(
        answer,
        code,
        msg,
        field="code",
        vendor="Feishu",
        rate_limited=RATE_LIMITED,
        gone=GONE,
        limited="too many request" in str(msg).lower(),
    )


class FeishuChannel:
    kind = "feishu"

    def validate_settings(self, raw: Mapping[str, Any]) -> FeishuSettings:
        f = Fields.of(raw, FeishuSettings)
        url = check_url("url", f.text("url", required=True) or "", https_only=True)
        _, _, token = urlsplit(url).path.rstrip("/").rpartition("/hook/")
        if not token or "/" in token:
            raise InvalidSetting(
                "url",
                "飞书机器人地址应形如 …/open-apis/bot/v2/hook/<token>",
                "a Feishu bot URL looks like …/open-apis/bot/v2/hook/<token>",
            )
        signed = f.flag("sign", True)
        secret = f.text("secret", max_len=200)
        if signed and secret is None:
            raise InvalidSetting(
                "secret",
                "机器人开启了签名校验，必须填写密钥；若用关键词或 IP 白名单，请设 sign 为 false",
                "required when sign is on; set sign to false for a bot "
                "secured by keywords or an IP allow-list",
            )
        return FeishuSettings(
            url=url,
            secret=secret,
            sign=signed,
            msg_type=f.choice("msg_type", ("interactive", "post", "text"), "interactive"),
        )

    async def send(
        self, message: Message, settings: FeishuSettings, ctx: SendContext
    ) -> DeliveryResult:
        return await http.post_to_robot(
            ctx, settings.url, body(message, settings, ctx.clock()), classify, "code", "StatusCode"
        )
