"""Notify's rules: who hears what, what the message says, when to try a webhook again.

Standard library only; no I/O, no clock (callers pass times and random numbers in).
"""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.errors import Conflict, Invalid

if TYPE_CHECKING:
    from shared.auth import Principal


class RecipientKind(StrEnum):
    DEPARTMENT = "department"  # 职能部门/驻区单位/物业 值班室: receives dispatches (派单)
    SUPERVISOR = "supervisor"  # 督办: hears about late cases in an area subtree


class Channel(StrEnum):
    INBOX = "inbox"      # in-app inbox, delivered in the consumer's transaction
    WEBHOOK = "webhook"  # HTTP POST, signed the Standard Webhooks way, retried


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # parked after the last scheduled attempt; kept and replayable


class NoticeKind(StrEnum):
    DISPATCHED = "case.dispatched"  # 派单
    OVERDUE = "case.overdue"        # 超时


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str
    kind: RecipientKind
    department_id: str | None = None
    area_path: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None


@dataclass(frozen=True)
class CaseNotice:
    """What a consumed event tells the people who must hear about it."""

    kind: NoticeKind
    case_id: str
    case_no: str
    category: str
    area_path: str
    priority: str
    department_id: str
    department_name: str
    role: str | None = None          # dispatched: lead (主办) or co (协办)
    description: str | None = None   # dispatched: what the grid worker saw
    clock: str | None = None         # overdue: sign_for (签收报到) or resolve (办结)
    due_at: datetime | None = None   # overdue: the deadline that passed


@dataclass(frozen=True)
class Message:
    title_zh: str
    body_zh: str
    title_en: str
    body_en: str
    link: str


# --- who hears what ---------------------------------------------------------------------


def ancestor_paths(area_path: str) -> list[str]:
    """``YA/YA01/YA0101`` → ``["YA", "YA/YA01", "YA/YA01/YA0101"]`` (itself included)."""
    parts = area_path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def covers(supervised: str, area_path: str) -> bool:
    """A supervisor of ``supervised`` oversees ``area_path``: equal or a '/'-ancestor of it."""
    return area_path == supervised or area_path.startswith(supervised + "/")


def select_recipients(notice: CaseNotice, candidates: Iterable[Recipient]) -> list[Recipient]:
    """派单 goes to the assigned department's desks; 超时 goes to the supervisors of the
    case's area (at any level above it) and hurries (督办) the late department too."""
    chosen: dict[str, Recipient] = {}
    for r in candidates:
        is_department = (
            r.kind is RecipientKind.DEPARTMENT and r.department_id == notice.department_id
        )
        is_supervisor = (
            notice.kind is NoticeKind.OVERDUE
            and r.kind is RecipientKind.SUPERVISOR
            and r.area_path is not None
            and covers(r.area_path, notice.area_path)
        )
        if is_department or is_supervisor:
            chosen.setdefault(r.id, r)
    return sorted(chosen.values(), key=lambda r: r.id)


# --- who may read an inbox ----------------------------------------------------------------


def check_inbox_access(who: Principal, recipient: Recipient) -> None:
    """A department's desk is read only by that department's staff; a supervisor's desk by
    whoever oversees its area: a supervisor, community, street or district user whose subtree
    covers the desk's area path. Raises ``shared.auth.Forbidden`` otherwise. (Which roles may
    ask at all is the endpoint's rule; this is the scope.) A desk without its key field
    matches nobody: fail closed."""
    if recipient.kind is RecipientKind.DEPARTMENT:
        who.require_department(recipient.department_id or "")
    else:
        who.require_area(recipient.area_path or "")


# --- what the message says -------------------------------------------------------------

BEIJING = timezone(timedelta(hours=8))
_ROLE = {"lead": ("主办", "lead"), "co": ("协办", "co-handler")}
_CLOCK = {"sign_for": ("签收报到", "sign-for"), "resolve": ("办结", "resolution")}


def case_link(case_id: str, base: str = "") -> str:
    return f"{base.rstrip('/')}/cases/{case_id}"


def _deadline(at: datetime | None) -> tuple[str, str]:
    if at is None:
        return "未知", "unknown"
    local = at.astimezone(BEIJING)
    return f"{local:%Y-%m-%d %H:%M}（北京时间）", f"{local:%Y-%m-%d %H:%M} (UTC+8)"


def render(notice: CaseNotice, audience: RecipientKind, link_base: str = "") -> Message:
    """The message in Simplified Chinese and English for one kind of recipient."""
    n = notice
    link = case_link(n.case_id, link_base)
    urgent_zh, urgent_en = ("（紧急）", " (urgent)") if n.priority == "urgent" else ("", "")
    where_zh = f"位置：{n.area_path}。"
    where_en = f"Area: {n.area_path}."
    if n.kind is NoticeKind.DISPATCHED:
        role_zh, role_en = _ROLE.get(n.role or "", (n.role or "", n.role or ""))
        role_zh = f"（{role_zh}）" if role_zh else ""
        role_en = f" as {role_en}" if role_en else ""
        what_zh = f"问题：{n.description}。" if n.description else ""
        what_en = f" Issue: {n.description}." if n.description else ""
        return Message(
            title_zh=f"【派单】{urgent_zh}案件{n.case_no}已派至{n.department_name}",
            body_zh=f"【派单】{urgent_zh}案件{n.case_no}（{n.category}）已派至{n.department_name}"
            f"{role_zh}，请及时签收报到。{where_zh}{what_zh}详情：{link}",
            title_en=f"[Dispatched]{urgent_en} Case {n.case_no} assigned to {n.department_name}",
            body_en=f"[Dispatched]{urgent_en} Case {n.case_no} ({n.category}) has been assigned to "
            f"{n.department_name}{role_en}; please sign for it promptly. {where_en}{what_en} "
            f"Details: {link}",
            link=link,
        )
    clock_zh, clock_en = _CLOCK.get(n.clock or "", (n.clock or "办理", n.clock or "handling"))
    due_zh, due_en = _deadline(n.due_at)
    if audience is RecipientKind.SUPERVISOR:
        ask_zh, ask_en = "请督办。", "Please follow up (督办)."
    else:
        ask_zh, ask_en = "请立即办理并反馈。", "Please act on it now and report back."
    return Message(
        title_zh=f"【超时】{urgent_zh}案件{n.case_no}{clock_zh}已超时",
        body_zh=f"【超时】{urgent_zh}案件{n.case_no}（{n.category}）{n.department_name}"
        f"{clock_zh}已超时（时限{due_zh}），{ask_zh}{where_zh}详情：{link}",
        title_en=f"[Overdue]{urgent_en} Case {n.case_no}: {clock_en} overdue",
        body_en=f"[Overdue]{urgent_en} Case {n.case_no} ({n.category}): {n.department_name} "
        f"missed the {clock_en} deadline ({due_en}). {ask_en} {where_en} Details: {link}",
        link=link,
    )


def webhook_body(notice: CaseNotice, message: Message, *, event_id: str, recipient_id: str,
                 occurred_at: datetime) -> dict:
    """The JSON a webhook receives, in the Standard Webhooks shape {type, timestamp, data}."""
    n = notice
    return {
        "type": n.kind.value,
        "timestamp": occurred_at.isoformat(),
        "data": {
            "event_id": event_id, "recipient_id": recipient_id,
            "case_id": n.case_id, "case_no": n.case_no, "category": n.category,
            "area_path": n.area_path, "priority": n.priority,
            "department_id": n.department_id, "department_name": n.department_name,
            "role": n.role, "clock": n.clock,
            "due_at": n.due_at.isoformat() if n.due_at else None,
            "title": {"zh": message.title_zh, "en": message.title_en},
            "text": {"zh": message.body_zh, "en": message.body_en},
            "link": message.link,
        },
    }


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


def check_replay(status: DeliveryStatus) -> None:
    if status is not DeliveryStatus.DEAD:
        raise Conflict(
            f"只有已停止重试（dead）的投递可以重新投递，当前状态为“{status.value}”",
            f"only a dead delivery can be replayed; this one is '{status.value}'",
            code="not_dead",
        )


# --- recipients ----------------------------------------------------------------------------


def validate_recipient(r: Recipient) -> Recipient:
    """A department desk needs its department; a supervisor needs the area he oversees."""
    if r.kind is RecipientKind.DEPARTMENT and not r.department_id:
        raise Invalid("部门类接收方必须填写 department_id",
                      "a department recipient needs a department_id", code="department_required")
    if r.kind is RecipientKind.SUPERVISOR and not r.area_path:
        raise Invalid("督办类接收方必须填写 area_path（如 YA/YA01）",
                      "a supervisor recipient needs an area_path (e.g. YA/YA01)",
                      code="area_required")
    if r.area_path is not None and any(not part for part in r.area_path.split("/")):
        raise Invalid(f"辖区路径“{r.area_path}”无效，应为以 / 连接的编码，如 YA/YA01",
                      f"invalid area_path '{r.area_path}': codes joined by '/', e.g. YA/YA01",
                      code="invalid_area_path")
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
        raise Invalid(f"webhook_url“{url}”不是有效的 http(s) 地址",
                      f"webhook_url '{url}' is not a valid http(s) URL", code="invalid_webhook_url")


def check_webhook_secret(secret: str) -> None:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 to 64 random bytes."""
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise Invalid("webhook_secret 应为 whsec_ 加 24–64 字节随机数的 base64 编码",
                      "webhook_secret must be 'whsec_' + base64 of 24 to 64 random bytes",
                      code="invalid_webhook_secret")
