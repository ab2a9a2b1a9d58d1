"""Intake's HTTP routes for grid workers and communities."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.intake import handlers, repository
from services.intake.coords import COORD_SYSTEM_HELP, CoordSystem
from services.intake.handlers import casework
from services.intake.domain import STATUS_ZH, CaseStatus
from services.intake.domain.sources import SOURCE_ZH, check_staff_source
from services.intake.repository import CaseRow
from shared.auth import AREA_ROLES, PUBLIC, Principal, Role, allow
from shared.errors import NotFound
from shared.contract import CaseSource, Level, Location, Priority
from shared.dto import fill
from services.intake.api.common import settings
from shared.service import Pool

router = APIRouter(tags=["cases"])

# Who may do what (scope — the case's grid inside the caller's grids or subtree — is
# checked by the handlers before anything is written).
Reporter = Annotated[Principal, Depends(allow(Role.GRID_WORKER, *AREA_ROLES))]
Reader = Annotated[Principal, Depends(allow(Role.GRID_WORKER, *AREA_ROLES, Role.SUPERVISOR))]
# Grid workers may whistle only where the community allows it (GRID_WORKERS_MAY_WHISTLE).
Whistler = Annotated[Principal, Depends(allow(Role.GRID_WORKER, *AREA_ROLES))]
Verifier = Annotated[Principal, Depends(allow(Role.GRID_WORKER, *AREA_ROLES))]
Anyone = Annotated[Principal, Depends(allow(*Role))]


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grid_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="网格编码 grid code (omit to place by location's point)",
    )
    category: str = Field(min_length=1, max_length=32, description="事件分类编码 category code")
    description: str = Field(min_length=1, max_length=2000, description="问题描述")
    priority: Priority = Field(default=Priority.NORMAL, description="urgent 急 / normal / minor 小")
    location: Location = Field(default_factory=Location)
    reporter: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="上报人 reporter (defaults to the caller's name)",
    )
    source: CaseSource = Field(
        default=CaseSource.GRID_PATROL,
        description="案件来源 where it came from: grid_patrol 网格巡查 (default), resident 群众"
        "（网格员代报）, hotline 12345热线, wechat_group 微信群",
    )
    coord_system: CoordSystem = Field(default=CoordSystem.WGS84, description=COORD_SYSTEM_HELP)

    @model_validator(mode="after")
    def _grid_or_point(self) -> ReportIn:
        if self.grid_code is None and (self.location.lat is None or self.location.lon is None):
            raise ValueError(
                "须提供网格编码 grid_code 或位置坐标 location.lat/lon (give grid_code or a point)"
            )
        return self


class WhistleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Level = Field(
        default=Level.COMMUNITY,
        description="community 社区吹哨 / street 街道 / district 区级",
    )
    departments: list[str] = Field(
        default_factory=list, max_length=10, description="点名召集的部门 departments to convene"
    )
    note: str | None = Field(default=None, max_length=1000)
    priority: Priority | None = None


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=1000, description="核查意见")


class CaseOut(BaseModel):
    id: UUID
    case_no: str
    grid_code: str
    area_path: str
    category: str
    description: str
    priority: Priority
    location: Location
    reporter: str
    source: CaseSource = Field(description="案件来源 where the case came from")
    source_label: str
    position_sent: dict[str, Any] | None = Field(
        description="the point as the client sent it, when it declared gcj02 or bd09 "
        "(location holds the WGS-84 point the case was placed by)"
    )
    status: CaseStatus
    status_label: str
    departments: list[str] = Field(description="departments named in the whistle (点名召集)")
    assigned_departments: list[str] = Field(
        description="the departments handling it (dispatched to them, not rejected or "
        "transferred away)"
    )
    reported_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    deadline_at: datetime | None = Field(
        description="the nearest open deadline (e.g. the department's sign-for limit)"
    )
    overdue: bool = Field(description="a deadline of this case has passed (超时)")
    expected_resolution_at: datetime | None = Field(
        description="预计办结时间: when it will likely be resolved (tracking's forecast from the "
        "department's history for the category, or the deadline; the resolution once resolved)"
    )
    expected_earliest: datetime | None = Field(description="the forecast range's start")
    expected_latest: datetime | None = Field(description="the forecast range's end")
    expected_basis: str | None = Field(description="history, category, deadline or resolved")

    @classmethod
    def of(cls, c: CaseRow) -> CaseOut:
        return fill(
            cls,
            c,
            location=Location(lat=c.lat, lon=c.lon, address=c.address),
            status_label=STATUS_ZH[c.status],
            source_label=SOURCE_ZH[c.source],
        )


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="makes a retried report safe: the same key returns the same case",
    ),
]


class DuplicateBrief(BaseModel):
    id: UUID
    case_no: str
    grid_code: str
    description: str
    reported_at: datetime
    distance_m: float | None


class ReportOut(CaseOut):
    possible_duplicates: list[DuplicateBrief] = Field(
        description="open cases of the same category nearby (same grid or within the radius) "
        "reported recently — a community may merge this one into one of them"
    )


@router.post(
    "/cases", status_code=201, response_model=ReportOut, summary="Report a case (网格发现)"
)
async def report_case(
    body: ReportIn,
    db: Pool,
    who: Reporter,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ReportOut:
    conf = settings(request)
    check_staff_source(body.source)
    case, created = await handlers.report_case(
        db,
        who,
        handlers.ReportCase(
            grid_code=body.grid_code,
            category=body.category,
            description=body.description,
            priority=body.priority,
            location=body.location,
            reporter=body.reporter or who.name,
            source=body.source,
            coord_system=body.coord_system,
        ),
        idempotency_key,
        rate_limit_per_minute=conf.report_rate_limit_per_minute,
    )
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/cases/{case.id}"
    nearby = await casework.duplicates_of(
        db,
        who,
        case,
        window_days=conf.duplicate_window_days,
        radius_m=conf.duplicate_radius_m,
    )
    return ReportOut(
        **CaseOut.of(case).model_dump(),
        possible_duplicates=[
            DuplicateBrief(**{k: r[k] for k in DuplicateBrief.model_fields}) for r in nearby
        ],
    )


@router.get("/cases/{case_id}", response_model=CaseOut, summary="Read a case back")
async def get_case(case_id: UUID, db: Pool, who: Reader) -> CaseOut:
    return CaseOut.of(await handlers.get_case(db, who, case_id))


@router.get(
    "/cases",
    response_model=list[CaseOut],
    summary="List the cases in my jurisdiction (or an area subtree inside it)",
)
async def list_cases(
    db: Pool,
    who: Reader,
    area: Annotated[str | None, Query(max_length=200, description="area path inside mine")] = None,
    status: CaseStatus | None = None,
    category: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=32,
            description="a 小类, or a 大类 with all its 小类 (E01 covers E0101…)",
        ),
    ] = None,
    overdue: Annotated[
        bool | None,
        Query(description="true: only cases past a deadline (超时); false: only the others"),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="a part of the case number, the description or the address",
        ),
    ] = None,
    source: Annotated[
        CaseSource | None, Query(description="案件来源: grid_patrol, resident, hotline, …")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2_147_483_647)] = 0,
) -> list[CaseOut]:
    rows = await handlers.list_cases(
        db,
        who,
        area=area,
        status=status,
        limit=limit,
        offset=offset,
        category=category,
        overdue=overdue,
        text=(q.strip() or None) if q else None,
        source=source,
    )
    return [CaseOut.of(r) for r in rows]


@router.post(
    "/cases/{case_id}/whistle",
    response_model=CaseOut,
    summary="Whistle the case to the departments (社区吹哨)",
)
async def whistle_case(
    case_id: UUID, body: WhistleIn, db: Pool, who: Whistler, request: Request
) -> CaseOut:
    cmd = handlers.WhistleCase(
        departments=body.departments, note=body.note, priority=body.priority, level=body.level
    )
    conf = settings(request)
    return CaseOut.of(
        await handlers.whistle_case(
            db, who, case_id, cmd, grid_workers_may_whistle=conf.grid_workers_may_whistle
        )
    )


@router.post(
    "/cases/{case_id}/close", response_model=CaseOut, summary="Verify on site and close (核查结案)"
)
async def close_case(case_id: UUID, body: CloseIn, db: Pool, who: Verifier) -> CaseOut:
    return CaseOut.of(await handlers.close_case(db, who, case_id, body.note))


areas_router = APIRouter(tags=["jurisdiction"])


class AreaOut(BaseModel):
    code: str
    name: str
    level: str
    parent_code: str | None
    path: str


class AreaFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any] | None = Field(
        description="GeoJSON Polygon/MultiPolygon (WGS84), null for areas without a boundary"
    )
    properties: AreaOut


class AreaFeaturesOut(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[AreaFeature]


@areas_router.get(
    "/areas/features",
    response_model=AreaFeaturesOut,
    dependencies=[Depends(PUBLIC)],
    summary="A subtree of the jurisdiction as GeoJSON: names and grid boundaries "
    "for maps (网格地图) in one call (public reference data, no token)",
)
async def area_features(
    db: Pool,
    root: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=300,
            pattern=r"^[A-Za-z0-9_/-]+$",
            description="the subtree's area path, e.g. YA/YA01; omitted: the whole jurisdiction "
            "(every district)",
        ),
    ] = None,
) -> AreaFeaturesOut:
    """Administrative divisions, their names and grid boundaries are public reference data
    (like dispatch's category catalogue): a service such as notify reads them without a
    user's token."""
    async with db.acquire() as conn:
        roots = [root] if root else [r["path"] for r in await repository.list_areas(conn, None)]
        rows = [r for path in roots for r in await repository.subtree_areas(conn, path)]
    if root and not rows:
        raise NotFound(f"辖区 {root} 不存在", f"no area {root}", code="area_not_found")
    return AreaFeaturesOut(
        features=[
            AreaFeature(
                id=r["code"],
                geometry=r["boundary"],
                properties=AreaOut(
                    code=r["code"],
                    name=r["name"],
                    level=r["level"],
                    parent_code=r["parent_code"],
                    path=r["path"],
                ),
            )
            for r in rows
        ]
    )


@areas_router.get(
    "/areas", response_model=list[AreaOut], summary="The jurisdiction tree, one level at a time"
)
async def list_areas(
    db: Pool, who: Anyone, parent: Annotated[str | None, Query(max_length=64)] = None
) -> list[AreaOut]:
    async with db.acquire() as conn:
        return [AreaOut(**dict(r)) for r in await repository.list_areas(conn, parent)]
