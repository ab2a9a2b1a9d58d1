"""What the message says: each notice rendered from its kind's templates (``wording``: data
shipped in ``templates.toml``, operators' replacements over it), Simplified Chinese and English.

Every message carries the case number, the place (the area's names — street › community ›
grid — and the address when the event has one), the category's name, the deadline when it
is known, the department and a link into the console: to the department's own assignment
for its desk, to the case for everyone else. Names come in as ``Names`` (intake's and
dispatch's reference data, kept by notify); a code without a known name reads as the code,
so a message never waits for a name. Chinese names are the only ones the owners keep: the
English text uses them too.
A digest (汇总) folds several messages for one robot into one when its rate limit would
otherwise drop them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from string import Template
from typing import Any

from services.notify.domain.core import CaseNotice, Message, NoticeKind, RecipientKind
from services.notify.domain.names import NO_NAMES, Names
from services.notify.domain.wording import FIELDS, LOCALES, Wording, shipped
from shared.clock import BEIJING


def case_link(case_id: str, base: str = "") -> str:
    return f"{base.rstrip('/')}/cases/{case_id}"


def assignment_link(assignment_id: str, base: str = "") -> str:
    return f"{base.rstrip('/')}/assignments/{assignment_id}"


def link_for(
    notice: CaseNotice, audience: RecipientKind, base: str = "", department_id: str | None = None
) -> str:
    """Where the message takes its reader in the console (``base`` is the console's public
    address, so the link is absolute — a deep link from a robot, an email or an SMS): a
    department's desk hearing about its own assignment (dispatched, warned, overdue, urged,
    a request decided, resumed) goes straight to that assignment, where it acts; everyone
    else — and a department that subscribed to another department's events — to the case."""
    own = (
        audience is RecipientKind.DEPARTMENT
        and notice.assignment_id is not None
        and department_id is not None
        and department_id == notice.department_id
    )
    return (
        assignment_link(notice.assignment_id, base)
        if own and notice.assignment_id
        else case_link(notice.case_id, base)
    )


def deadline_text(at: datetime | None) -> tuple[str, str]:
    if at is None:
        return "未知", "unknown"
    local = at.astimezone(BEIJING)
    return f"{local:%Y-%m-%d %H:%M}（北京时间）", f"{local:%Y-%m-%d %H:%M} (UTC+8)"


# A case new to its reader (a dispatch, a whistle) names its 大类 too (事件·市容环境 › 乱堆物料);
# the follow-ups about a case the reader knows name the 小类 alone.
_NEW_TO_READER = (NoticeKind.DISPATCHED, NoticeKind.WHISTLED)


def _category(n: CaseNotice, names: Names) -> str:
    return (
        names.category_in_full(n.category)
        if n.kind in _NEW_TO_READER
        else names.category(n.category)
    )


def render(
    notice: CaseNotice,
    audience: RecipientKind,
    link_base: str = "",
    *,
    department_id: str | None = None,
    names: Names = NO_NAMES,
    wording: Wording | None = None,
) -> Message:
    """The message in Simplified Chinese and English for one kind of recipient
    (``department_id``: a department desk's own department, see ``link_for``), naming the
    place and the category with ``names`` (codes where a name is unknown), in ``wording``
    (the templates in force; the shipped ones by default)."""
    w = wording or shipped()
    link = link_for(notice, audience, link_base, department_id)
    texts = []
    for locale in LOCALES:
        t = w.template(notice.kind, locale)
        values = placeholder_values(notice, audience, link, names, w, locale)
        texts.append((Template(t.title).substitute(values), Template(t.body).substitute(values)))
    (title_zh, body_zh), (title_en, body_en) = texts
    return Message(
        title_zh=title_zh, body_zh=body_zh, title_en=title_en, body_en=body_en, link=link
    )


def placeholder_values(
    notice: CaseNotice,
    audience: RecipientKind,
    link: str,
    names: Names,
    w: Wording,
    locale: str,
) -> dict[str, str]:
    """What each placeholder a template of ``notice``'s kind may use (``FIELDS``) says in
    ``locale``: the event's facts, its codes in words, the optional sentences (empty when
    the event lacks them)."""
    n = notice
    area = names.place_or_path(n.area_path)
    phrase = functools.partial(w.phrase, locale=locale)
    term = functools.partial(w.term, locale=locale)
    granted = "granted" if n.approved else "refused"
    if n.kind is NoticeKind.EXTENSION_DECIDED:
        outcome = (
            phrase("extension_granted", days=n.days) if n.approved else phrase("extension_refused")
        )
    else:
        outcome = phrase(f"pause_{granted}")
    if n.kind is NoticeKind.CLOSED:
        note = phrase("note", note=n.result)  # a closure's note travels as its result
    else:
        note = phrase("urge_note" if n.kind is NoticeKind.URGED else "note", note=n.note)
    ask = "ask_department" if audience is RecipientKind.DEPARTMENT else "ask_others"
    said = {
        "urgent": phrase("urgent") if n.urgent else "",
        "case_no": n.case_no,
        "category": _category(n, names),
        "area": area,
        "where": phrase("where_place", area=area, place=n.place)
        if n.place
        else phrase("where", area=area),
        "link": link,
        "department": n.department_name or "",
        "role": phrase("role", role=term("role", n.role)),
        "issue": phrase("issue", description=n.description),
        "clock": term("clock", n.clock),
        "deadline": deadline_text(n.due_at)[LOCALES.index(locale)],
        "ask": phrase(ask),
        "level": term("level", n.level),
        "result": phrase("result", result=n.result),
        "note": note,
        "nth": phrase("nth", count=n.count or None),
        "days": "" if n.days is None else str(n.days),
        "reason": phrase("reason", reason=n.reason),
        "comment": phrase("comment", comment=n.comment),
        "decision": phrase("approved" if n.approved else "refused"),
        "outcome": outcome,
        "pause": term("pause", n.pause),
    }
    return {name: said[name] for name in FIELDS[n.kind]}


def facts(notice: CaseNotice, link: str, names: Names = NO_NAMES) -> dict[str, str]:
    """The facts behind a message, flat and as text: an SMS template's parameters. What a
    person reads is named (``category``: the 小类's name, ``area``: street › community ›
    grid, ``place``: the address, else the area), the codes stay beside them."""
    n = notice
    due_zh, _ = deadline_text(n.due_at)
    area = names.place_or_path(n.area_path)
    return {
        "case_no": n.case_no,
        "category": names.category(n.category),
        "category_code": n.category,
        "area": area,
        "area_path": n.area_path,
        "place": n.place or area,
        "priority": n.priority,
        "link": link,
        "deadline": due_zh if n.due_at else "",
        "department": n.department_name or "",
    }


def webhook_body(
    notice: CaseNotice,
    message: Message,
    *,
    event_id: str,
    recipient_id: str,
    occurred_at: datetime,
    names: Names = NO_NAMES,
) -> dict:
    """The JSON a webhook receives, in the Standard Webhooks shape {type, timestamp, data}.
    Codes as the events carry them; their names beside them (null when not known)."""
    n = notice
    return {
        "type": n.kind.value,
        "timestamp": occurred_at.isoformat(),
        "data": {
            "event_id": event_id,
            "recipient_id": recipient_id,
            "case_id": n.case_id,
            "case_no": n.case_no,
            "category": n.category,
            "category_name": names.categories.get(n.category),
            "area_path": n.area_path,
            "area_name": names.place(n.area_path),
            "priority": n.priority,
            "department_id": n.department_id,
            "department_name": n.department_name,
            "assignment_id": n.assignment_id,
            "role": n.role,
            "clock": n.clock,
            "due_at": n.due_at.isoformat() if n.due_at else None,
            **_details(n),
            "title": {"zh": message.title_zh, "en": message.title_en},
            "text": {"zh": message.body_zh, "en": message.body_en},
            "link": message.link,
            "facts": facts(n, message.link, names),
        },
    }


def _details(n: CaseNotice) -> dict[str, Any]:
    """What urgings, requests and decisions add (absent from the other events' bodies)."""
    extra = {
        "note": n.note,
        "count": n.count,
        "reason": n.reason,
        "days": n.days,
        "approved": n.approved,
        "comment": n.comment,
        "pause_kind": n.pause,
    }
    return {k: v for k, v in extra.items() if v is not None}


def digest(items: Sequence[dict[str, Any]], english: bool) -> tuple[str, str]:
    """One message for several: ``items`` are webhook bodies (as stored with a delivery).
    Returns (title, markdown text), one line per message with its link."""
    lang = "en" if english else "zh"
    n = len(items)
    title = f"[Digest] {n} case notices" if english else f"【汇总】{n}条案件消息"
    lines = []
    for body in items:
        data = body.get("data", {})
        title_of = data.get("title", {})
        line = title_of.get(lang) if isinstance(title_of, dict) else str(title_of)
        link = data.get("link")
        lines.append(
            f"- {line}" + (f" [{'details' if english else '详情'}]({link})" if link else "")
        )
    intro = (
        "Too many messages for this robot in one minute; here they are together:"
        if english
        else "该群机器人一分钟内消息过多，以下消息合并发送："
    )
    return title, "\n".join([intro, *lines])
