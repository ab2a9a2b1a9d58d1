"""What every request a supervisor (督办) decides has in common — extension requests (延期)
and pauses (挂账/缓办): one pending at a time per assignment, decided once (批准 or 驳回),
refused only with a reason, approved only while the department still handles the case. The
rules are the same; the words differ, and each kind names itself in them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Self
from uuid import UUID

from services.dispatch.domain.assignment import STATE_ZH, Assignment, AssignmentState
from shared.errors import Conflict, Invalid, NotFound

MAX_TEXT = 2000


@dataclass(frozen=True)
class RequestKind:
    """A kind of request, as its messages and error codes name it."""

    code: str  # "extension", "pause": the English noun and the error codes' prefix
    zh: str  # 延期, 挂账/缓办: any request of the kind, in Chinese

    def not_found(self, request_id: UUID) -> NotFound:
        return NotFound(
            f"{self.zh}申请 {request_id} 不存在",
            f"{self.code} request {request_id} not found",
            code=f"{self.code}_not_found",
        )

    def pending(self) -> Conflict:
        """The assignment already has a pending request of this kind."""
        return Conflict(
            f"该派单已有待审批的{self.zh}申请，请等待督办审批",
            f"the assignment already has a pending {self.code} request",
            code=f"{self.code}_pending",
        )

    def pending_raced(self) -> Conflict:
        """A concurrent request of this kind won (the row lock makes this rare)."""
        return Conflict(
            f"该派单已有待审批的{self.zh}申请",
            "a request is already pending",
            code=f"{self.code}_pending",
        )


class ApprovalRequest:
    """The decision's rules, for a frozen dataclass of one kind of request (its fields are
    its own; ``refuse`` and any ``approve`` build on the checks here)."""

    KIND: ClassVar[RequestKind]
    STATE_ZH: ClassVar[Mapping[Any, str]]
    id: UUID
    assignment_id: UUID
    state: StrEnum

    def refuse(self, comment: str, by: str, now: datetime) -> Self:
        raise NotImplementedError

    @property
    def label(self) -> str:
        """This request's kind in Chinese, as its messages name it."""
        return self.KIND.zh

    def require_pending(self) -> None:
        if self.state != "pending":
            raise Conflict(
                f"该{self.label}申请已{self.STATE_ZH[self.state]}，不能再次审批",
                f"the {self.KIND.code} request is already {self.state}",
                code=f"{self.KIND.code}_decided",
            )

    def refusal(self, comment: str) -> str:
        """驳回: the reason, which a refusal always needs (the department acts on it)."""
        self.require_pending()
        text = optional_comment(comment)
        if text is None:
            raise Invalid(
                f"comment：驳回{self.label}申请须说明理由",
                "comment: a refusal needs a reason",
                code="comment_required",
            )
        return text

    def require_approvable(self, a: Assignment) -> None:
        """批准 needs the assignment still in hand: one resolved or handed on needs nothing."""
        if a.state is not AssignmentState.SIGNED_FOR:
            raise Conflict(
                f"派单已“{STATE_ZH[a.state]}”，无需再批准{self.label}，请驳回",
                f"the assignment is {a.state}: it needs no {self.KIND.code}; refuse the request",
                code="invalid_state",
            )


def optional_text(text: str | None, field: str, code: str) -> str | None:
    """An optional free text (a comment, a note): trimmed, bounded, None when empty."""
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise Invalid(
            f"{field}：不超过{MAX_TEXT}字",
            f"{field}: at most {MAX_TEXT} characters",
            code=code,
        )
    return text or None


def optional_comment(text: str | None) -> str | None:
    """A decision's comment (审批意见)."""
    return optional_text(text, "comment", "invalid_extension")
