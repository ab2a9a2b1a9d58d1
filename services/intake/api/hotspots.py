"""未诉先办 routes: the hotspots of an area, and a community's one-action decision on one."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.intake.api.cases import CaseOut
from services.intake.domain import STATUS_ZH, CaseStatus
from services.intake.domain import hotspots as rules
from services.intake.domain.hotspots import DISMISS_REASON_ZH, DismissReason
from services.intake.handlers import hotspots as handlers
from services.intake.handlers.hotspots import HotspotItem
from services.intake.repository.hotspots import DecisionRow
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.contract import Location
from shared.service import Pool

router = APIRouter(tags=["hotspots"])

# Communities, streets and the district decide in their subtree; supervisors read.
Reader = Annotated[Principal, Depends(allow(*AREA_ROLES, Role.SUPERVISOR))]
Decider = Annotated[Principal, Depends(allow(*AREA_ROLES))]
HotspotId = Annotated[
    str,
    Path(
        min_length=5,
        max_length=200,
        description="热点编号 grid.category.period start, e.g. YA0101-03.E0101.20261102000000",
    ),
]


class HotspotState(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"


STATE_ZH = {
    HotspotState.PROPOSED: "待研判",
    HotspotState.ACCEPTED: "已主动受理",
    HotspotState.DISMISSED: "已忽略",
}


class CaseBrief(BaseModel):
    id: UUID
    case_no: str
    reported_at: datetime
    status: CaseStatus
    status_label: str


class DecisionOut(BaseModel):
    decided_by: str
    decided_by_name: str
    decided_at: datetime
    case_id: UUID | None = Field(description="the proactive case (accepted)")
    case_no: str | None
    reason: DismissReason | None = Field(description="why it was dismissed")
    reason_label: str | None
    note: str | None


class HotspotOut(BaseModel):
    id: str = Field(description="stable while its period lasts: grid.category.period start")
    grid_code: str
    area_path: str
    category: str
    category_name: str
    period_start: datetime = Field(description="the first instant counted")
    case_count: int = Field(description="cases in the period (merged duplicates once)")
    first_reported_at: datetime
    last_reported_at: datetime
    weekly: list[int] = Field(description="cases per calendar week, oldest first (sparkline)")
    reworked: int = Field(description="cases of the cluster sent back for rework (返工)")
    reopened: int = Field(description="cases of the cluster reopened (重新打开)")
    open_cases: int = Field(description="cases of the cluster not closed yet")
    location: Location = Field(description="the cases' centroid, their most frequent address")
    cases: list[CaseBrief]
    state: HotspotState
    state_label: str
    decision: DecisionOut | None

    @classmethod
    def of(cls, item: HotspotItem) -> HotspotOut:
        e: dict[str, Any] = item.evidence
        state = HotspotState(item.state)
        return cls(
            **{k: v for k, v in e.items() if k != "cases"},
            cases=[
                CaseBrief(**c, status_label=STATUS_ZH[CaseStatus(c["status"])]) for c in e["cases"]
            ],
            state=state,
            state_label=STATE_ZH[state],
            decision=_decision(item.decision),
        )


def _decision(d: DecisionRow | None) -> DecisionOut | None:
    if d is None:
        return None
    return DecisionOut(
        decided_by=d.decided_by,
        decided_by_name=d.decided_by_name,
        decided_at=d.decided_at,
        case_id=d.case_id,
        case_no=d.case_no,
        reason=DismissReason(d.reason) if d.reason else None,
        reason_label=DISMISS_REASON_ZH[DismissReason(d.reason)] if d.reason else None,
        note=d.note,
    )


class HotspotsOut(BaseModel):
    weeks: int
    min_cases: int
    period_start: datetime = Field(description="the window's first instant (a Monday 00:00)")
    hotspots: list[HotspotOut]


class AcceptOut(HotspotOut):
    case: CaseOut = Field(description="the proactive case (未诉先办) opened for the hotspot")


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: DismissReason = Field(
        description="already_handled 已处置 / seasonal 季节性问题 / "
        "not_actionable 非本级可解决 / other 其他"
    )
    note: str | None = Field(default=None, min_length=1, max_length=500, description="说明")


@router.get(
    "/hotspots",
    response_model=HotspotsOut,
    summary="Hotspots of my jurisdiction: one category's cases recurring in one grid "
    "(未诉先办), proposed ones ranked first, then those decided in the window",
)
async def list_hotspots(
    db: Pool,
    who: Reader,
    area: Annotated[
        str | None, Query(min_length=1, max_length=200, description="area path inside mine")
    ] = None,
    weeks: Annotated[
        int,
        Query(
            ge=rules.MIN_WEEKS, le=rules.MAX_WEEKS, description="calendar weeks, this one included"
        ),
    ] = rules.DEFAULT_WEEKS,
    min_cases: Annotated[
        int,
        Query(ge=rules.MIN_CASES, le=rules.MAX_MIN_CASES, description="cases that make a hotspot"),
    ] = rules.DEFAULT_MIN_CASES,
    state: HotspotState | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many, ranked")] = 100,
) -> HotspotsOut:
    listing = await handlers.list_hotspots(db, who, area=area, weeks=weeks, min_cases=min_cases)
    items = [i for i in listing.items if state is None or i.state == state][:limit]
    return HotspotsOut(
        weeks=weeks,
        min_cases=min_cases,
        period_start=listing.period_start,
        hotspots=[HotspotOut.of(i) for i in items],
    )


@router.post(
    "/hotspots/{hotspot_id}/accept",
    status_code=201,
    response_model=AcceptOut,
    summary="Accept a hotspot: open one proactive case (未诉先办) in its grid; "
    "accepting again returns the same case (200)",
)
async def accept_hotspot(
    hotspot_id: HotspotId, db: Pool, who: Decider, response: Response
) -> AcceptOut:
    decision, case, created = await handlers.accept_hotspot(db, who, hotspot_id)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/cases/{case.id}"
    item = HotspotItem(decision.evidence, decision.decision, decision)
    return AcceptOut(**HotspotOut.of(item).model_dump(), case=CaseOut.of(case))


@router.post(
    "/hotspots/{hotspot_id}/dismiss",
    status_code=201,
    response_model=HotspotOut,
    summary="Dismiss a hotspot with a reason; it is not proposed again for its period",
)
async def dismiss_hotspot(
    hotspot_id: HotspotId, body: DismissIn, db: Pool, who: Decider, response: Response
) -> HotspotOut:
    decision, created = await handlers.dismiss_hotspot(
        db, who, hotspot_id, body.reason.value, body.note
    )
    if not created:
        response.status_code = 200
    item = HotspotItem(decision.evidence, decision.decision, decision)
    return HotspotOut.of(item)
