"""WeCom (企业微信) group robot (群机器人).

Vendor docs: https://developer.work.weixin.qq.com/document/path/91770 (群机器人配置说明);
error codes: https://developer.work.weixin.qq.com/document/path/90313 (全局错误码).

``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` with JSON:

- ``{"msgtype": "markdown", "markdown": {"content": "..."}}``: at most 4096 bytes of UTF-8;
  WeCom's markdown has ``<font color="warning">`` (orange-red) for the urgent mark;
- ``{"msgtype": "text", "text": {"content": "...", "mentioned_mobile_list": [...]}}``: at
  most 2048 bytes; ``@all`` or mobiles to mention.

The ``key`` in the URL is the robot's only credential (WeCom robots are not signed). The
answer is HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}`` or an error code: 45009 "api
freq out of limit" (a robot takes 20 messages a minute) and -1 "system busy" are transient;
93000 "invalid webhook url" (wrong key, robot removed) means the robot is gone; any other
code (40008 bad message type, 44004 empty content...) is permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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

MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048
RATE_LIMITED = {45009}
BUSY = {-1}
GONE = {93000}


@dataclass(frozen=True)
class WeComSettings:
    url: str = field(repr=False)  # …/cgi-bin/webhook/send?key=… (the key is the credential)
    msgtype: str = "markdown"  # markdown | text
    mention_mobiles: tuple[str, ...] = ()  # text only: "@all" or mobile numbers


def payload(message: Message, settings: WeComSettings) -> dict[str, Any]:
    if settings.msgtype == "text":
        text: dict[str, Any] = {"content": fit_utf8(message.titled_text(), TEXT_MAX_BYTES)}
        if settings.mention_mobiles:
            text["mentioned_mobile_list"] = list(settings.mention_mobiles)
        return {"msgtype": "text", "text": text}
    body = message.markdown_body()
    if message.urgent:
        body = f'<font color="warning">{message.urgent_mark}</font>\n{body}'
    return {"msgtype": "markdown", "markdown": {"content": fit_utf8(body, MARKDOWN_MAX_BYTES)}}


classify = http.errcode_classifier("WeCom", rate_limited=RATE_LIMITED, busy=BUSY, gone=GONE)


class WeComChannel:
    kind = "wecom"

    def validate_settings(self, raw: Mapping[str, Any]) -> WeComSettings:
        f = Fields.of(raw, WeComSettings)
        url = check_url("url", f.text("url", required=True) or "", https_only=True, query_key="key")
        msgtype = f.choice("msgtype", ("markdown", "text"), "markdown")
        mentions = tuple(
            m if m == "@all" else phone_number("mention_mobiles", m).removeprefix("+86")
            for m in f.texts("mention_mobiles")
        )
        if mentions and msgtype != "text":
            raise InvalidSetting(
                "mention_mobiles",
                "只有 text 消息可以按手机号 @ 成员",
                "mentioning by mobile needs msgtype text",
            )
        return WeComSettings(url=url, msgtype=msgtype, mention_mobiles=mentions)

    async def send(
        self, message: Message, settings: WeComSettings, ctx: SendContext
    ) -> DeliveryResult:
        return await http.post_to_robot(
            ctx, httpx.URL(settings.url), payload(message, settings), classify, "errcode"
        )
