"""The assignment: one department's part in one case, and its state machine
(派单 → 报到 → 办结; 退单, 转办 end it without a result)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from shared.contract import AssignmentRole, Clock, DispatchBasis, PauseKind
from shared.errors import Conflict, Invalid


MAX_RESULT_PHOTOS = 9  # as many as intake keeps per kind


ROLE_ZH = {AssignmentRole.LEAD: "主办", AssignmentRole.CO: "协办"}


class AssignmentState(StrEnum):
    DISPATCHED = "dispatched"  # 已派单，待报到
    SIGNED_FOR = "signed_for"  # 已报到，办理中
    RESOLVED = "resolved"  # 已办结
    REJECTED = "rejected"  # 已退单 (terminal: the case went on to the next candidate)
    TRANSFERRED = "transferred"  # 已转办 (terminal: a new assignment at the target)


STATE_ZH = {
    AssignmentState.DISPATCHED: "已派单待报到",
    AssignmentState.SIGNED_FOR: "已报到办理中",
    AssignmentState.RESOLVED: "已办结",
    AssignmentState.REJECTED: "已退单",
    AssignmentState.TRANSFERRED: "已转办",
}


# --- the assignment (派单 → 报到 → 办结) ------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    id: UUID
    case_id: UUID
    case_no: str
    department_id: str
    department_name: str
    role: AssignmentRole
    state: AssignmentState
    rule_id: int | None
    reason: str
    area_path: str
    category: str
    priority: str
    description: str
    note: str | None
    result: str | None
    dispatched_at: datetime
    signed_for_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    # Why the assignment ended without a result (退单 or 转办), when, and (转办) to whom.
    exit_reason: str | None = None
    exited_at: datetime | None = None
    transferred_to: str | None = None
    # What chose the department and the after-photos of the result.
    basis: DispatchBasis = DispatchBasis.RULE
    photo_ids: tuple[UUID, ...] = ()
    # An approved pause (挂账/缓办) running now: its kind and since when (read, never written
    # through the assignment: the pause request holds it).
    pause_kind: PauseKind | None = None
    paused_since: datetime | None = None
    # The earliest deadline running now (tracking owns the clocks and announces them) and its
    # clock (sign_for, on_site, resolve); the urgings (督办) heard. Read, never written here.
    deadline: datetime | None = None
    deadline_clock: Clock | None = None
    urge_count: int = 0
    last_urged_at: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    def _check_state(self, allowed: AssignmentState, action_zh: str, action_en: str) -> None:
        if self.state is not allowed:
            raise Conflict(
                f"派单当前状态为“{STATE_ZH[self.state]}”，不能{action_zh}",
                f"an assignment in state '{self.state}' cannot be {action_en}",
                code="invalid_state",
            )

    def require_signed_for(self, action_zh: str, doing_en: str, done_en: str) -> None:
        """Only while the department handles the case: after 报到, before it ended."""
        if self.state is AssignmentState.DISPATCHED:
            raise Conflict(
                f"部门尚未报到，须先报到再{action_zh}",
                f"the department must sign for the assignment before {doing_en}",
                code="invalid_state",
            )
        self._check_state(AssignmentState.SIGNED_FOR, action_zh, done_en)

    # Who may act (only the assigned department) is decided by the authorisation layer
    # before these are called; the state machine decides only what may happen next.

    def sign_for(self, now: datetime) -> Assignment:
        """报到: the department takes the case on; only from ``dispatched``."""
        self._check_state(AssignmentState.DISPATCHED, "报到", "signed for")
        return replace(self, state=AssignmentState.SIGNED_FOR, signed_for_at=now, updated_at=now)

    def resolve(self, result: str, now: datetime, photo_ids: tuple[UUID, ...] = ()) -> Assignment:
        """办结: the department reports the result (and may cite its after-photos, 整改后);
        only after it signed for the case."""
        self.require_signed_for("办结", "resolving it", "resolved")
        result = result.strip()
        if not result:
            raise Invalid(
                "办理结果不能为空", "the result must not be empty", code="result_required"
            )
        if len(set(photo_ids)) > MAX_RESULT_PHOTOS:
            raise Invalid(
                f"photo_ids：最多引用{MAX_RESULT_PHOTOS}张整改后照片",
                f"photo_ids: at most {MAX_RESULT_PHOTOS} after-photos",
                code="too_many_photos",
            )
        return replace(
            self,
            state=AssignmentState.RESOLVED,
            result=result,
            resolved_at=now,
            updated_at=now,
            photo_ids=tuple(dict.fromkeys(photo_ids)),
        )

    def reject(self, reason: str, now: datetime) -> Assignment:
        """退单: the department pushes back a misrouted assignment, with its reason; only
        before it signed for it (after 报到 the way out is 转办)."""
        if self.state is AssignmentState.SIGNED_FOR:
            raise Conflict(
                "部门已报到，不能再退单；如不属于本部门职责，请转办",
                "an assignment already signed for cannot be rejected; transfer it instead",
                code="invalid_state",
            )
        self._check_state(AssignmentState.DISPATCHED, "退单", "rejected")
        reason = _required(reason, "退单理由", "reason")
        return replace(
            self, state=AssignmentState.REJECTED, exit_reason=reason, exited_at=now, updated_at=now
        )

    def transfer(self, to_department_id: str, reason: str, now: datetime) -> Assignment:
        """转办: the department hands its assignment on to another department, with a reason;
        while it is dispatched or signed for."""
        if self.state not in (AssignmentState.DISPATCHED, AssignmentState.SIGNED_FOR):
            self._check_state(AssignmentState.DISPATCHED, "转办", "transferred")
        if to_department_id == self.department_id:
            raise Invalid(
                "不能转办给本部门",
                "an assignment cannot be transferred to its own department",
                code="transfer_to_self",
            )
        reason = _required(reason, "转办理由", "reason")
        return replace(
            self,
            state=AssignmentState.TRANSFERRED,
            exit_reason=reason,
            exited_at=now,
            transferred_to=to_department_id,
            updated_at=now,
        )

    def progress(self, note: str, now: datetime) -> tuple[Assignment, str]:
        """A progress note (办理进展): only while the department handles the case."""
        self.require_signed_for("填写办理进展", "reporting progress", "given a progress note")
        note = _required(note, "办理进展", "note")
        return replace(self, updated_at=now), note


def _required(text: str, what_zh: str, field: str) -> str:
    text = text.strip()
    if not text:
        raise Invalid(
            f"{what_zh}不能为空", f"the {field} must not be empty", code=f"{field}_required"
        )
    return text
