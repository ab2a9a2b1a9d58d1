"""HTTP routes for casework: fix on the spot, rework, rating (also by one-time link), reopen,
merge, possible duplicates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from services.intake.api.cases import CaseOut, Reader, Verifier
from services.intake.handlers import casework as handlers
from services.intake.domain import STATUS_ZH
from shared.auth import AREA_ROLES, PUBLIC, Principal, allow
from services.intake.api.common import settings
from shared.service import Pool

router = APIRouter(tags=["casework"])
Merger = Annotated[Principal, Depends(allow(*AREA_ROLES))]  # the community triages duplicates
Token = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=1000, description="处理说明")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="原因")


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: int = Field(ge=1, le=5, description="1–5 分")
    comment: str | None = Field(default=None, max_length=1000)


class RatingOut(BaseModel):
    score: int
    comment: str | None
    channel: str
    rated_at: datetime


class RatingLinkOut(BaseModel):
    token: str
    path: str = Field(description="the page the resident opens (GET shows the case, POST rates)")
    expires_at: datetime


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    primary_case_id: UUID = Field(description="主案件: the case this duplicate merges into")


class DuplicateOut(BaseModel):
    id: UUID
    case_no: str
    grid_code: str
    description: str
    status: str
    reported_at: datetime
    distance_m: float | None


class PublicCaseOut(BaseModel):
    """What a resident with a rating link may see: no names, no exact location."""

    case_no: str
    category: str
    description: str
    status_label: str


@router.post(
    "/cases/{case_id}/fix-on-spot",
    response_model=CaseOut,
    summary="Fixed on the spot (随手做，小事不出网格)",
)
async def fix_on_spot(case_id: UUID, body: NoteIn, db: Pool, who: Verifier) -> CaseOut:
    return CaseOut.of(await handlers.fix_on_spot(db, who, case_id, body.note))


@router.post(
    "/cases/{case_id}/rework",
    response_model=CaseOut,
    summary="On-site check failed: send back to the department (返工)",
)
async def rework(case_id: UUID, body: ReasonIn, db: Pool, who: Verifier) -> CaseOut:
    return CaseOut.of(await handlers.request_rework(db, who, case_id, body.reason))


@router.post("/cases/{case_id}/reopen", response_model=CaseOut, summary="Reopen a closed case")
async def reopen(
    case_id: UUID, body: ReasonIn, db: Pool, who: Verifier, request: Request
) -> CaseOut:
    window = settings(request).reopen_window_days
    return CaseOut.of(await handlers.reopen(db, who, case_id, body.reason, window))


@router.post(
    "/cases/{case_id}/rating",
    response_model=RatingOut,
    status_code=201,
    summary="Record the resident's rating (群众评单)",
)
async def rate(case_id: UUID, body: RatingIn, db: Pool, who: Verifier) -> RatingOut:
    return RatingOut(**dict(await handlers.rate(db, who, case_id, body.score, body.comment)))


@router.post(
    "/cases/{case_id}/rating-link",
    response_model=RatingLinkOut,
    status_code=201,
    summary="A one-time rating link for the resident",
)
async def rating_link(case_id: UUID, db: Pool, who: Verifier, request: Request) -> RatingLinkOut:
    made = await handlers.create_rating_link(db, who, case_id, settings(request).rating_link_days)
    return RatingLinkOut(
        token=made.token, path=f"/ratings/{made.token}", expires_at=made.expires_at
    )


@router.get(
    "/ratings/{token}",
    response_model=PublicCaseOut,
    dependencies=[Depends(PUBLIC)],
    summary="The case a one-time rating link is for (no login)",
)
async def rating_page(token: Token, db: Pool) -> PublicCaseOut:
    case = await handlers.case_for_link(db, token)
    return PublicCaseOut(
        case_no=case.case_no,
        category=case.category,
        description=case.description,
        status_label=STATUS_ZH[case.status],
    )


@router.post(
    "/ratings/{token}",
    response_model=RatingOut,
    status_code=201,
    dependencies=[Depends(PUBLIC)],
    summary="Rate through a one-time link (no login)",
)
async def rate_by_link(token: Token, body: RatingIn, db: Pool) -> RatingOut:
    return RatingOut(**dict(await handlers.rate_by_link(db, token, body.score, body.comment)))


@router.post(
    "/cases/{case_id}/merge",
    response_model=CaseOut,
    summary="Merge this duplicate into its primary case",
)
async def merge(case_id: UUID, body: MergeIn, db: Pool, who: Merger) -> CaseOut:
    return CaseOut.of(await handlers.merge(db, who, case_id, body.primary_case_id))


class ReporterOut(BaseModel):
    reporter: str
    reported_by: str
    reported_at: datetime
    case_id: UUID = Field(description="the report this credit comes from")


@router.get(
    "/cases/{case_id}/reporters",
    response_model=list[ReporterOut],
    summary="Everyone credited with reporting this case (merged duplicates included)",
)
async def reporters(case_id: UUID, db: Pool, who: Reader) -> list[ReporterOut]:
    return [ReporterOut(**dict(r)) for r in await handlers.reporters(db, who, case_id)]


@router.get(
    "/cases/{case_id}/duplicates",
    response_model=list[DuplicateOut],
    summary="Open cases that may report the same problem",
)
async def duplicates(case_id: UUID, db: Pool, who: Reader, request: Request) -> list[DuplicateOut]:
    s = settings(request)
    rows = await handlers.duplicates_of(
        db, who, case_id, window_days=s.duplicate_window_days, radius_m=s.duplicate_radius_m
    )
    return [DuplicateOut(**{k: r[k] for k in DuplicateOut.model_fields}) for r in rows]
