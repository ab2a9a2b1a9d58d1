"""The one small interface every channel implements, and what flows through it.

A channel turns a :class:`Message` into one delivery attempt on one medium (a signed
webhook, a chat robot, an SMTP server, an SMS gateway):

- ``validate_settings(raw)`` checks a recipient's settings for this channel (a dict, as
  stored or received over HTTP) and returns a typed, frozen settings object; anything wrong
  raises :class:`InvalidSetting` (a ``shared.errors.Invalid``) naming the field, with the
  message in Simplified Chinese first and English second;
- ``send(message, settings, ctx)`` makes ONE attempt and returns a :class:`DeliveryResult`
  that says whether it was delivered and, if not, whether trying again may help
  (``transient``: timeouts, connection errors, HTTP 5xx/429, a vendor's rate limit) or not
  (``permanent``: other 4xx, a wrong key, secret or signature, a refused address). It does
  not retry, sleep or raise for the endpoint's failures: retries, backoff and fallback are
  the caller's (tenacity at the I/O edge, the delivery log). The caller bounds each attempt
  with :func:`send_bounded`, so a hanging endpoint costs one timeout and never blocks other
  sends.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import httpx
import structlog

from shared.clock import utcnow
from shared.errors import Invalid

log = structlog.get_logger()

USER_AGENT = "Whistle-Notify/0.1"


class Outcome(StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"  # may succeed later: retry with backoff
    PERMANENT = "permanent"  # will not succeed as configured: stop, keep, tell someone


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one attempt. ``code`` is short and stable enough for metrics and the
    delivery log (``HTTP 503``, ``errcode 45009``, ``smtp 550``, ``timeout``); ``detail`` is
    the vendor's answer or the error, cut to a few hundred characters."""

    outcome: Outcome
    code: str = ""
    detail: str = ""
    rate_limited: bool = False  # the vendor said "too fast" (a digest may help)
    retry_after: float | None = None  # seconds, when the endpoint said so
    gone: bool = False  # the endpoint no longer exists (410, robot deleted)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SENT

    @property
    def transient(self) -> bool:
        return self.outcome is Outcome.TRANSIENT

    @classmethod
    def sent(cls, code: str = "ok", detail: str = "") -> DeliveryResult:
        return cls(Outcome.SENT, code, detail[:500])

    @classmethod
    def retry(
        cls, code: str, detail: str, *, rate_limited: bool = False, retry_after: float | None = None
    ) -> DeliveryResult:
        return cls(Outcome.TRANSIENT, code, detail[:500], rate_limited, retry_after)

    @classmethod
    def fail(cls, code: str, detail: str, *, gone: bool = False) -> DeliveryResult:
        return cls(Outcome.PERMANENT, code, detail[:500], gone=gone)


@dataclass(frozen=True)
class Message:
    """What one recipient is told, channel-neutral (templates per event come later).

    ``id`` is stable for one delivery across retries and replays: it becomes the
    Standard Webhooks ``webhook-id``, the email ``Message-ID`` and the SMS ``out_id``, so a
    receiver can drop duplicates. ``data`` holds the facts behind the message (case number,
    deadline...): a webhook carries them, an SMS template takes its parameters from them."""

    id: str
    title: str
    text: str
    markdown: str | None = None  # for robots; derived from title, text and link when absent
    html: str | None = None  # email's HTML alternative, optional
    link: str | None = None
    urgent: bool = False
    locale: str = "zh-CN"
    kind: str = "notify.message"  # the event type, e.g. case.dispatched
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def english(self) -> bool:
        return self.locale.lower().startswith("en")

    def label(self, zh: str, en: str) -> str:
        return en if self.english else zh

    @property
    def urgent_mark(self) -> str:
        """``【紧急】`` (``【Urgent】``): what every channel puts before an urgent message."""
        return f"【{self.label('紧急', 'Urgent')}】"

    def marked_title(self) -> str:
        """The title, after the urgent mark when the case is urgent."""
        return f"{self.urgent_mark}{self.title}" if self.urgent else self.title

    def titled_text(self) -> str:
        """The title on its own line, then :meth:`plain_body`: a robot's plain-text message."""
        return f"{self.title}\n{self.plain_body()}"

    def markdown_body(self) -> str:
        """The robot-markdown body: the given one, or the title in bold, the text and the
        link (vendors' markdown dialects all read this subset). Title and text are literal
        (they carry users' descriptions, notes, reasons): see :func:`markdown_literal`."""
        if self.markdown:
            return self.markdown
        parts = [f"**{markdown_literal(self.title)}**", self.markdown_text()]
        if self.link:
            parts.append(f"[{self.label('查看详情', 'View details')}]({self.link})")
        return "\n\n".join(p for p in parts if p)

    def markdown_text(self) -> str:
        """The text as robot markdown that renders it literally; our own link in it stays."""
        return markdown_literal(self.text, keep=self.link)

    def plain_body(self) -> str:
        """Plain text: the text, then the link on its own line if the text lacks it."""
        if self.link and self.link not in self.text:
            return f"{self.text}\n{self.label('详情', 'Details')}：{self.link}"
        return self.text


# Robot markdown (WeCom, DingTalk, Feishu lark_md) has no escaping every dialect honours, so
# the characters that make markup in user text become their full-width forms, which read the
# same to a person and mean nothing to a renderer: no link ``[x](url)``, no ``<font>``,
# ``<@user>`` or ``<at id=all>``, no bold, code, strike-through, table or heading.
_MARKUP = str.maketrans(
    {
        "[": "［",
        "]": "］",
        "<": "＜",
        ">": "＞",
        "*": "＊",
        "`": "｀",
        "#": "＃",
        "_": "＿",
        "~": "～",
        "|": "｜",
        "\\": "＼",
    }
)
# A line of only - or = under another makes that one a heading (or draws a rule).
_RULE = re.compile(r"^[ \t]*([-=][ \t]*)+$", re.MULTILINE)


def markdown_literal(text: str, keep: str | None = None) -> str:
    """``text`` as robot markdown that shows it as written. ``keep`` (notify's own link, when
    the text quotes it) is left whole so it still works."""
    if keep:
        return keep.join(markdown_literal(piece) for piece in text.split(keep))
    literal = text.translate(_MARKUP)
    return _RULE.sub(lambda m: m.group(0).replace("-", "－").replace("=", "＝"), literal)


@dataclass(frozen=True)
class SendContext:
    """What an attempt may use from outside: the shared HTTP client (connection pool), the
    per-attempt timeout, a clock (signatures carry timestamps) and a nonce source."""

    http: httpx.AsyncClient | None = None
    timeout: float = 5.0
    clock: Callable[[], datetime] = utcnow
    nonce: Callable[[], str] = lambda: secrets.token_hex(16)
    # Connect only to public addresses (channels.targets); the HTTP client enforces it too.
    public_only: bool = False

    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            raise RuntimeError("this channel needs SendContext.http (an httpx.AsyncClient)")
        return self.http


S = TypeVar("S")


class Channel(Protocol[S]):
    """One medium. Implementations are stateless: settings come with every call."""

    kind: str

    def validate_settings(self, raw: Mapping[str, Any]) -> S: ...

    async def send(self, message: Message, settings: S, ctx: SendContext) -> DeliveryResult: ...


class InvalidSetting(Invalid):
    """A channel setting is wrong: 422 naming the field, e.g. ``url：机器人地址必须是 https 网址``."""

    def __init__(self, field_name: str, zh: str, en: str) -> None:
        super().__init__(
            f"{field_name}：{zh}", f"{field_name}: {en}", code="invalid_channel_settings"
        )
        self.field = field_name


async def send_bounded(
    channel: Channel[Any], message: Message, settings: Any, ctx: SendContext
) -> DeliveryResult:
    """One attempt with a hard deadline (``ctx.timeout`` plus a little slack for the
    channel's own, finer timeouts): a hanging endpoint becomes a transient ``timeout``, an
    unexpected error a transient ``error`` (logged; bounded retries, then kept for replay)."""
    try:
        async with asyncio.timeout(ctx.timeout + 1.0):
            return await channel.send(message, settings, ctx)
    except TimeoutError:
        return DeliveryResult.retry("timeout", f"no answer within {ctx.timeout:g}s")
    except Exception as exc:
        log.exception("channel_send_error", channel=channel.kind, message_id=message.id)
        return DeliveryResult.retry("error", f"{type(exc).__name__}: {exc}")


def fit_utf8(text: str, max_bytes: int, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 (vendors count bytes, and a Chinese
    character is three), never inside a character, marked with an ellipsis when cut."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    room = max_bytes - len(ellipsis.encode())
    if room < 0:
        return raw[: max(0, max_bytes)].decode(errors="ignore")
    return raw[:room].decode(errors="ignore") + ellipsis
