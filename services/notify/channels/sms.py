"""SMS through an HTTP provider adapter.

SMS in China is sent from templates approved in advance (a template id, a 签名 sign name
and named parameters), so the channel sends a template id and parameters, never free text.
The channel (settings, parameters, one bounded POST) is the same for every provider; an
:class:`SmsProvider` adapter knows only its wire format: how to sign and shape the request
and what its answer codes mean. One adapter ships, ``generic`` (below): a documented JSON
protocol for an SMS gateway (an operator's, the city's own platform, or a small bridge).
Aliyun (Dysmsapi ``SendSms``, https://help.aliyun.com/zh/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms)
and Tencent Cloud (``SendSms`` with TC3-HMAC-SHA256, https://cloud.tencent.com/document/api/382/55981)
adapters are added by implementing ``SmsProvider`` and registering it in ``PROVIDERS``;
``template_params`` is an ordered list of names so that Tencent's positional parameters fit.

The ``generic`` protocol, version 1::

    POST <url>
    Content-Type: application/json; charset=utf-8
    X-Sms-App-Key:   <app_key>
    X-Sms-Timestamp: <Unix seconds>        the gateway refuses one more than 300 s off
    X-Sms-Nonce:     <32 hex characters>   new for each request; a repeat is refused
    X-Sms-Signature: base64(HMAC-SHA256(key = app_secret, msg = string_to_sign))

    string_to_sign = "POST\\n" + path (with ?query, if any) + "\\n" + timestamp + "\\n"
                     + nonce + "\\n" + lowercase hex SHA-256 of the body bytes

    {"to": ["+8613800138000"], "sign_name": "榆安城管", "template_id": "CASE_DISPATCHED",
     "template_params": {"case_no": "YA20261122-0001"}, "out_id": "<message id>"}

``out_id`` is the delivery's message id, the same on every attempt, resend and replay of one
delivery: a gateway that remembers recent ones drops a repeat (notify is at least once).
The answer is ``{"code": "OK", "message": "...", "request_id": "..."}``. ``THROTTLED``
(rate limited) and ``SYSTEM_BUSY`` are transient; ``INVALID_SIGNATURE``,
``INVALID_APP_KEY``, ``TIMESTAMP_EXPIRED``, ``NONCE_REUSED``, ``INVALID_PHONE``,
``TEMPLATE_NOT_FOUND``, ``TEMPLATE_PARAMS_MISMATCH``, ``SIGN_NAME_INVALID``,
``BALANCE_INSUFFICIENT``, ``BLACKLISTED`` and any unknown code are permanent. HTTP errors
are classified as for any HTTP channel (5xx and 429 transient).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

import httpx

from services.notify.channels import http
from services.notify.channels.base import DeliveryResult, InvalidSetting, Message, SendContext
from services.notify.channels.settings import Fields, check_url, phone_number


@dataclass(frozen=True)
class SmsSettings:
    url: str
    app_key: str
    app_secret: str = field(repr=False)
    template_id: str
    to: tuple[str, ...]  # E.164 mobiles
    template_params: tuple[str, ...] = ()  # names, in the template's order
    sign_name: str | None = None
    provider: str = "generic"


@dataclass(frozen=True)
class Sms:
    to: tuple[str, ...]
    template_id: str
    params: dict[str, str]  # in template order
    sign_name: str | None
    out_id: str


@dataclass(frozen=True)
class SmsRequest:
    url: str
    headers: dict[str, str]
    body: bytes


class SmsProvider(Protocol):
    name: ClassVar[str]

    def request(self, sms: Sms, settings: SmsSettings, now: datetime, nonce: str) -> SmsRequest: ...

    def classify(self, resp: httpx.Response) -> DeliveryResult: ...


def generic_signature(app_secret: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    to_sign = "\n".join(["POST", path, timestamp, nonce, hashlib.sha256(body).hexdigest()])
    mac = hmac.new(app_secret.encode(), to_sign.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class GenericSmsProvider:
    """The ``generic`` JSON protocol (module docstring)."""

    name: ClassVar[str] = "generic"
    TRANSIENT: ClassVar[frozenset[str]] = frozenset({"THROTTLED", "SYSTEM_BUSY"})
    RATE_LIMITED: ClassVar[frozenset[str]] = frozenset({"THROTTLED"})

    def request(self, sms: Sms, settings: SmsSettings, now: datetime, nonce: str) -> SmsRequest:
        body = http.json_bytes(
            {
                "to": list(sms.to),
                "sign_name": sms.sign_name,
                "template_id": sms.template_id,
                "template_params": sms.params,
                "out_id": sms.out_id,
            }
        )
        url = httpx.URL(settings.url)
        path = url.raw_path.decode()
        timestamp = str(int(now.timestamp()))
        headers = {
            **http.JSON_HEADERS,
            "x-sms-app-key": settings.app_key,
            "x-sms-timestamp": timestamp,
            "x-sms-nonce": nonce,
            "x-sms-signature": generic_signature(settings.app_secret, path, timestamp, nonce, body),
        }
        return SmsRequest(url=settings.url, headers=headers, body=body)

    def classify(self, resp: httpx.Response) -> DeliveryResult:
        answer = http.vendor_json(resp, "code")
        if isinstance(answer, DeliveryResult):
            return answer
        code = str(answer.get("code"))
        detail = f"{code}: {answer.get('message', '')} (request {answer.get('request_id', '-')})"
        if code == "OK":
            return DeliveryResult.sent("OK", detail)
        if code in self.TRANSIENT:
            return DeliveryResult.retry(code, detail, rate_limited=code in self.RATE_LIMITED)
        return DeliveryResult.fail(code, detail)


PROVIDERS: dict[str, SmsProvider] = {GenericSmsProvider.name: GenericSmsProvider()}


def template_values(message: Message, names: tuple[str, ...]) -> dict[str, str] | DeliveryResult:
    """The template's parameters from the message: its ``data``, or title/text/link."""
    fields = {"title": message.title, "text": message.text, "link": message.link}
    values: dict[str, str] = {}
    for name in names:
        value = message.data.get(name, fields.get(name))
        if value is None:
            return DeliveryResult.fail(
                "missing_param", f"the message has no value for template parameter {name}"
            )
        values[name] = str(value)
    return values


class SmsChannel:
    kind = "sms"

    def validate_settings(self, raw: Mapping[str, Any]) -> SmsSettings:
        f = Fields.of(raw, SmsSettings)
        provider = f.choice("provider", tuple(PROVIDERS), "generic")
        url = check_url("url", f.text("url", required=True) or "", https_only=True)
        to = tuple(phone_number("to", v) for v in f.texts("to", max_items=100))
        if not to:
            raise InvalidSetting(
                "to", "至少需要一个手机号码", "at least one mobile number is required"
            )
        return SmsSettings(
            url=url,
            app_key=f.text("app_key", required=True, max_len=200) or "",
            app_secret=f.text("app_secret", required=True, max_len=500) or "",
            template_id=f.text("template_id", required=True, max_len=100) or "",
            to=to,
            template_params=tuple(f.texts("template_params")),
            sign_name=f.text("sign_name", max_len=50),
            provider=provider,
        )

    async def send(
        self, message: Message, settings: SmsSettings, ctx: SendContext
    ) -> DeliveryResult:
        params = template_values(message, settings.template_params)
        if isinstance(params, DeliveryResult):
            return params
        provider = PROVIDERS[settings.provider]
        sms = Sms(
            to=settings.to,
            template_id=settings.template_id,
            params=params,
            sign_name=settings.sign_name,
            out_id=message.id,
        )
        req = provider.request(sms, settings, ctx.clock(), ctx.nonce())
        resp = await http.post(
            ctx.client(), req.url, content=req.body, headers=req.headers, within=ctx.timeout
        )
        return resp if isinstance(resp, DeliveryResult) else provider.classify(resp)
