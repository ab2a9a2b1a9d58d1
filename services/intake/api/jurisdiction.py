"""HTTP routes of the jurisdiction tree (辖区): reading it (anyone signed in), changing it
(the administrator), grid workers (网格员), and finding the grid that holds a point."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.intake.coords import COORD_SYSTEM_HELP, CoordSystem, to_wgs84
from services.intake.handlers import jurisdiction as handlers
from services.intake.domain.jurisdiction import CODE_PATTERN, LEVEL_ZH, AreaSpec, Level
from services.intake.repository.jurisdiction import AreaRow
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.dto import fill
from shared.service import Pool

router = APIRouter(tags=["jurisdiction"])
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
Anyone = Annotated[Principal, Depends(allow(*Role))]
# Grid workers are people: the administrator, and those whose scope holds the grid.
WorkerReader = Annotated[
    Principal, Depends(allow(Role.ADMIN, Role.GRID_WORKER, *AREA_ROLES, Role.SUPERVISOR))
]

Code = Annotated[str, Path(pattern=CODE_PATTERN, max_length=64, description="区域编码 area code")]
CodeField = Annotated[str, Field(pattern=CODE_PATTERN, max_length=64)]


class AreaIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100, description="名称，如“桃园社区第3网格”")
    level: Level = Field(
        description="district 区 / street 街道 / community 社区 / grid 网格 / "
        "micro_grid 微网格 — exactly one below the parent's"
    )
    parent_code: CodeField | None = Field(
        default=None, description="上级区域编码 (none for a district)"
    )


class ImportAreaIn(AreaIn):
    code: CodeField
    boundary: dict[str, Any] | None = Field(
        default=None, description="GeoJSON Polygon/MultiPolygon"
    )


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    areas: list[ImportAreaIn] = Field(min_length=1, max_length=20_000)


class ImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int


class WorkersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subjects: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        max_length=200, description="网格员的用户标识 subjects of the grid workers"
    )


class WorkersOut(BaseModel):
    grid_code: str
    path: str
    subjects: list[str]


class AreaOut(BaseModel):
    code: str
    name: str
    level: Level
    level_label: str
    parent_code: str | None
    path: str
    has_boundary: bool

    @classmethod
    def of(cls, r: AreaRow) -> AreaOut:
        return fill(
            cls, r.area, level_label=LEVEL_ZH[r.area.level], has_boundary=r.boundary is not None
        )


class AreaDetailOut(AreaOut):
    boundary: dict[str, Any] | None = Field(description="GeoJSON, WGS84 [lon, lat]")
    bbox: list[float] | None = Field(description="[min_lon, min_lat, max_lon, max_lat]")
    updated_at: datetime

    @classmethod
    def of(cls, r: AreaRow) -> AreaDetailOut:
        return fill(cls, r, **AreaOut.of(r).model_dump())  # bbox: the tuple, as a list


class LocatedOut(AreaOut):
    micro_grid: AreaOut | None = Field(description="the micro-grid holding the point, if any")


# --- reading -----------------------------------------------------------------------------
# (GET /areas?parent= lists one level; it lives with the cases' routes.)


@router.get(
    "/areas/locate",
    response_model=LocatedOut,
    summary="The grid whose boundary holds a point (网格定位)",
)
async def locate(
    db: Pool,
    who: Anyone,
    lat: Annotated[float, Query(ge=-90, le=90, description="纬度 (in coord_system)")],
    lon: Annotated[float, Query(ge=-180, le=180, description="经度 (in coord_system)")],
    coord_system: Annotated[CoordSystem, Query(description=COORD_SYSTEM_HELP)] = CoordSystem.WGS84,
) -> LocatedOut:
    grid, micro = await handlers.locate_area(db, *to_wgs84(lat, lon, coord_system))
    return LocatedOut(
        **AreaOut.of(grid).model_dump(), micro_grid=AreaOut.of(micro) if micro else None
    )


@router.get("/areas/{code}", response_model=AreaDetailOut, summary="One node of the tree")
async def get_area(code: Code, db: Pool, who: Anyone) -> AreaDetailOut:
    return AreaDetailOut.of(await handlers.get_area(db, code))


@router.get(
    "/grids/{code}/workers", response_model=WorkersOut, summary="The grid's workers (网格员)"
)
async def get_workers(code: Code, db: Pool, who: WorkerReader) -> WorkersOut:
    row, subjects = await handlers.list_workers(db, who, code)
    return WorkersOut(grid_code=row.area.code, path=row.area.path, subjects=subjects)


# --- changing (administrator) --------------------------------------------------------------


@router.put(
    "/areas/{code}",
    response_model=AreaDetailOut,
    responses={201: {"description": "created"}},
    summary="Create or change one node (rename; move when it has no children or cases)",
)
async def put_area(
    code: Code, body: AreaIn, db: Pool, who: Admin, response: Response
) -> AreaDetailOut:
    spec = AreaSpec(code=code, name=body.name, level=body.level, parent_code=body.parent_code)
    row, outcome = await handlers.put_area(db, spec)
    if outcome == "created":
        response.status_code = 201
        response.headers["Location"] = f"/areas/{code}"
    return AreaDetailOut.of(row)


@router.put(
    "/areas/{code}/boundary",
    response_model=AreaDetailOut,
    summary="Set a grid's or micro-grid's boundary (GeoJSON Polygon/MultiPolygon)",
)
async def put_boundary(
    code: Code,
    db: Pool,
    who: Admin,
    body: Annotated[
        dict[str, Any],
        Body(description="GeoJSON Polygon, MultiPolygon or a Feature of one; WGS84 [lon, lat]"),
    ],
) -> AreaDetailOut:
    return AreaDetailOut.of(await handlers.put_boundary(db, code, body))


@router.post(
    "/areas/import",
    response_model=ImportOut,
    summary="Load a whole tree (or part of one) in one transaction: all or nothing",
)
async def import_areas(body: ImportIn, db: Pool, who: Admin) -> ImportOut:
    rows = [
        handlers.ImportRow(AreaSpec(a.code, a.name, a.level, a.parent_code), a.boundary)
        for a in body.areas
    ]
    done = await handlers.import_tree(db, rows)
    return ImportOut(created=done["created"], updated=done["updated"], unchanged=done["unchanged"])


@router.put(
    "/grids/{code}/workers",
    response_model=WorkersOut,
    summary="Assign exactly these grid workers (网格员) to the grid",
)
async def put_workers(code: Code, body: WorkersIn, db: Pool, who: Admin) -> WorkersOut:
    row, subjects = await handlers.put_workers(db, code, body.subjects)
    return WorkersOut(grid_code=row.area.code, path=row.area.path, subjects=subjects)
