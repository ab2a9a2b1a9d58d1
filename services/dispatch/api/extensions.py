"""Extension requests (延期申请): the department asks for more working days; a supervisor
(督办) whose area contains the case approves (批准) or refuses (驳回)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
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
    EXTENSION_STATE_ZH,
    MAX_EXTENSION_DAYS,
    ExtensionRequest,
    ExtensionState,
)
from shared.dto import fill
from shared.service import Pool

router = APIRouter(tags=["extensions"])


class ExtensionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(ge=1, le=MAX_EXTENSION_DAYS, description="延期工作日数")
    reason: str = Field(min_length=1, max_length=2000, description="延期理由")


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int | None = Field(
        None, ge=1, le=MAX_EXTENSION_DAYS, description="批准的工作日数（不超过申请数；缺省为全部）"
    )
    comment: str | None = Field(None, max_length=2000, description="审批意见")


class ExtensionOut(BaseModel):
    id: UUID
    assignment_id: UUID
    case_id: UUID
    department_id: str
    days: int
    reason: str
    state: ExtensionState
    state_label: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    granted_days: int | None
    comment: str | None

    @classmethod
    def of(cls, e: ExtensionRequest) -> ExtensionOut:
        return fill(cls, e, state_label=EXTENSION_STATE_ZH[e.state])


@router.post(
    "/assignments/{assignment_id}/extensions",
    status_code=201,
    response_model=ExtensionOut,
    summary="Ask for more time (延期申请)",
)
async def request_extension(
    assignment_id: UUID, body: ExtensionIn, db: Pool, who: AssignedDepartment
) -> ExtensionOut:
    """Only the assigned department, after 报到 and before 办结; one pending request per
    assignment (409 otherwise)."""
    return ExtensionOut.of(
        await handlers.extensions.request(db, who, assignment_id, body.days, body.reason)
    )


@router.get(
    "/extension-requests",
    response_model=list[ExtensionOut],
    summary="Extension requests, oldest first",
)
async def list_extensions(
    db: Pool,
    who: Reader,
    state: ExtensionState | None = None,
    department_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[ExtensionOut]:
    """Department staff see their own department's; area holders and supervisors those of
    cases inside their subtree (``state=pending``: what waits for a decision)."""
    rows = await handlers.extensions.listing(
        db, who, state.value if state else None, department_id, limit, offset
    )
    return [ExtensionOut.of(e) for e in rows]


@router.get(
    "/extension-requests/{request_id}", response_model=ExtensionOut, summary="One extension request"
)
async def get_extension(
    request_id: UUID,
    db: Pool,
    who: Reader,
) -> ExtensionOut:
    return ExtensionOut.of(await handlers.extensions.read(db, who, request_id))


@router.post(
    "/extension-requests/{request_id}/approve",
    response_model=ExtensionOut,
    summary="Approve an extension request (批准延期)",
)
async def approve(request_id: UUID, body: ApproveIn, db: Pool, who: Supervisor) -> ExtensionOut:
    """A supervisor whose area contains the case; all the days asked for, or fewer."""
    return ExtensionOut.of(
        await handlers.extensions.decide(
            db, who, request_id, approve=True, days=body.days, comment=body.comment
        )
    )


@router.post(
    "/extension-requests/{request_id}/refuse",
    response_model=ExtensionOut,
    summary="Refuse an extension request, with a reason (驳回延期)",
)
async def refuse(request_id: UUID, body: RefuseIn, db: Pool, who: Supervisor) -> ExtensionOut:
    return ExtensionOut.of(
        await handlers.extensions.decide(
            db, who, request_id, approve=False, days=None, comment=body.comment
        )
    )
