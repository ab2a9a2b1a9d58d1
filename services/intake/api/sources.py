"""Cases from outside the grid worker's rounds: the 12345 hotline's tickets (接诉即办), and
residents' own reports (群众上报, filed through Open311 without a token) that the grid
worker checks on site — accept (核实属实) or dismiss (不予受理)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.intake.api.cases import CaseOut, Reader, Verifier
from services.intake.coords import COORD_SYSTEM_HELP, CoordSystem
from services.intake.domain.sources import DISMISS_ZH, DismissReason
from services.intake.handlers import ReportCase
from services.intake.handlers import sources as handlers
from services.intake.repository import CaseRow
from shared.auth import AREA_ROLES, Principal, allow
from shared.contract import CaseSource, Location, Priority
from shared.service import Pool

router = APIRouter(tags=["sources"])

# The command centres take 12345's tickets (community, street, district; scope: the grid).
Importer = Annotated[Principal, Depends(allow(*AREA_ROLES))]
CLOCK_SKEW = timedelta(minutes=5)


class HotlineIn(BaseModel):
    """A 12345 ticket as the hotline's work order gives it."""

    model_config = ConfigDict(extra="forbid")
    ticket_no: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="12345 工单号 the hotline's ticket number (importing it again is a no-op)",
    )
    category: str = Field(min_length=1, max_length=32, description="事件分类编码")
    description: str = Field(min_length=1, max_length=2000, description="诉求内容")
    priority: Priority = Priority.NORMAL
    grid_code: str | None = Field(
        default=None, min_length=1, max_length=64, description="网格编码 (omit: by position)"
    )
    location: Location = Field(default_factory=Location)
    coord_system: CoordSystem = Field(default=CoordSystem.WGS84, description=COORD_SYSTEM_HELP)
    received_at: AwareDatetime = Field(description="来电时间 when the hotline took the call")
    caller: str | None = Field(default=None, min_length=1, max_length=64, description="来电人")
    caller_contact: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="来电人联系方式 (kept masked: 138****5678)",
    )

    @model_validator(mode="after")
    def _placed_and_past(self) -> HotlineIn:
        if self.grid_code is None and (self.location.lat is None or self.location.lon is None):
            raise ValueError(
                "须提供网格编码 grid_code 或位置坐标 location.lat/lon (give grid_code or a point)"
            )
        if self.received_at > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("来电时间不能晚于当前时间 (received_at is in the future)")
        return self

    def ticket(self) -> handlers.HotlineTicket:
        report = ReportCase(
            grid_code=self.grid_code,
            category=self.category,
            description=self.description,
            priority=self.priority,
            location=self.location,
            reporter=f"12345热线（{self.caller}）" if self.caller else "12345热线",
            source=CaseSource.HOTLINE,
            coord_system=self.coord_system,
        )
        return handlers.HotlineTicket(
            ticket_no=self.ticket_no,
            report=report,
            received_at=self.received_at,
            caller=self.caller,
            caller_contact=self.caller_contact,
        )


class HotlineOut(CaseOut):
    ticket_no: str


@router.post(
    "/cases/import/hotline",
    status_code=201,
    response_model=HotlineOut,
    responses={200: {"description": "the ticket was imported before: the same case"}},
    summary="Import a 12345 hotline ticket as a case (接诉即办)",
)
async def import_hotline(
    body: HotlineIn, db: Pool, who: Importer, response: Response
) -> HotlineOut:
    case, created = await handlers.import_hotline(db, who, body.ticket())
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/cases/{case.id}"
    return HotlineOut(**CaseOut.of(case).model_dump(), ticket_no=body.ticket_no)


# --- residents' reports (群众上报) ---------------------------------------------------------

ReportState = Literal["pending", "accepted", "dismissed"]
STATE_ZH = {"pending": "待核实", "accepted": "核实属实，已受理", "dismissed": "不予受理"}


class VerificationOut(BaseModel):
    state: ReportState
    state_label: str
    received_at: datetime
    contact: str | None = Field(description="the resident's phone or e-mail, masked")
    reason: DismissReason | None = Field(description="why it was dismissed (不予受理)")
    reason_label: str | None
    duplicate_case_no: str | None
    note: str | None
    decided_by_name: str | None
    decided_at: datetime | None

    @classmethod
    def of(cls, r: Any) -> VerificationOut:
        reason = DismissReason(r["reason"]) if r["reason"] else None
        return cls(
            state=r["state"],
            state_label=STATE_ZH[r["state"]],
            received_at=r["received_at"],
            contact=r["contact"],
            reason=reason,
            reason_label=DISMISS_ZH[reason] if reason else None,
            duplicate_case_no=r["duplicate_case_no"],
            note=r["note"],
            decided_by_name=r["decided_by_name"],
            decided_at=r["decided_at"],
        )


class ResidentReportOut(CaseOut):
    verification: VerificationOut

    @classmethod
    def of_report(cls, case: CaseRow, r: Any) -> ResidentReportOut:
        return cls(**CaseOut.of(case).model_dump(), verification=VerificationOut.of(r))


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str | None = Field(
        default=None, min_length=1, max_length=32, description="the category seen on site"
    )
    priority: Priority | None = None
    note: str | None = Field(default=None, max_length=1000, description="核实情况")


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: DismissReason = Field(
        description="duplicate 重复上报 / not_found 现场未发现 / not_public 非公共事务 / "
        "resolved 现场已解决 / other 其他 (note required)"
    )
    duplicate_of: UUID | None = Field(default=None, description="the case it repeats")
    note: str | None = Field(
        default=None, max_length=1000, description="说明 (the resident reads it)"
    )


@router.get(
    "/resident-reports",
    response_model=list[ResidentReportOut],
    summary="Residents' reports in my grids or subtree, oldest waiting first (群众上报待核实)",
)
async def list_resident_reports(
    db: Pool,
    who: Reader,
    state: ReportState | None = "pending",
    area: Annotated[str | None, Query(max_length=200, description="area path inside mine")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2_147_483_647)] = 0,
) -> list[ResidentReportOut]:
    rows = await handlers.list_resident_reports(
        db, who, state=state, area=area, limit=limit, offset=offset
    )
    return [ResidentReportOut.of_report(case, r) for case, r in rows]


async def _answer(db: Pool, who: Principal, case_id: UUID) -> ResidentReportOut:
    case, r = await handlers.resident_report(db, who, case_id)
    assert r is not None  # accepted or dismissed just now
    return ResidentReportOut.of_report(case, r)


@router.post(
    "/resident-reports/{case_id}/accept",
    response_model=ResidentReportOut,
    summary="Verified on site: the resident's report becomes a reported case (核实属实)",
)
async def accept_resident_report(
    case_id: UUID, body: AcceptIn, db: Pool, who: Verifier
) -> ResidentReportOut:
    await handlers.accept_resident_report(
        db, who, case_id, priority=body.priority, category=body.category, note=body.note
    )
    return await _answer(db, who, case_id)


@router.post(
    "/resident-reports/{case_id}/dismiss",
    response_model=ResidentReportOut,
    summary="Not taken on, with the reason the resident reads (不予受理)",
)
async def dismiss_resident_report(
    case_id: UUID, body: DismissIn, db: Pool, who: Verifier
) -> ResidentReportOut:
    await handlers.dismiss_resident_report(
        db, who, case_id, reason=body.reason, note=body.note, duplicate_of=body.duplicate_of
    )
    return await _answer(db, who, case_id)
