"""Pauses (挂账/缓办): the department asks for its clocks to stand still, with a reason; a
supervisor (督办) whose area contains the case approves (批准) or refuses (驳回); the
department — or a supervisor of the area — resumes the work (恢复办理)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from services.dispatch import handlers
from services.dispatch.api.common import (
    AssignedDepartment,
    Limit,
    Offset,
    Reader,
    RefuseIn,
    Supervisor,
)
from services.dispatch.domain import (
    PAUSE_END_ZH,
    PAUSE_KIND_ZH,
    PAUSE_STATE_ZH,
    PauseEnd,
    PauseRequest,
    PauseState,
)
from shared.dto import fill
from shared.service import Pool
from shared.auth import Principal, Role, allow
from shared.contract import PauseKind

router = APIRouter(tags=["pauses"])


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: PauseKind = Field(description="hang (挂账: 暂时无法解决) or defer (缓办: 暂缓办理)")
    reason: str = Field(min_length=1, max_length=2000, description="挂账/缓办理由")


class DecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(None, max_length=2000, description="审批意见")


class ResumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000, description="恢复办理说明")


class PauseOut(BaseModel):
    id: UUID
    assignment_id: UUID
    case_id: UUID
    department_id: str
    kind: PauseKind
    kind_label: str
    reason: str
    state: PauseState
    state_label: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None = Field(
        description="when approved: the clocks stand still from this instant"
    )
    comment: str | None
    ended_by: str | None
    ended_at: datetime | None = Field(description="when the pause ended (the clocks ran again)")
    ended_how: PauseEnd | None = Field(
        description="resumed (恢复办理), or ended with the "
        "assignment: resolved (办结) or transferred (转办)"
    )
    ended_how_label: str | None
    end_note: str | None

    @classmethod
    def of(cls, p: PauseRequest) -> PauseOut:
        return fill(
            cls,
            p,
            kind_label=PAUSE_KIND_ZH[p.kind],
            state_label=PAUSE_STATE_ZH[p.state],
            ended_how_label=PAUSE_END_ZH[p.ended_how] if p.ended_how else None,
        )


@router.post(
    "/assignments/{assignment_id}/pauses",
    status_code=201,
    response_model=PauseOut,
    summary="Ask for the clocks to stand still (挂账/缓办申请)",
)
async def request_pause(
    assignment_id: UUID, body: PauseIn, db: Pool, who: AssignedDepartment
) -> PauseOut:
    """Only the assigned department, after 报到 and before 办结; one pending request per
    assignment and none while a pause runs (409 otherwise)."""
    return PauseOut.of(
        await handlers.pauses.request(db, who, assignment_id, body.kind, body.reason)
    )


@router.get(
    "/pause-requests",
    response_model=list[PauseOut],
    summary="Pause requests (挂账/缓办), oldest first",
)
async def list_pauses(
    db: Pool,
    who: Reader,
    state: PauseState | None = None,
    department_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[PauseOut]:
    """Department staff see their own department's; area holders and supervisors those of
    cases inside their subtree (``state=pending``: what waits for a decision;
    ``state=approved``: the pauses running now)."""
    rows = await handlers.pauses.listing(
        db, who, state.value if state else None, department_id, limit, offset
    )
    return [PauseOut.of(p) for p in rows]


@router.get("/pause-requests/{request_id}", response_model=PauseOut, summary="One pause request")
async def get_pause(request_id: UUID, db: Pool, who: Reader) -> PauseOut:
    return PauseOut.of(await handlers.pauses.read(db, who, request_id))


@router.post(
    "/pause-requests/{request_id}/approve",
    response_model=PauseOut,
    summary="Approve a pause (批准挂账/缓办): the clocks stand still from now",
)
async def approve(request_id: UUID, body: DecideIn, db: Pool, who: Supervisor) -> PauseOut:
    """A supervisor whose area contains the case, while the department handles it."""
    return PauseOut.of(
        await handlers.pauses.decide(db, who, request_id, approve=True, comment=body.comment)
    )


@router.post(
    "/pause-requests/{request_id}/refuse",
    response_model=PauseOut,
    summary="Refuse a pause request, with a reason (驳回挂账/缓办)",
)
async def refuse(request_id: UUID, body: RefuseIn, db: Pool, who: Supervisor) -> PauseOut:
    return PauseOut.of(
        await handlers.pauses.decide(db, who, request_id, approve=False, comment=body.comment)
    )


@router.post(
    "/assignments/{assignment_id}/resume",
    response_model=PauseOut,
    summary="Resume the work after a pause (恢复办理): the clocks run again",
)
async def resume(
    assignment_id: UUID,
    db: Pool,
    who: Annotated[Principal, Depends(allow(Role.DEPARTMENT, Role.SUPERVISOR))],
    body: ResumeIn | None = None,
) -> PauseOut:
    """The assigned department, or a supervisor whose area contains the case, while an
    approved pause runs (409 otherwise). Returns the pause, ended."""
    return PauseOut.of(
        await handlers.pauses.resume(db, who, assignment_id, body.note if body else None)
    )
