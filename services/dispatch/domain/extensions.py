"""Extension requests (延期申请): a department handling a case asks for more working days,
with a reason; a supervisor (督办) approves — possibly fewer days — or refuses, with a comment.
Tracking moves the resolution deadline by the days granted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from services.dispatch.domain.approvals import ApprovalRequest, RequestKind, optional_comment
from services.dispatch.domain.assignment import STATE_ZH, Assignment, AssignmentState
from shared.errors import Conflict, Invalid

MAX_EXTENSION_DAYS = 30  # working days in one request
EXTENSION = RequestKind("extension", "延期")


class ExtensionState(StrEnum):
    PENDING = "pending"  # 待审批
    APPROVED = "approved"  # 已批准
    REFUSED = "refused"  # 已驳回


EXTENSION_STATE_ZH = {
    ExtensionState.PENDING: "待审批",
    ExtensionState.APPROVED: "已批准",
    ExtensionState.REFUSED: "已驳回",
}


@dataclass(frozen=True)
class ExtensionRequest(ApprovalRequest):
    KIND: ClassVar[RequestKind] = EXTENSION
    STATE_ZH: ClassVar[Mapping[Any, str]] = EXTENSION_STATE_ZH

    id: UUID
    assignment_id: UUID
    case_id: UUID
    department_id: str
    days: int
    reason: str
    state: ExtensionState
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    granted_days: int | None = None
    comment: str | None = None

    def approve(
        self, days: int | None, comment: str | None, by: str, now: datetime
    ) -> ExtensionRequest:
        """批准: all the days asked for, or fewer (never more)."""
        self.require_pending()
        granted = self.days if days is None else days
        if not 1 <= granted <= self.days:
            raise Invalid(
                f"days：批准天数须在1到申请的{self.days}个工作日之间",
                f"days: must be between 1 and the {self.days} working days asked for",
                code="invalid_extension",
            )
        return replace(
            self,
            state=ExtensionState.APPROVED,
            decided_by=by,
            decided_at=now,
            granted_days=granted,
            comment=optional_comment(comment),
        )

    def refuse(self, comment: str, by: str, now: datetime) -> ExtensionRequest:
        """驳回: always with a comment the department can act on."""
        return replace(
            self,
            state=ExtensionState.REFUSED,
            decided_by=by,
            decided_at=now,
            granted_days=0,
            comment=self.refusal(comment),
        )


def request_extension(
    a: Assignment,
    days: int,
    reason: str,
    *,
    pending: bool,
    request_id: UUID,
    by: str,
    now: datetime,
) -> ExtensionRequest:
    """延期申请: only while the department handles the case (after 报到, before 办结); one
    pending request per assignment."""
    if a.state is not AssignmentState.SIGNED_FOR:
        raise Conflict(
            f"派单当前状态为“{STATE_ZH[a.state]}”，报到后、办结前才能申请延期",
            f"an assignment in state '{a.state}' cannot ask for an extension"
            " (only after sign-for and before resolution)",
            code="invalid_state",
        )
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise Invalid(
            f"days：延期天数须为1–{MAX_EXTENSION_DAYS}个工作日",
            f"days: must be 1-{MAX_EXTENSION_DAYS} working days",
            code="invalid_extension",
        )
    text = reason.strip()
    if not text:
        raise Invalid(
            "reason：延期理由不能为空", "reason: must not be empty", code="reason_required"
        )
    if pending:
        raise EXTENSION.pending()
    return ExtensionRequest(
        request_id, a.id, a.case_id, a.department_id, days, text, ExtensionState.PENDING, by, now
    )
