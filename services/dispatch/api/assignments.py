"""The departments' inboxes and their actions (报到, 退单, 转办, 办理进展, 办结), and the queue
of cases waiting for manual dispatch (人工派单)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from services.dispatch import handlers, repository
from services.dispatch.api.common import AssignedDepartment, Limit, Offset, Reader
from services.dispatch.api.extensions import ExtensionOut
from services.dispatch.api.pauses import PauseOut
from services.dispatch.domain import (
    BASIS_ZH,
    ROLE_ZH,
    STATE_ZH,
    Assignment,
    PAUSE_KIND_ZH,
    AssignmentState,
)
from shared.dto import fill
from shared.service import Pool
from shared.auth import Principal, Role, allow
from shared.contract import AssignmentRole, Clock, DispatchBasis, PauseKind, Priority

router = APIRouter(tags=["assignments"])


class AssignmentOut(BaseModel):
    id: UUID
    case_id: UUID
    case_no: str
    department_id: str
    department_name: str
    role: AssignmentRole
    role_label: str
    state: AssignmentState
    state_label: str
    rule_id: int | None
    reason: str
    area_path: str
    category: str
    priority: Priority
    description: str
    note: str | None
    result: str | None
    dispatched_at: datetime
    signed_for_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    exit_reason: str | None = Field(description="退单/转办理由")
    exited_at: datetime | None
    transferred_to: str | None = Field(description="转办给哪个部门")
    basis: DispatchBasis = Field(description="what chose the department (see basis_label)")
    basis_label: str
    photo_ids: list[UUID] = Field(description="整改后照片 cited with the result")
    paused: bool = Field(description="an approved pause (挂账/缓办) runs: the clocks stand still")
    pause_kind: PauseKind | None = Field(description="hang (挂账) or defer (缓办), while paused")
    pause_label: str | None = Field(description="挂账中 / 缓办中, while paused")
    paused_since: datetime | None
    deadline: datetime | None = Field(
        description="the earliest deadline running now (tracking's clocks, moved by 延期 and "
        "挂账/缓办); none when no clock runs (paused, done, not yet announced)"
    )
    deadline_clock: Clock | None = Field(
        description="which deadline: sign_for (报到), on_site (到场) or resolve (办结)"
    )
    deadline_label: str | None = Field(description="报到时限 / 到场时限 / 办结时限")
    overdue: bool = Field(description="the deadline has passed (超时)")
    urge_count: int = Field(description="urgings (督办) on this assignment")
    last_urged_at: datetime | None

    @classmethod
    def of(cls, a: Assignment) -> AssignmentOut:
        return fill(
            cls,
            a,
            role_label=ROLE_ZH[a.role],
            state_label=STATE_ZH[a.state],
            basis_label=BASIS_ZH[a.basis],
            pause_label=f"{PAUSE_KIND_ZH[a.pause_kind]}中" if a.pause_kind else None,
            deadline_label=CLOCK_ZH[a.deadline_clock] if a.deadline_clock else None,
            overdue=a.deadline is not None and a.deadline <= datetime.now(UTC),
        )


CLOCK_ZH = {Clock.SIGN_FOR: "报到时限", Clock.ON_SITE: "到场时限", Clock.RESOLVE: "办结时限"}


class NoteOut(BaseModel):
    id: int
    note: str
    actor_subject: str
    actor_name: str | None
    created_at: datetime


class AssignmentDetailOut(AssignmentOut):
    notes: list[NoteOut] = Field(description="办理进展, newest last")
    extensions: list[ExtensionOut] = Field(description="延期申请, oldest first")
    pauses: list[PauseOut] = Field(description="挂账/缓办申请, oldest first")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, description="退单理由")


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_department_id: str = Field(min_length=1, max_length=64, description="转给哪个部门")
    reason: str = Field(min_length=1, max_length=2000, description="转办理由")


class ProgressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, description="办理进展")


class SignForIn(BaseModel):
    """报到 needs nothing but the token: the acting department is the token's."""

    model_config = ConfigDict(extra="forbid")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: str = Field(min_length=1, max_length=2000, description="办理结果")
    photo_ids: list[UUID] = Field(
        default_factory=list,
        max_length=9,
        description="整改后照片: ids of after-photos this department uploaded to the case in "
        "intake (POST /cases/{case_id}/photos, kind=after)",
    )


@router.get(
    "/departments/{department_id}/assignments",
    response_model=list[AssignmentOut],
    summary="A department's assignments (its inbox)",
)
async def department_assignments(
    department_id: str,
    db: Pool,
    who: Reader,
    state: AssignmentState | None = None,
    priority: Priority | None = None,
    sort: Literal["dispatched_at", "deadline", "priority"] = "dispatched_at",
    limit: Limit = 50,
    offset: Offset = 0,
    case_no: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=40,
            description="案件编号 (case number), any letter case: only that case's assignments",
        ),
    ] = None,
) -> list[AssignmentOut]:
    """Department staff read their own department's inbox; community, street, district and
    supervisors read the department's assignments inside their area subtree.

    ``sort``: ``dispatched_at`` (default) newest first; ``deadline`` the earliest deadline
    running now first (tracking's clocks, as it announces them), then those without one by
    dispatch time; ``priority`` urgent → normal → minor, then oldest first."""
    _, rows = await handlers.department_assignments(
        db, who, department_id, state, limit, offset, priority, sort, case_no
    )
    return [AssignmentOut.of(a) for a in rows]


@router.get(
    "/assignments/{assignment_id}",
    response_model=AssignmentDetailOut,
    summary="Read an assignment, with its progress notes",
)
async def get_assignment(
    assignment_id: UUID,
    db: Pool,
    who: Reader,
) -> AssignmentDetailOut:
    """The assigned department, or an area holder whose subtree contains the case."""
    a, notes, extensions, pauses = await handlers.get_assignment(db, who, assignment_id)
    return AssignmentDetailOut(
        **AssignmentOut.of(a).model_dump(),
        notes=[NoteOut(**vars(n)) for n in notes],
        extensions=[ExtensionOut.of(e) for e in extensions],
        pauses=[PauseOut.of(p) for p in pauses],
    )


@router.post(
    "/assignments/{assignment_id}/sign-for",
    response_model=AssignmentOut,
    summary="Sign for the assignment (报到)",
)
async def sign_for(
    assignment_id: UUID,
    db: Pool,
    who: AssignedDepartment,
    body: SignForIn | None = None,
) -> AssignmentOut:
    """Only the assigned department; no body (or ``{}``) is needed."""
    return AssignmentOut.of(await handlers.sign_for(db, who, assignment_id))


@router.post(
    "/assignments/{assignment_id}/resolve",
    response_model=AssignmentOut,
    summary="Report the case handled, with the result (办结)",
)
async def resolve(
    assignment_id: UUID,
    body: ResolveIn,
    db: Pool,
    who: AssignedDepartment,
) -> AssignmentOut:
    """Only the assigned department, after it signed for the assignment. ``photo_ids`` must
    be after-photos the department uploaded to the case (422 naming the photo otherwise)."""
    return AssignmentOut.of(
        await handlers.resolve(db, who, assignment_id, body.result, tuple(body.photo_ids))
    )


@router.post(
    "/assignments/{assignment_id}/reject",
    response_model=AssignmentOut,
    summary="Push back a misrouted assignment, with a reason (退单)",
)
async def reject(
    assignment_id: UUID,
    body: RejectIn,
    db: Pool,
    who: AssignedDepartment,
) -> AssignmentOut:
    """Only the assigned department, before it signed for the assignment (afterwards: 转办).
    The case goes on to the next candidate department, or — none left — to the community for
    manual dispatch (社区协调)."""
    return AssignmentOut.of(await handlers.reject(db, who, assignment_id, body.reason))


@router.post(
    "/assignments/{assignment_id}/transfer",
    response_model=AssignmentOut,
    summary="Hand the assignment on to another department (转办)",
)
async def transfer(
    assignment_id: UUID,
    body: TransferIn,
    db: Pool,
    who: AssignedDepartment,
) -> AssignmentOut:
    """Only the assigned department, while dispatched or signed for; the target department
    gets a new assignment of the same role."""
    return AssignmentOut.of(
        await handlers.transfer(db, who, assignment_id, body.to_department_id, body.reason)
    )


@router.post(
    "/assignments/{assignment_id}/progress",
    status_code=201,
    response_model=NoteOut,
    summary="Record a progress note (办理进展)",
)
async def progress(
    assignment_id: UUID,
    body: ProgressIn,
    db: Pool,
    who: AssignedDepartment,
) -> NoteOut:
    """Only the assigned department, after it signed for the assignment."""
    _, note = await handlers.progress(db, who, assignment_id, body.note)
    return NoteOut(**vars(note))


# --- manual dispatch ---------------------------------------------------------------------


class WaitingCaseOut(BaseModel):
    case_id: UUID
    case_no: str
    area_path: str
    category: str
    priority: Priority
    description: str
    departments: list[str]
    note: str | None
    reason: str
    whistled_at: datetime
    queued_at: datetime


@router.get(
    "/manual-dispatch",
    response_model=list[WaitingCaseOut],
    summary="Whistled cases no rule could route (待人工派单), oldest first",
)
async def manual_dispatch(
    db: Pool,
    who: Annotated[
        Principal, Depends(allow(Role.COMMUNITY, Role.STREET, Role.DISTRICT, Role.SUPERVISOR))
    ],
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[WaitingCaseOut]:
    """Only the cases inside the holder's area subtree."""
    async with db.acquire() as conn:
        waiting = await repository.list_waiting(conn, who.area_filter(), limit, offset)
    return [WaitingCaseOut(**vars(w)) for w in waiting]


class DispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_id: str = Field(min_length=1, max_length=64, description="主办部门")
    co_department_ids: list[str] = Field(
        default_factory=list, max_length=10, description="协办部门"
    )
    note: str | None = Field(None, max_length=2000, description="派单说明")


@router.post(
    "/manual-dispatch/{case_id}",
    status_code=201,
    response_model=list[AssignmentOut],
    summary="Dispatch a waiting case by hand (人工派单) to a lead and co-handlers",
)
async def dispatch_by_hand(
    case_id: UUID,
    body: DispatchIn,
    db: Pool,
    who: Annotated[Principal, Depends(allow(Role.COMMUNITY, Role.STREET, Role.DISTRICT))],
) -> list[AssignmentOut]:
    """The community, street or district command whose area contains the case. 404 when the
    case is not waiting; 422 naming an unknown or repeated department; 409 when a chosen
    department already handles the case. The departments that rejected it may be chosen
    again (arbitration, 协调)."""
    made = await handlers.dispatch_by_hand(
        db, who, case_id, body.department_id, list(body.co_department_ids), body.note
    )
    return [AssignmentOut.of(a) for a in made]
