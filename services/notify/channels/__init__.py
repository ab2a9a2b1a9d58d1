"""Notify's delivery channels, each behind one small interface (``base.Channel``):
``validate_settings(raw) -> settings`` and ``send(message, settings, ctx) -> DeliveryResult``.

- ``webhook``: any HTTP endpoint, signed the Standard Webhooks way (module ``webhook``);
- ``wecom``: 企业微信 WeCom group robot, the key in the URL (``wecom``);
- ``dingtalk``: 钉钉 DingTalk custom robot, 加签 = HMAC-SHA256 in the query (``dingtalk``);
- ``feishu``: 飞书 Feishu / Lark custom bot, 签名校验 = HMAC-SHA256 in the body (``feishu``);
- ``email``: SMTP with STARTTLS or implicit TLS, via aiosmtplib (``smtp``);
- ``sms``: an SMS gateway through a provider adapter, ``generic`` JSON for now (``sms``).

The in-app inbox is not here: it is written in the consumer's own transaction (handlers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.notify.channels.base import (
    Channel,
    DeliveryResult,
    InvalidSetting,
    Message,
    Outcome,
    SendContext,
    send_bounded,
)
from services.notify.channels.dingtalk import DingTalkChannel
from services.notify.channels.feishu import FeishuChannel
from services.notify.channels.sms import SmsChannel
from services.notify.channels.smtp import EmailChannel
from services.notify.channels.webhook import WebhookChannel
from services.notify.channels.wecom import WeComChannel

CHANNELS: dict[str, Channel[Any]] = {
    c.kind: c
    for c in (
        WebhookChannel(),
        WeComChannel(),
        DingTalkChannel(),
        FeishuChannel(),
        EmailChannel(),
        SmsChannel(),
    )
}


def channel(kind: str) -> Channel[Any]:
    try:
        return CHANNELS[kind]
    except KeyError:
        raise InvalidSetting(
            "kind",
            f"未知渠道“{kind}”（可用：{'、'.join(CHANNELS)}）",
            f"unknown channel '{kind}' (known: {', '.join(CHANNELS)})",
        ) from None


def validate_settings(kind: str, raw: Mapping[str, Any]) -> Any:
    """The typed settings of channel ``kind``, or ``InvalidSetting`` naming the field."""
    return channel(kind).validate_settings(raw)


__all__ = [
    "CHANNELS",
    "Channel",
    "DeliveryResult",
    "InvalidSetting",
    "Message",
    "Outcome",
    "SendContext",
    "channel",
    "send_bounded",
    "validate_settings",
]
