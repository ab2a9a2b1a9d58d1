"""Where a case came from (案件来源) and the resident's own report path (群众上报): pure rules.
No I/O, no clock (``now`` is passed in).

A resident's report (Open311 without a staff token) is a case in ``to_verify`` (待核实): the
grid worker of its grid — or its community — checks it on site. Accepted, it becomes a
reported case and the loop starts (CaseReported, source=resident, is published then:
dispatch, tracking and notify only ever see verified cases). Dismissed (不予受理), it is
closed with the reason, which the resident reads as his request's status_notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from shared.contract.values import CaseSource
from shared.errors import Conflict, Invalid
from shared.lifecycle import STATUS_ZH, CaseStatus

SOURCE_ZH = {
    CaseSource.GRID_PATROL: "网格巡查",
    CaseSource.RESIDENT: "群众上报",
    CaseSource.HOTLINE: "12345热线",
    CaseSource.WECHAT_GROUP: "微信群",
    CaseSource.PROACTIVE: "未诉先办",
}

# What a staff report (POST /cases) may say it came from: 未诉先办 cases are opened from a
# hotspot, and a resident's own report comes through Open311.
STAFF_SOURCES = (
    CaseSource.GRID_PATROL,
    CaseSource.RESIDENT,  # a resident told the grid worker, who reports it himself
    CaseSource.HOTLINE,
    CaseSource.WECHAT_GROUP,
)

# The resolution of a dismissed resident report (不予受理): intake's own, beside MERGED.
DISMISSED = "dismissed"


class DismissReason(StrEnum):
    """Why a resident's report is not taken on (不予受理)."""

    DUPLICATE = "duplicate"  # 重复上报: already a case
    NOT_FOUND = "not_found"  # 现场未发现
    NOT_PUBLIC = "not_public"  # 非公共事务 (a private dispute, a matter for the courts…)
    RESOLVED = "resolved"  # 现场已解决
    OTHER = "other"  # 其他 (the note says why)


DISMISS_ZH = {
    DismissReason.DUPLICATE: "重复上报",
    DismissReason.NOT_FOUND: "现场核实未发现所报问题",
    DismissReason.NOT_PUBLIC: "不属于公共事务",
    DismissReason.RESOLVED: "现场已解决",
    DismissReason.OTHER: "其他原因",
}
DISMISS_EN = {
    DismissReason.DUPLICATE: "a duplicate of an existing case",
    DismissReason.NOT_FOUND: "not found on site",
    DismissReason.NOT_PUBLIC: "not a public matter",
    DismissReason.RESOLVED: "already resolved on site",
    DismissReason.OTHER: "other",
}


def check_staff_source(source: CaseSource) -> None:
    if source not in STAFF_SOURCES:
        allowed = ", ".join(STAFF_SOURCES)
        raise Invalid(
            f"上报来源不能为“{SOURCE_ZH[source]}”（可选：{allowed}）",
            f"a report cannot declare source '{source}' (allowed: {allowed})",
            code="invalid_source",
        )


def check_verify(status: CaseStatus) -> None:
    """核实 only a report that still waits for it."""
    if status is not CaseStatus.TO_VERIFY:
        raise Conflict(
            f"案件当前状态为“{STATUS_ZH[status]}”，不是待核实的群众上报",
            f"a case in state '{status}' is not a resident report waiting to be verified",
            code="invalid_state",
        )


def check_dismissal(reason: DismissReason, note: str | None, duplicate_of: object) -> None:
    if reason is DismissReason.DUPLICATE and duplicate_of is None:
        raise Invalid(
            "重复上报须指明原案件 duplicate_of",
            "a duplicate needs duplicate_of: the case it repeats",
            code="duplicate_of_required",
        )
    if reason is DismissReason.OTHER and not (note or "").strip():
        raise Invalid(
            "选择“其他原因”时须填写说明 note",
            "reason 'other' needs a note saying why",
            code="note_required",
        )


def dismissal_notes(reason: str, note: str | None, duplicate_case_no: str | None) -> str:
    """What the resident reads as his request's status_notes (Chinese, then English)."""
    why = DismissReason(reason)
    zh, en = f"不予受理：{DISMISS_ZH[why]}", f"not taken on: {DISMISS_EN[why]}"
    if duplicate_case_no:
        zh, en = f"{zh}（原案件 {duplicate_case_no}）", f"{en} ({duplicate_case_no})"
    if note:
        zh = f"{zh}。{note}"
    return f"{zh} / {en}"


def mask_contact(contact: str | None) -> str | None:
    """A phone number or e-mail as the grid worker may see it: 138****5678, l***@163.com."""
    if not contact or not contact.strip():
        return None
    value = contact.strip()
    if "@" in value:
        name, _, domain = value.partition("@")
        return f"{name[:1]}***@{domain}"
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * len(value)


def rate_limit_wait(
    times: Sequence[datetime], limit: int, window: timedelta, now: datetime
) -> int | None:
    """Seconds to wait before one more report fits (``times``: the sender's reports in the
    window, oldest first), or None if it fits now."""
    recent = sorted(t for t in times if t > now - window)
    if len(recent) < limit:
        return None
    frees_at = recent[len(recent) - limit] + window
    return max(1, int((frees_at - now).total_seconds()) + 1)
