"""A case's full history (案件全过程): every event in order with who did it, its current
state, assignments and clocks.

Who may read it: grid workers for cases in their grids; community, street, district and
supervisors for cases in their subtree; department staff for cases their department has an
assignment on (checked by the handler).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from services.tracking import handlers
from services.tracking.domain import STATUS_ZH, AssignmentState, CaseStatus, CaseView
from services.tracking.handlers import pauses as pause_handlers
from services.tracking.handlers.pauses import paused_for
from services.tracking.repository import AssignmentRow
from services.tracking.repository.pauses import PauseRow
from services.tracking.repository.sla import ClockRow
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.contract import Actor, Priority
from shared.dto import fill
from shared.service import Pool

router = APIRouter(tags=["history"])

EVENT_ZH = {
    "case.reported": "网格上报",
    "case.whistled": "社区吹哨",
    "case.unroutable": "待人工派单",
    "case.dispatched": "派单",
    "case.signed_for": "部门报到",
    "case.resolved": "部门办结",
    "case.closed": "核查结案",
    "case.rework_requested": "返工",
    "case.rated": "群众评价",
    "case.reopened": "重新打开",
    "case.merged": "合并重复案件",
    "case.photo_added": "上传照片",
    "case.rejected": "部门退单",
    "case.transferred": "部门转办",
    "case.progressed": "办理进展",
    "case.extension_requested": "申请延期",
    "case.extension_decided": "延期审批",
    "case.pause_requested": "申请挂账/缓办",
    "case.pause_decided": "挂账/缓办审批",
    "case.resumed": "恢复办理",
    "case.deadline_warning": "时限预警",
    "case.overdue": "超时",
    "case.escalated": "逐级上报",
    "case.urged": "督办",
    "case.clock_started": "时限开始",
    "case.clock_stopped": "时限停止",
}


class CaseOut(BaseModel):
    case_id: UUID
    case_no: str
    area_path: str
    category: str
    priority: Priority
    status: CaseStatus
    status_label: str
    updated_at: datetime
    expected_resolution_at: datetime | None = Field(
        default=None,
        description="预计办结时间: when it will likely be resolved (its department's history "
        "for the category, or the deadline; once resolved, the resolution)",
    )
    expected_earliest: datetime | None = None
    expected_latest: datetime | None = None
    expected_basis: str | None = Field(
        default=None, description="history, category, deadline or resolved"
    )
    breach_likely: bool = Field(default=False, description="预计超期: likely to miss the deadline")
    breach_reason: str | None = None
    breach_reason_en: str | None = None

    @classmethod
    def of(cls, case_id: UUID, c: CaseView, forecast: Mapping[str, Any] | None = None) -> CaseOut:
        f = dict(forecast) if forecast is not None else {}
        return fill(
            cls,
            c,
            case_id=case_id,
            status_label=STATUS_ZH[c.status],
            expected_resolution_at=f.get("expected_at"),
            expected_earliest=f.get("earliest"),
            expected_latest=f.get("latest"),
            expected_basis=f.get("basis"),
            breach_likely=bool(f.get("breach_likely")),
            breach_reason=f.get("reason_zh"),
            breach_reason_en=f.get("reason_en"),
        )


class AssignmentOut(BaseModel):
    assignment_id: UUID
    department_id: str
    department_name: str | None
    role: str | None
    state: AssignmentState
    dispatched_at: datetime | None
    signed_for_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, a: AssignmentRow) -> AssignmentOut:
        return fill(cls, a)


class TimelineEventOut(BaseModel):
    event_id: UUID
    type: str
    label: str
    version: int
    occurred_at: datetime
    producer: str
    correlation_id: str | None
    causation_id: UUID | None
    actor: Actor | None = Field(
        description="who did it (subject, role, name); none for events from before attribution"
    )
    payload: dict[str, Any]
    recorded_at: datetime


CLOCK_STATE_ZH = {"running": "计时中", "paused": "暂停计时（挂账/缓办）", "stopped": "已停止"}
PAUSE_KIND_ZH = {"hang": "挂账", "defer": "缓办"}


class ClockOut(BaseModel):
    """A clock of an assignment: its deadline as it stands (moved by approved extensions and
    by the time it stood still during approved pauses)."""

    assignment_id: UUID
    clock: str = Field(description="sign_for (签收), on_site (到场) or resolve (办结)")
    started_at: datetime
    warn_at: datetime | None
    due_at: datetime = Field(
        description="while paused: the deadline as it stood when the "
        "pause began (or as an extension approved during it moved it, "
        "the pause counted until then) — it moves by the time stood "
        "still when the work resumes"
    )
    extension_days: int
    state: str = Field(
        description="running, paused (挂账/缓办: standing still, no alert fires) or stopped"
    )
    state_label: str
    paused_seconds: int = Field(
        description="how long the clock has stood still so far "
        "(approved pauses while it ran, a running one until now)"
    )
    paused_since: datetime | None = Field(description="while paused: since when")
    stopped_at: datetime | None
    stopped_by: str | None

    @classmethod
    def of(cls, c: ClockRow, pauses: list[PauseRow], now: datetime) -> ClockOut:
        open_pause = (
            next(
                (
                    p.started_at
                    for p in pauses
                    if p.assignment_id == c.assignment_id and p.ended_at is None
                ),
                None,
            )
            if c.state == "paused"
            else None
        )
        return fill(
            cls,
            c,
            state_label=CLOCK_STATE_ZH.get(c.state, c.state),
            paused_seconds=int(paused_for(pauses, c, now).total_seconds()),
            paused_since=open_pause,
        )


class PauseOut(BaseModel):
    """An approved pause (挂账/缓办) of an assignment: its clocks stood still from start to end."""

    request_id: UUID
    assignment_id: UUID
    kind: str = Field(description="hang (挂账) or defer (缓办)")
    kind_label: str
    reason: str
    start: datetime = Field(description="approved: the clocks stood still from here")
    end: datetime | None = Field(
        description="resumed (or ended with the assignment); none while it runs"
    )
    ended_by: str | None = Field(
        description="case.resumed, or the event that stopped the "
        "clocks while paused (e.g. case.resolved)"
    )
    running: bool

    @classmethod
    def of(cls, p: PauseRow) -> PauseOut:
        assert p.started_at is not None  # only pauses that started are listed
        kind = p.kind or ""
        return cls(
            request_id=p.request_id,
            assignment_id=p.assignment_id,
            kind=kind,
            kind_label=PAUSE_KIND_ZH.get(kind, kind),
            reason=p.reason or "",
            start=p.started_at,
            end=p.ended_at,
            ended_by=p.ended_by,
            running=p.ended_at is None,
        )


class TimelineOut(BaseModel):
    case: CaseOut
    assignments: list[AssignmentOut]
    clocks: list[ClockOut]
    pauses: list[PauseOut] = Field(description="挂账/缓办 of the case's assignments, oldest first")
    events: list[TimelineEventOut]


@router.get(
    "/cases/{case_id}/timeline",
    response_model=TimelineOut,
    summary="A case's full history, in the order things happened (案件全过程)",
)
async def case_timeline(
    case_id: UUID,
    db: Pool,
    who: Annotated[
        Principal, Depends(allow(Role.GRID_WORKER, *AREA_ROLES, Role.SUPERVISOR, Role.DEPARTMENT))
    ],
) -> TimelineOut:
    history = await handlers.case_history(db, case_id, who)
    pauses = await pause_handlers.case_pauses(db, case_id)  # the caller may read the case
    now = datetime.now(UTC)
    return TimelineOut(
        case=CaseOut.of(case_id, history.case, history.forecast),
        assignments=[AssignmentOut.of(a) for a in history.assignments],
        clocks=[ClockOut.of(c, pauses, now) for c in history.clocks],
        pauses=[PauseOut.of(p) for p in pauses],
        events=[
            TimelineEventOut(**dict(r), label=EVENT_ZH.get(r["type"], r["type"]))
            for r in history.events
        ],
    )
