"""What the message says: one template per event type, Simplified Chinese and English.

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

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.notify.domain.core import CaseNotice, Message, NoticeKind, RecipientKind
from services.notify.domain.names import NO_NAMES, Names
from shared.clock import BEIJING

_ROLE = {"lead": ("主办", "lead"), "co": ("协办", "co-handler")}
_CLOCK = {"sign_for": ("签收报到", "sign-for"), "resolve": ("办结", "resolution")}
_LEVEL = {
    "community": ("社区", "community"),
    "street": ("街道", "street"),
    "district": ("区", "district"),
}
_PAUSE = {"hang": ("挂账", "hang (挂账)"), "defer": ("缓办", "deferral (缓办)")}


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


def _term(
    table: dict[str, tuple[str, str]], key: str | None, zh: str = "", en: str = ""
) -> tuple[str, str]:
    """A code's words in both languages (``_ROLE``, ``_CLOCK``, ``_LEVEL``); an unknown code
    stands for itself, a missing one for ``zh`` / ``en``."""
    return table.get(key or "", (key or zh, key or en))


def _sentence(value: str | None, zh: str, en: str) -> tuple[str, str]:
    """An optional labelled sentence (``问题：…。`` / `` Issue: ….``), empty without a value."""
    return (f"{zh}：{value}。", f" {en}: {value}.") if value else ("", "")


def _where(n: CaseNotice, names: Names) -> tuple[str, str]:
    area = names.place_or_path(n.area_path)
    if n.place:
        return f"位置：{area}（{n.place}）。", f"Area: {area} ({n.place})."
    return f"位置：{area}。", f"Area: {area}."


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
) -> Message:
    """The message in Simplified Chinese and English for one kind of recipient
    (``department_id``: a department desk's own department, see ``link_for``), naming the
    place and the category with ``names`` (codes where a name is unknown)."""
    n = notice
    link = link_for(n, audience, link_base, department_id)
    urgent = ("（紧急）", " (urgent)") if n.urgent else ("", "")
    render_kind = {
        NoticeKind.DISPATCHED: _dispatched,
        NoticeKind.OVERDUE: _overdue,
        NoticeKind.WHISTLED: _escalated,
        NoticeKind.RESOLVED: _resolved,
        NoticeKind.CLOSED: _closed,
        NoticeKind.WARNING: _warning,
        NoticeKind.ESCALATED: _ladder,
        NoticeKind.URGED: _urged,
        NoticeKind.EXTENSION_REQUESTED: _extension_requested,
        NoticeKind.EXTENSION_DECIDED: _extension_decided,
        NoticeKind.PAUSE_REQUESTED: _pause_requested,
        NoticeKind.PAUSE_DECIDED: _pause_decided,
        NoticeKind.RESUMED: _resumed,
    }[n.kind]
    return render_kind(n, audience, link, urgent, _where(n, names), _category(n, names))


Parts = tuple[str, str]


def _dispatched(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    role_zh, role_en = _term(_ROLE, n.role)
    role_zh = f"（{role_zh}）" if role_zh else ""
    role_en = f" as {role_en}" if role_en else ""
    what_zh, what_en = _sentence(n.description, "问题", "Issue")
    return Message(
        title_zh=f"【派单】{urgent[0]}案件{n.case_no}已派至{n.department_name}",
        body_zh=f"【派单】{urgent[0]}案件{n.case_no}（{category}）已派至{n.department_name}"
        f"{role_zh}，请及时签收报到。{where[0]}{what_zh}详情：{link}",
        title_en=f"[Dispatched]{urgent[1]} Case {n.case_no} assigned to {n.department_name}",
        body_en=f"[Dispatched]{urgent[1]} Case {n.case_no} ({category}) has been assigned to "
        f"{n.department_name}{role_en}; please sign for it promptly. {where[1]}{what_en} "
        f"Details: {link}",
        link=link,
    )


def _overdue(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    clock_zh, clock_en = _term(_CLOCK, n.clock, "办理", "handling")
    due_zh, due_en = deadline_text(n.due_at)
    if audience is RecipientKind.DEPARTMENT:
        ask_zh, ask_en = "请立即办理并反馈。", "Please act on it now and report back."
    else:
        ask_zh, ask_en = "请督办。", "Please follow up (督办)."
    return Message(
        title_zh=f"【超时】{urgent[0]}案件{n.case_no}{clock_zh}已超时",
        body_zh=f"【超时】{urgent[0]}案件{n.case_no}（{category}）{n.department_name}"
        f"{clock_zh}已超时（时限{due_zh}），{ask_zh}{where[0]}详情：{link}",
        title_en=f"[Overdue]{urgent[1]} Case {n.case_no}: {clock_en} overdue",
        body_en=f"[Overdue]{urgent[1]} Case {n.case_no} ({category}): {n.department_name} "
        f"missed the {clock_en} deadline ({due_en}). {ask_en} {where[1]} Details: {link}",
        link=link,
    )


def _warning(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    clock_zh, clock_en = _term(_CLOCK, n.clock, "办理", "handling")
    due_zh, due_en = deadline_text(n.due_at)
    return Message(
        title_zh=f"【预警】{urgent[0]}案件{n.case_no}{clock_zh}即将超时",
        body_zh=f"【预警】{urgent[0]}案件{n.case_no}（{category}）{n.department_name}"
        f"{clock_zh}即将超时（时限{due_zh}），请抓紧办理。{where[0]}详情：{link}",
        title_en=f"[Warning]{urgent[1]} Case {n.case_no}: {clock_en} deadline near",
        body_en=f"[Warning]{urgent[1]} Case {n.case_no} ({category}): the {clock_en} deadline "
        f"of {n.department_name} is near ({due_en}). Please hurry. {where[1]} Details: {link}",
        link=link,
    )


def _ladder(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    clock_zh, clock_en = _term(_CLOCK, n.clock, "办理", "handling")
    level_zh, level_en = _term(_LEVEL, n.level)
    due_zh, due_en = deadline_text(n.due_at)
    return Message(
        title_zh=f"【升级】{urgent[0]}案件{n.case_no}{clock_zh}超时，已上报{level_zh}",
        body_zh=f"【升级】{urgent[0]}案件{n.case_no}（{category}）{n.department_name}"
        f"{clock_zh}超时（时限{due_zh}），已逐级上报至{level_zh}，请督办。{where[0]}详情：{link}",
        title_en=f"[Escalated]{urgent[1]} Case {n.case_no}: {clock_en} overdue, up to {level_en}",
        body_en=f"[Escalated]{urgent[1]} Case {n.case_no} ({category}): {n.department_name} "
        f"missed the {clock_en} deadline ({due_en}); escalated to the {level_en} level. Please "
        f"follow up. {where[1]} Details: {link}",
        link=link,
    )


def _escalated(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    level_zh, level_en = _term(_LEVEL, n.level)
    what_zh, what_en = _sentence(n.description, "问题", "Issue")
    return Message(
        title_zh=f"【升级】{urgent[0]}案件{n.case_no}已由{level_zh}级吹哨",
        body_zh=f"【升级】{urgent[0]}案件{n.case_no}（{category}）已升级至{level_zh}级吹哨，"
        f"请关注督办。{where[0]}{what_zh}详情：{link}",
        title_en=f"[Escalated]{urgent[1]} Case {n.case_no} whistled at {level_en} level",
        body_en=f"[Escalated]{urgent[1]} Case {n.case_no} ({category}) was escalated to a "
        f"{level_en}-level whistle; please follow up. {where[1]}{what_en} Details: {link}",
        link=link,
    )


def _resolved(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    result_zh, result_en = _sentence(n.result, "处置结果", "Result")
    return Message(
        title_zh=f"【办结】案件{n.case_no}已由{n.department_name}办结",
        body_zh=f"【办结】案件{n.case_no}（{category}）已由{n.department_name}办结，请核查。"
        f"{where[0]}{result_zh}详情：{link}",
        title_en=f"[Resolved] Case {n.case_no} resolved by {n.department_name}",
        body_en=f"[Resolved] Case {n.case_no} ({category}) was resolved by "
        f"{n.department_name}; please verify it. {where[1]}{result_en} Details: {link}",
        link=link,
    )


def _closed(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    note_zh, note_en = _sentence(n.result, "说明", "Note")
    return Message(
        title_zh=f"【结案】案件{n.case_no}已结案",
        body_zh=f"【结案】案件{n.case_no}（{category}）已结案。{where[0]}{note_zh}详情：{link}",
        title_en=f"[Closed] Case {n.case_no} closed",
        body_en=f"[Closed] Case {n.case_no} ({category}) is closed. {where[1]}{note_en} "
        f"Details: {link}",
        link=link,
    )


def _urged(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    nth_zh = f"（第{n.count}次）" if n.count else ""
    nth_en = f" (#{n.count})" if n.count else ""
    note_zh, note_en = _sentence(n.note, "督办意见", "Note")
    return Message(
        title_zh=f"【督办】{urgent[0]}案件{n.case_no}被督办{nth_zh}",
        body_zh=f"【督办】{urgent[0]}案件{n.case_no}（{category}）{n.department_name}被督办"
        f"{nth_zh}，请立即办理并反馈。{note_zh}{where[0]}详情：{link}",
        title_en=f"[Urged]{urgent[1]} Case {n.case_no} urged{nth_en}",
        body_en=f"[Urged]{urgent[1]} Case {n.case_no} ({category}): {n.department_name} is "
        f"urged to act{nth_en}; please act on it now and report back.{note_en} {where[1]} "
        f"Details: {link}",
        link=link,
    )


def _decision(n: CaseNotice) -> tuple[str, str, str, str]:
    """(批准/驳回, approved/refused, the comment sentence in both languages)."""
    word_zh, word_en = ("已批准", "approved") if n.approved else ("被驳回", "refused")
    comment_zh, comment_en = _sentence(n.comment, "批复意见", "Comment")
    return word_zh, word_en, comment_zh, comment_en


def _extension_requested(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    reason_zh, reason_en = _sentence(n.reason, "理由", "Reason")
    return Message(
        title_zh=f"【延期申请】{urgent[0]}案件{n.case_no}申请延期{n.days}个工作日",
        body_zh=f"【延期申请】{urgent[0]}案件{n.case_no}（{category}）{n.department_name}申请延期"
        f"{n.days}个工作日，请审批（批准或驳回）。{reason_zh}{where[0]}详情：{link}",
        title_en=f"[Extension requested]{urgent[1]} Case {n.case_no}: {n.days} more working "
        "days asked",
        body_en=f"[Extension requested]{urgent[1]} Case {n.case_no} ({category}): "
        f"{n.department_name} asks for {n.days} more working days; please approve or refuse."
        f"{reason_en} {where[1]} Details: {link}",
        link=link,
    )


def _extension_decided(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    word_zh, word_en, comment_zh, comment_en = _decision(n)
    granted_zh = f"，延期{n.days}个工作日，办结时限相应顺延" if n.approved else "，请按原时限办结"
    granted_en = (
        f": {n.days} more working days, the resolution deadline moves accordingly"
        if n.approved
        else "; please resolve it by the original deadline"
    )
    return Message(
        title_zh=f"【延期{word_zh}】{urgent[0]}案件{n.case_no}延期申请{word_zh}",
        body_zh=f"【延期{word_zh}】{urgent[0]}案件{n.case_no}（{category}）{n.department_name}的"
        f"延期申请{word_zh}{granted_zh}。{comment_zh}{where[0]}详情：{link}",
        title_en=f"[Extension {word_en}]{urgent[1]} Case {n.case_no}",
        body_en=f"[Extension {word_en}]{urgent[1]} Case {n.case_no} ({category}): the "
        f"extension {n.department_name} asked for was {word_en}{granted_en}.{comment_en} "
        f"{where[1]} Details: {link}",
        link=link,
    )


def _pause_requested(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    pause_zh, pause_en = _term(_PAUSE, n.pause, "暂停", "pause")
    reason_zh, reason_en = _sentence(n.reason, "理由", "Reason")
    return Message(
        title_zh=f"【{pause_zh}申请】{urgent[0]}案件{n.case_no}申请{pause_zh}",
        body_zh=f"【{pause_zh}申请】{urgent[0]}案件{n.case_no}（{category}）{n.department_name}"
        f"申请{pause_zh}，批准后办结时限暂停计时，请审批（批准或驳回）。{reason_zh}{where[0]}"
        f"详情：{link}",
        title_en=f"[Pause requested]{urgent[1]} Case {n.case_no}: {pause_en} asked",
        body_en=f"[Pause requested]{urgent[1]} Case {n.case_no} ({category}): "
        f"{n.department_name} asks for a {pause_en}, which stops its resolution clock; please "
        f"approve or refuse.{reason_en} {where[1]} Details: {link}",
        link=link,
    )


def _pause_decided(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    pause_zh, pause_en = _term(_PAUSE, n.pause, "暂停", "pause")
    word_zh, word_en, comment_zh, comment_en = _decision(n)
    then_zh = "，时限暂停计时，恢复办理后继续" if n.approved else "，请继续办理"
    then_en = (
        "; its clocks stand still until the work resumes"
        if n.approved
        else "; please carry on with the case"
    )
    return Message(
        title_zh=f"【{pause_zh}{word_zh}】{urgent[0]}案件{n.case_no}{pause_zh}申请{word_zh}",
        body_zh=f"【{pause_zh}{word_zh}】{urgent[0]}案件{n.case_no}（{category}）"
        f"{n.department_name}的{pause_zh}申请{word_zh}{then_zh}。{comment_zh}{where[0]}"
        f"详情：{link}",
        title_en=f"[Pause {word_en}]{urgent[1]} Case {n.case_no}: {pause_en}",
        body_en=f"[Pause {word_en}]{urgent[1]} Case {n.case_no} ({category}): the {pause_en} "
        f"{n.department_name} asked for was {word_en}{then_en}.{comment_en} {where[1]} "
        f"Details: {link}",
        link=link,
    )


def _resumed(
    n: CaseNotice, audience: RecipientKind, link: str, urgent: Parts, where: Parts, category: str
) -> Message:
    note_zh, note_en = _sentence(n.note, "说明", "Note")
    return Message(
        title_zh=f"【恢复办理】{urgent[0]}案件{n.case_no}已恢复办理",
        body_zh=f"【恢复办理】{urgent[0]}案件{n.case_no}（{category}）{n.department_name}已恢复"
        f"办理，时限继续计时。{note_zh}{where[0]}详情：{link}",
        title_en=f"[Resumed]{urgent[1]} Case {n.case_no} resumed",
        body_en=f"[Resumed]{urgent[1]} Case {n.case_no} ({category}): {n.department_name} "
        f"resumed the work; its clocks run again.{note_en} {where[1]} Details: {link}",
        link=link,
    )


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
