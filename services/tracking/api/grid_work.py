"""The seeds' counts over HTTP (``handlers.grid_work``):

- ``GET /kpi/grid-work?from=&to=&area=&level=`` — 随手做 / 小事不出网格: the cases closed in the
  period per area at ``level`` (each covering its subtree) and how many of them the grid
  closed itself (on the spot), 小事不出网格率; and per grid worker his on-the-spot closings;
- ``GET /kpi/sources?from=&to=&area=&level=`` — 案件来源: the cases reported in the period per
  source (grid_patrol, resident, hotline, wechat_group, proactive) per area.

Period, area and level as the other KPIs (``api.kpi``); community, street, district and
supervisors, in their subtree. A case closed and reopened since is not counted as closed; a
report older than the source field counts as grid_patrol.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.tracking.api.kpi import Area, Level, RateOut, Supervisors, Within, known_params
from services.tracking.domain.grid_work import SOURCE_LABELS, GridWork
from services.tracking.handlers import grid_work as handler
from services.tracking.handlers.kpi import LEVELS
from shared.clock import BEIJING
from shared.contract.values import CaseSource
from shared.service import Pool

router = APIRouter(prefix="/kpi", tags=["kpi"])
LEVEL_NAMES = {depth: name for name, depth in LEVELS.items()}


class GridWorkOut(BaseModel):
    unit: str = Field(description="area path, or total")
    closed: int = Field(description="结案: cases closed in the period (not reopened since)")
    on_spot: int = Field(description="随手做: of them, closed on the spot by the grid worker")
    grid_level_rate: RateOut = Field(description="小事不出网格率 = on_spot / closed")

    @classmethod
    def of(cls, unit: str, w: GridWork) -> GridWorkOut:
        return cls(
            unit=unit,
            closed=w.closed,
            on_spot=w.on_spot,
            grid_level_rate=RateOut.of(w.grid_level_rate),
        )


class WorkerOut(BaseModel):
    subject: str = Field(description="the grid worker's user id")
    name: str | None
    on_spot: int = Field(description="随手做: cases he closed on the spot in the period")
    grids: list[str] = Field(description="the grids of those cases")


class GridWorkTableOut(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    as_of: datetime
    level: str
    areas: list[GridWorkOut]
    workers: list[WorkerOut] = Field(description="most on-the-spot closings first")
    total: GridWorkOut


@router.get(
    "/grid-work",
    response_model=GridWorkTableOut,
    response_model_by_alias=True,
    summary="随手做 / 小事不出网格: on-the-spot closings per area and grid worker",
    dependencies=[known_params("from", "to", "area", "level")],
)
async def grid_work(
    db: Pool, who: Supervisors, within: Within, area: Area = None, level: Level = None
) -> GridWorkTableOut:
    t = await handler.grid_work(db, who, within, area=area, level=level, now=datetime.now(BEIJING))
    return GridWorkTableOut(
        start=t.period.start,
        end=t.period.end,
        as_of=t.as_of,
        level=LEVEL_NAMES[t.depth],
        areas=[GridWorkOut.of(k, v) for k, v in t.areas.items()],
        workers=[
            WorkerOut(subject=w.subject, name=w.name, on_spot=w.on_spot, grids=sorted(w.grids))
            for w in t.workers
        ],
        total=GridWorkOut.of("total", t.total),
    )


class SourceOut(BaseModel):
    code: CaseSource
    label_zh: str
    label_en: str


class SourceCountsOut(BaseModel):
    unit: str = Field(description="area path, or total")
    reported: int = Field(description="cases reported in the period")
    by_source: dict[str, int] = Field(description="per source code, every source listed")


class SourceTableOut(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    as_of: datetime
    level: str
    sources: list[SourceOut] = Field(description="the sources, in this order, with their names")
    areas: list[SourceCountsOut]
    total: SourceCountsOut


def _counts(unit: str, by: dict[CaseSource, int]) -> SourceCountsOut:
    return SourceCountsOut(
        unit=unit, reported=sum(by.values()), by_source={s.value: n for s, n in by.items()}
    )


@router.get(
    "/sources",
    response_model=SourceTableOut,
    response_model_by_alias=True,
    summary="案件来源: cases reported per source and area",
    dependencies=[known_params("from", "to", "area", "level")],
)
async def sources(
    db: Pool, who: Supervisors, within: Within, area: Area = None, level: Level = None
) -> SourceTableOut:
    t = await handler.sources(db, who, within, area=area, level=level, now=datetime.now(BEIJING))
    return SourceTableOut(
        start=t.period.start,
        end=t.period.end,
        as_of=t.as_of,
        level=LEVEL_NAMES[t.depth],
        sources=[
            SourceOut(code=s, label_zh=SOURCE_LABELS[s][0], label_en=SOURCE_LABELS[s][1])
            for s in CaseSource
        ],
        areas=[_counts(k, v) for k, v in t.areas.items()],
        total=_counts("total", t.total),
    )
