"""Notify's core rules: recipients, who may read an inbox, when to try a delivery again.

No I/O, no clock (callers pass times and random numbers in); area paths are read with the
contract's rules (``shared.contract.areas``).
"""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.contract import (
    CaseClosed,
    CaseDeadlineWarning,
    CaseDispatched,
    CaseEscalated,
    CaseExtensionDecided,
    CaseExtensionRequested,
    CaseOverdue,
    CasePauseDecided,
    CasePauseRequested,
    CaseResolved,
    CaseResumed,
    CaseUrged,
    CaseWhistled,
)
from shared.errors import Conflict, Forbidden, Invalid

if TYPE_CHECKING:
    from shared.auth import Principal


class RecipientKind(StrEnum):
    DEPARTMENT = "department"  # 职能部门/驻区单位/物业 值班室: receives dispatches (派单)
    SUPERVISOR = "supervisor"  # 督办: hears about late cases and escalations in an area subtree
    COMMUNITY = "community"  # 社区工作人员: the reporter's side of the cases in its area
    GRID_WORKER = "grid_worker"  # 网格员: the reporter's side of the cases in his grid


AREA_KINDS = (RecipientKind.SUPERVISOR, RecipientKind.COMMUNITY, RecipientKind.GRID_WORKER)


class Channel(StrEnum):
    INBOX = "inbox"  # in-app inbox, delivered in the consumer's transaction, always on
    WEBHOOK = "webhook"  # HTTP POST, signed the Standard Webhooks way
    WECOM = "wecom"  # 企业微信群机器人
    DINGTALK = "dingtalk"  # 钉钉自定义机器人
    FEISHU = "feishu"  # 飞书自定义机器人
    EMAIL = "email"  # SMTP
    SMS = "sms"  # 短信网关

    @property
    def robot(self) -> bool:
        """A group chat robot: the vendor allows about 20 messages a minute."""
        return self in (Channel.WECOM, Channel.DINGTALK, Channel.FEISHU)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # parked after the last scheduled attempt; kept and replayable
    DIGESTED = "digested"  # sent inside a digest (汇总) carried by another delivery


class NoticeKind(StrEnum):
    """The events notify announces, named by their contract class (``consumers`` routes each
    class to the reader in ``handlers.notices``): the kind a notice, a subscription and a mute
    name, and the key of the templates."""

    DISPATCHED = CaseDispatched.TYPE  # 派单: the department hears it
    OVERDUE = CaseOverdue.TYPE  # 超时: supervisors hear it; the late department is urged (督办)
    WHISTLED = CaseWhistled.TYPE  # 吹哨: at street or district level an escalation (升级)
    RESOLVED = CaseResolved.TYPE  # 办结: the reporter's side hears it
    CLOSED = CaseClosed.TYPE  # 结案: the reporter's side hears it
    WARNING = CaseDeadlineWarning.TYPE  # 预警: the department hears it (tracking)
    ESCALATED = CaseEscalated.TYPE  # 逐级上报: supervisors hear it (tracking)
    URGED = CaseUrged.TYPE  # 督办: the department hears it (tracking)
    EXTENSION_REQUESTED = CaseExtensionRequested.TYPE  # 延期申请: the area's supervisors decide
    EXTENSION_DECIDED = CaseExtensionDecided.TYPE  # 延期批复: the department hears it
    PAUSE_REQUESTED = CasePauseRequested.TYPE  # 挂账/缓办申请: the area's supervisors decide
    PAUSE_DECIDED = CasePauseDecided.TYPE  # 挂账/缓办批复: the department hears it
    RESUMED = CaseResumed.TYPE  # 恢复办理: the department hears it


@dataclass(frozen=True)
class ChannelPref:
    kind: Channel
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preferences:
    channels: tuple[ChannelPref, ...] = ()
    locale: str = "zh-CN"
    quiet_start: time | None = None
    quiet_end: time | None = None
    muted: tuple[str, ...] = ()  # default event types opted out of (see subscriptions)

    def channel(self, kind: str) -> ChannelPref | None:
        return next((c for c in self.channels if c.kind.value == kind), None)

    def after(self, kind: str, position: int | None) -> ChannelPref | None:
        """The channel to fall back to after ``kind``: the next one in the current list (if
        ``kind`` was removed meanwhile, the one now at its old position)."""
        kinds = [c.kind.value for c in self.channels]
        index = kinds.index(kind) + 1 if kind in kinds else (position or 0)
        return self.channels[index] if index < len(self.channels) else None


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str
    kind: RecipientKind
    department_id: str | None = None
    area_path: str | None = None
    webhook_url: str | None = None  # the first way to give a webhook, kept working
    webhook_secret: str | None = None
    preferences: Preferences = field(default_factory=Preferences)

    def channel_list(self) -> tuple[ChannelPref, ...]:
        """The channels to try, in order. A webhook given the first way (``webhook_url``)
        comes first unless the preferences list a webhook themselves."""
        listed = self.preferences.channels
        if self.webhook_url and self.preferences.channel(Channel.WEBHOOK.value) is None:
            legacy = {"url": self.webhook_url}
            if self.webhook_secret:
                legacy["secret"] = self.webhook_secret
            return (ChannelPref(Channel.WEBHOOK, legacy), *listed)
        return listed

    def next_channel(self, kind: str, position: int | None) -> ChannelPref | None:
        return Preferences(channels=self.channel_list()).after(kind, position)


@dataclass(frozen=True)
class CaseNotice:
    """What a consumed event tells the people who must hear about it."""

    kind: NoticeKind
    case_id: str
    case_no: str
    category: str
    area_path: str
    priority: str
    department_id: str | None = None
    department_name: str | None = None
    assignment_id: str | None = None  # the department's assignment the event is about, if any
    role: str | None = None  # dispatched: lead (主办) or co (协办)
    description: str | None = None  # dispatched, whistled: what the grid worker saw
    clock: str | None = None  # overdue: sign_for (签收报到) or resolve (办结)
    due_at: datetime | None = None  # overdue: the deadline that passed
    place: str | None = None  # whistled: the address, when the report gave one
    level: str | None = None  # whistled: community, street (街道) or district (区)
    result: str | None = None  # resolved: what the department did; closed: the note
    note: str | None = None  # urged: what the supervisor asks; resumed: why
    count: int | None = None  # urged: the n-th urging of the assignment
    reason: str | None = None  # extension and pause requests and decisions
    days: int | None = None  # extension: working days asked for, or granted
    approved: bool | None = None  # decisions
    comment: str | None = None  # decisions: the supervisor's words
    pause: str | None = None  # pauses: hang (挂账) or defer (缓办)

    @property
    def urgent(self) -> bool:
        return self.priority == "urgent"


@dataclass(frozen=True)
class Message:
    title_zh: str
    body_zh: str
    title_en: str
    body_en: str
    link: str


# --- who may read an inbox ----------------------------------------------------------------


_OVERSEEN = ("street", "community", "grid_worker")  # roles a supervisor oversees


def check_inbox_access(who: Principal, recipient: Recipient) -> None:
    """A department's desk is read only by that department's staff; a supervisor's desk by
    whoever oversees its area: a supervisor, community, street or district user whose subtree
    covers the desk's area path. Raises ``shared.auth.Forbidden`` otherwise. (Which roles may
    ask at all is the endpoint's rule; this is the scope.) A desk without its key field
    matches nobody: fail closed."""
    if recipient.kind is RecipientKind.DEPARTMENT:
        who.require_department(recipient.department_id or "")
        return
    # A supervisor's desk (督办) is read by those above the offices it oversees: a street or
    # community office (or grid worker) must not read what is said about it there (overdue
    # alerts, escalations, the requests awaiting the supervisor's decision).
    if recipient.kind is RecipientKind.SUPERVISOR and who.role.value in _OVERSEEN:
        raise Forbidden(
            "街道、社区和网格员不能查看督办的站内信",
            "a street or community office may not read a supervisor's inbox",
            code="supervisor_inbox",
        )
    # community and grid-worker desks (and supervisors' own): whoever oversees their area
    who.require_area(recipient.area_path or "")


# --- webhook retries ---------------------------------------------------------------------


def retry_delay(attempts: int, *, base: float, cap: float, rand: float | None = None) -> float:
    """Seconds before scheduled attempt ``attempts + 1``: exponential (base·2^(n-1)), capped,
    with "equal jitter" (between half and all of it) so that retries of many deliveries to
    one endpoint that came back do not arrive together."""
    r = random.random() if rand is None else rand
    full = min(cap, base * 2 ** max(attempts - 1, 0))
    return full / 2 + full / 2 * r


def status_after_failure(attempts: int, max_attempts: int, *, gone: bool = False) -> DeliveryStatus:
    """After ``attempts`` failed scheduled attempts: try again later, or park it as dead.
    An endpoint answering 410 Gone is parked at once (Standard Webhooks' convention)."""
    return DeliveryStatus.DEAD if gone or attempts >= max_attempts else DeliveryStatus.PENDING


def webhook_message_id(event_id: str, recipient_id: str) -> str:
    """The Standard Webhooks ``webhook-id``: the same for every attempt and replay of one
    delivery, so that a receiver can drop duplicates."""
    return f"msg_{event_id.replace('-', '')}_{recipient_id}"


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300


def is_transient(status_code: int) -> bool:
    """Worth an immediate retry: the endpoint is overloaded or briefly broken."""
    return status_code in (408, 425, 429) or status_code >= 500


@dataclass(frozen=True)
class Carrier:
    """Another channel's delivery of the same event to the same recipient."""

    id: int
    channel: str
    status: DeliveryStatus


def check_replay(
    status: DeliveryStatus, others: Sequence[Carrier] = (), *, force: bool = False
) -> None:
    """Only a dead delivery is replayed. If the message already went out on another channel
    (the fallback that took over when this one gave up, or one after it), or is on its way
    there, a replay would tell the recipient twice: refused, naming that delivery, unless
    ``force`` (the operator knows the other channel did not reach the person)."""
    if status is not DeliveryStatus.DEAD:
        raise Conflict(
            f"只有已停止重试（dead）的投递可以重新投递，当前状态为“{status.value}”",
            f"only a dead delivery can be replayed; this one is '{status.value}'",
            code="not_dead",
        )
    live = (DeliveryStatus.SENT, DeliveryStatus.DIGESTED, DeliveryStatus.PENDING)
    carrier = next((c for c in others if c.status in live), None)
    if carrier is not None and not force:
        state_zh, state_en = {
            "sent": ("已送达", "already went out"),
            "digested": ("已随汇总送达", "already went out in a digest"),
            "pending": ("正在投递", "is on its way"),
        }[carrier.status.value]
        raise Conflict(
            f"该消息已通过 {carrier.channel} 渠道{state_zh}（投递 {carrier.id}），重新投递会让接收方"
            "收到两次；如确需再次发送，请加 force=true",
            f"this message {state_en} on {carrier.channel} (delivery {carrier.id}, "
            f"{carrier.status.value}); a replay would tell the recipient twice — add "
            "force=true to send it anyway",
            code="already_delivered",
        )


# --- recipients ----------------------------------------------------------------------------


def validate_recipient(r: Recipient) -> Recipient:
    """A department desk needs its department; the others need the area they stand for."""
    if r.kind is RecipientKind.DEPARTMENT and not r.department_id:
        raise Invalid(
            "部门类接收方必须填写 department_id",
            "a department recipient needs a department_id",
            code="department_required",
        )
    if r.kind in AREA_KINDS and not r.area_path:
        raise Invalid(
            "督办、社区和网格员接收方必须填写 area_path（如 YA/YA01）",
            "a supervisor, community or grid-worker recipient needs an area_path (e.g. YA/YA01)",
            code="area_required",
        )
    if r.area_path is not None and any(not part for part in r.area_path.split("/")):
        raise Invalid(
            f"辖区路径“{r.area_path}”无效，应为以 / 连接的编码，如 YA/YA01",
            f"invalid area_path '{r.area_path}': codes joined by '/', e.g. YA/YA01",
            code="invalid_area_path",
        )
    if r.webhook_url is not None:
        check_webhook_url(r.webhook_url)
    if r.webhook_secret is not None:
        check_webhook_secret(r.webhook_secret)
    return r


def check_webhook_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        ok = False
    if not ok:
        raise Invalid(
            f"webhook_url“{url}”不是有效的 http(s) 地址",
            f"webhook_url '{url}' is not a valid http(s) URL",
            code="invalid_webhook_url",
        )


def check_webhook_secret(secret: str) -> None:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 to 64 random bytes."""
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise Invalid(
            "webhook_secret 应为 whsec_ 加 24–64 字节随机数的 base64 编码",
            "webhook_secret must be 'whsec_' + base64 of 24 to 64 random bytes",
            code="invalid_webhook_secret",
        )
