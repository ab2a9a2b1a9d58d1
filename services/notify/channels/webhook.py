"""A generic webhook, signed the Standard Webhooks way.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
(signing: https://www.standardwebhooks.com/). Each POST carries ``webhook-id`` (the same for
every attempt of one delivery, so receivers can drop duplicates), ``webhook-timestamp``
(integer Unix seconds) and, when the recipient has a secret, ``webhook-signature``:
``v1,`` + base64(HMAC-SHA256(key = base64-decoded secret after ``whsec_``,
msg = f"{webhook-id}.{webhook-timestamp}.{body}")). Signing is done by the reference
``standardwebhooks`` library. The body is ``{"type", "timestamp", "data"}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from services.notify import domain
from services.notify.channels import http
from services.notify.channels.base import DeliveryResult, InvalidSetting, Message, SendContext
from services.notify.channels.settings import Fields, check_url
from shared.errors import Invalid

USER_AGENT = "Whistle-Notify/0.1 (+standard-webhooks)"


def signed_request(
    msg_id: str, payload: Mapping[str, Any], now: datetime, secret: str | None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt; signed if there is a secret."""
    body = http.json_bytes(payload)
    headers = {
        "content-type": "application/json; charset=utf-8",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(now.timestamp())),
    }
    if secret:
        headers["webhook-signature"] = Webhook(secret).sign(msg_id, now, body.decode())
    return body, headers


async def post_signed(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], within: float
) -> DeliveryResult:
    """POST once; any 2xx is delivered (the spec: the receiver answers 2xx quickly)."""
    resp = await http.post(client, url, content=body, headers=headers, within=within)
    if isinstance(resp, DeliveryResult):
        return resp
    return http.status_result(resp) or DeliveryResult.sent(f"HTTP {resp.status_code}")


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str | None = field(default=None, repr=False)  # whsec_…; else unsigned


class WebhookChannel:
    kind = "webhook"

    def validate_settings(self, raw: Mapping[str, Any]) -> WebhookSettings:
        f = Fields.of(raw, WebhookSettings)
        url = f.text("url", required=True)
        assert url is not None
        check_url("url", url, https_only=False)
        secret = f.text("secret", max_len=200)
        if secret is not None:  # the rule of a recipient's webhook_secret (domain)
            try:
                domain.check_webhook_secret(secret)
            except Invalid:
                raise InvalidSetting(
                    "secret",
                    "应为 whsec_ 加 24–64 字节随机数的 base64 编码",
                    "must be 'whsec_' + base64 of 24 to 64 random bytes",
                ) from None
        return WebhookSettings(url=url, secret=secret)

    async def send(
        self, message: Message, settings: WebhookSettings, ctx: SendContext
    ) -> DeliveryResult:
        now = ctx.clock()
        payload = {
            "type": message.kind,
            "timestamp": now.isoformat(),
            "data": {
                "message_id": message.id,
                "title": message.title,
                "text": message.text,
                "link": message.link,
                "urgent": message.urgent,
                "locale": message.locale,
                **message.data,
            },
        }
        body, headers = signed_request(message.id, payload, now, settings.secret)
        return await post_signed(ctx.client(), settings.url, body, headers, ctx.timeout)
