"""Pause requests (挂账/缓办): a department handling a case asks for its clocks to stand
still, with a reason — 挂账 (hang: it cannot be solved now, kept on the books) or 缓办 (defer:
handling put off). A supervisor (督办) approves or refuses, with a comment; an approved pause
runs until the department (or a supervisor) resumes the work (恢复办理), or ends with the
assignment (办结, 转办). Tracking stops the clocks while it runs and moves the deadlines by the
time they stood still."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from services.dispatch.domain.approvals import (
    MAX_TEXT,
    ApprovalRequest,
    RequestKind,
    optional_comment,
    optional_text,
)
from services.dispatch.domain.assignment import Assignment
from shared.errors import Conflict, Invalid
from shared.contract import PauseKind

PAUSE = RequestKind("pause", "挂账/缓办")
PAUSE_KIND_ZH = {PauseKind.HANG: "挂账", PauseKind.DEFER: "缓办"}


class PauseState(StrEnum):
    PENDING = "pending"  # 待审批
    APPROVED = "approved"  # 已批准，暂停中 (the clocks stand still)
    REFUSED = "refused"  # 已驳回
    ENDED = "ended"  # 已结束 (resumed, or ended with the assignment)


PAUSE_STATE_ZH = {
    PauseState.PENDING: "待审批",
    PauseState.APPROVED: "已批准，暂停中",
    PauseState.REFUSED: "已驳回",
    PauseState.ENDED: "已结束",
}


class PauseEnd(StrEnum):
    """How a running pause ended."""

    RESUMED = "resumed"  # 恢复办理
    RESOLVED = "resolved"  # 随办结结束
    TRANSFERRED = "transferred"  # 随转办结束


PAUSE_END_ZH = {
    PauseEnd.RESUMED: "恢复办理",
    PauseEnd.RESOLVED: "随办结结束",
    PauseEnd.TRANSFERRED: "随转办结束",
}


@dataclass(frozen=True)
class PauseRequest(ApprovalRequest):
    KIND: ClassVar[RequestKind] = PAUSE
    STATE_ZH: ClassVar[Mapping[Any, str]] = PAUSE_STATE_ZH

    id: UUID
    assignment_id: UUID
    case_id: UUID
    department_id: str
    kind: PauseKind
    reason: str
    state: PauseState
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    ended_by: str | None = None
    ended_at: datetime | None = None
    ended_how: PauseEnd | None = None
    end_note: str | None = None

    @property
    def label(self) -> str:
        return PAUSE_KIND_ZH[self.kind]

    def approve(self, comment: str | None, by: str, now: datetime) -> PauseRequest:
        """批准: the clocks stand still from now."""
        self.require_pending()
        return replace(
            self,
            state=PauseState.APPROVED,
            decided_by=by,
            decided_at=now,
            comment=optional_comment(comment),
        )

    def refuse(self, comment: str, by: str, now: datetime) -> PauseRequest:
        """驳回: always with a comment the department can act on."""
        return replace(
            self,
            state=PauseState.REFUSED,
            decided_by=by,
            decided_at=now,
            comment=self.refusal(comment),
        )

    def resume(self, note: str | None, by: str, now: datetime) -> PauseRequest:
        """恢复办理: only a running pause; the clocks run again from now."""
        if self.state is not PauseState.APPROVED:
            raise not_paused()
        return self.end(PauseEnd.RESUMED, by, now, note=optional_note(note))

    def end(
        self, how: PauseEnd, by: str, now: datetime, *, note: str | None = None
    ) -> PauseRequest:
        """A running pause ends: resumed, or with its assignment (办结, 转办)."""
        assert self.state is PauseState.APPROVED
        return replace(
            self, state=PauseState.ENDED, ended_by=by, ended_at=now, ended_how=how, end_note=note
        )


def not_paused() -> Conflict:
    return Conflict(
        "该派单当前没有已批准的挂账/缓办，无需恢复办理",
        "the assignment is not paused: there is nothing to resume",
        code="not_paused",
    )


def optional_note(text: str | None) -> str | None:
    """The note on resuming (恢复办理说明)."""
    return optional_text(text, "note", "invalid_pause")


def request_pause(
    a: Assignment,
    kind: PauseKind | str,
    reason: str,
    *,
    pending: bool,
    request_id: UUID,
    by: str,
    now: datetime,
) -> PauseRequest:
    """挂账/缓办申请: only while the department handles the case (after 报到, before 办结); one
    pending request per assignment, and none while a pause runs."""
    a.require_signed_for("申请挂账/缓办", "asking for a pause", "paused")
    try:
        kind = PauseKind(kind)
    except ValueError:
        raise Invalid(
            "kind：须为 hang（挂账）或 defer（缓办）",
            "kind: must be hang or defer",
            code="invalid_pause",
        ) from None
    text = reason.strip()
    if not text:
        raise Invalid(
            f"reason：{PAUSE_KIND_ZH[kind]}理由不能为空",
            "reason: must not be empty",
            code="reason_required",
        )
    if len(text) > MAX_TEXT:
        raise Invalid(
            f"reason：不超过{MAX_TEXT}字",
            f"reason: at most {MAX_TEXT} characters",
            code="invalid_pause",
        )
    if a.paused:
        kind_zh = PAUSE_KIND_ZH[a.pause_kind] if a.pause_kind else "暂停"
        raise Conflict(
            f"该派单已在{kind_zh}中，请先恢复办理",
            "the assignment is already paused; resume it first",
            code="already_paused",
        )
    if pending:
        raise PAUSE.pending()
    return PauseRequest(
        request_id, a.id, a.case_id, a.department_id, kind, text, PauseState.PENDING, by, now
    )
