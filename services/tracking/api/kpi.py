"""KPIs (考核指标), the ranking (排名) and the red/black list (红黑榜) over HTTP.

- ``GET /kpi/departments?from=&to=&area=&format=`` — per department;
- ``GET /kpi/areas?from=&to=&area=&level=&format=`` — per area at ``level`` (district,
  street, community, grid; default one below ``area``), each covering its subtree;
- ``GET /kpi/ranking?from=&to=&unit=department|area&area=&level=&by=`` — best first by the
  metrics ``by`` (default 响应率, 解决率, 满意率), with the red/black list;
- ``GET /kpi/thresholds`` (anyone signed in), ``PUT /kpi/thresholds`` (admin) — the red/black
  list's thresholds, as data (``domain.ranking``); invalid ones are refused and change nothing.

The period: ``from`` and ``to`` are dates (Beijing time; ``to`` counts its whole day) or
times with a time zone (``to`` excluded); it counts the assignments dispatched in it, at most
366 days. ``format=csv`` gives the table as a CSV file for Excel (UTF-8 with BOM). Figures
are as of the request (``as_of``); definitions in ``services/tracking/domain/kpi.py``.

Who sees what: community, street, district and supervisors the assignments on cases in their
subtree (``area`` must lie in it: 403 otherwise), the ranking too; department staff only their
own department's figures (``/kpi/departments`` and ``/kpi/areas``), never the ranking. Bad
input — a period ending before it starts or too long, an unknown level, a malformed or unknown
area, an unknown query parameter — gets a 4xx naming it (Chinese first) and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.params import Depends as DependsParam
from pydantic import BaseModel, Field

from services.tracking.api.export import LOCAL, Format, attachment, csv_bytes
from services.tracking.domain.kpi import Kpi, Period, Rate
from services.tracking.domain.ranking import METRICS, thresholds_to_data
from services.tracking.handlers import kpi as handler
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.errors import Invalid
from shared.dto import fill
from shared.service import Pool

router = APIRouter(prefix="/kpi", tags=["kpi"])
Readers = Annotated[Principal, Depends(allow(*AREA_ROLES, Role.SUPERVISOR, Role.DEPARTMENT))]
Supervisors = Annotated[Principal, Depends(allow(*AREA_ROLES, Role.SUPERVISOR))]
Anyone = Annotated[Principal, Depends(allow(*Role))]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]

THRESHOLDS_EXAMPLE = {
    "min_received": 5,
    "red": [["response_rate", ">=", 0.95], ["satisfaction_rate", ">=", 0.9]],
    "black": [["response_rate", "<", 0.8], ["rejections", ">=", 3]],
}


# --- query parameters ----------------------------------------------------------------------


def known_params(*names: str) -> DependsParam:
    """Refuse a query parameter the route does not know (a typo would silently widen it)."""

    async def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - set(names))
        if unknown:
            raise Invalid(
                f"{unknown[0]}：未知查询参数（可用：{'、'.join(names)}）",
                f"{unknown[0]}: unknown query parameter (known: {', '.join(names)})",
                code="unknown_parameter",
            )

    return Depends(check)


def _instant(raw: str, name: str, *, end: bool) -> datetime:
    try:
        if len(raw) == 10:  # a date: its start (from) or the end of its whole day (to)
            day = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
            at = datetime.combine(day, time(0), tzinfo=LOCAL)
        else:
            at = datetime.fromisoformat(raw)
        if at.tzinfo is not None and at.utcoffset() is not None:
            at.astimezone(UTC)  # an instant the database can hold (not before year 1 UTC)
    except (ValueError, OverflowError):  # 9999-12-31's next day, 0001-01-01 +08:00 in UTC
        raise Invalid(
            f"{name}：须为日期（2026-03-01）或带时区的时间（2026-03-01T08:00:00+08:00）",
            f"{name}: must be a date (2026-03-01) or a time with a zone "
            f"(2026-03-01T08:00:00+08:00)",
            code="invalid_period",
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise Invalid(
            f"{name}：时间须带时区（如 +08:00）",
            f"{name}: the time needs a zone (+08:00)",
            code="invalid_period",
        )
    return at


async def period(
    start: Annotated[
        str,
        Query(
            alias="from",
            min_length=10,
            max_length=40,
            description="date (Beijing time) or time with a zone",
        ),
    ],
    end: Annotated[
        str,
        Query(
            alias="to",
            min_length=10,
            max_length=40,
            description="date (its whole day counts) or time with a zone (excluded)",
        ),
    ],
) -> Period:
    first, last = _instant(start, "from", end=False), _instant(end, "to", end=True)
    if last <= first:
        raise Invalid(
            "to：统计区间的结束须晚于开始",
            "to: the period must end after it starts",
            code="invalid_period",
        )
    return Period(first, last)


Within = Annotated[Period, Depends(period)]
Area = Annotated[
    str | None, Query(min_length=1, max_length=200, description="area path, e.g. YA/YA01")
]
Level = Annotated[str | None, Query(description="district, street, community or grid")]


# --- responses -------------------------------------------------------------------------------


class RateOut(BaseModel):
    numerator: int
    denominator: int
    value: float | None = Field(description="numerator / denominator; null when nothing to divide")
    label: str = Field(description="e.g. 95.0%, or — when nothing to divide")

    @classmethod
    def of(cls, r: Rate) -> RateOut:
        return fill(cls, r, label=str(r))


class KpiOut(BaseModel):
    unit: str = Field(description="department id or area path")
    name: str | None = None
    received: int = Field(description="受理量: assignments dispatched in the period")
    signed_for_on_time: int = Field(description="按时签收")
    resolved: int = Field(description="办结")
    resolved_on_time: int = Field(description="按时办结")
    overdue_now: int = Field(description="当前超时")
    reworked: int = Field(description="返工")
    rejections: int = Field(description="推诿（退单）")
    extensions: int = Field(description="延期 (approved)")
    rated: int
    satisfied: int = Field(description="rated 4 or 5")
    average_score: float | None
    average_handling_hours: float | None = Field(description="平均办理时长, dispatch → resolved")
    response_rate: RateOut = Field(description="响应率 = signed for on time / received")
    resolution_rate: RateOut = Field(description="解决率 = resolved / received")
    satisfaction_rate: RateOut = Field(description="满意率 = satisfied / rated")
    on_time_rate: RateOut = Field(description="按时办结率 = resolved on time / resolved")
    rework_rate: RateOut = Field(description="返工率 = reworked / resolved")

    @classmethod
    def of(cls, unit: str, name: str | None, k: Kpi) -> KpiOut:
        avg = k.average_handling_time
        score = k.average_score
        return fill(
            cls,
            k,
            unit=unit,
            name=name,
            average_score=None if score is None else round(score, 2),
            average_handling_hours=None if avg is None else round(avg.total_seconds() / 3600, 2),
            **{
                r: RateOut.of(getattr(k, r))
                for r in (
                    "response_rate",
                    "resolution_rate",
                    "satisfaction_rate",
                    "on_time_rate",
                    "rework_rate",
                )
            },
        )


class KpiTableOut(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    as_of: datetime
    units: list[KpiOut]
    total: KpiOut

    @classmethod
    def of(cls, t: handler.KpiTable) -> KpiTableOut:
        return cls(
            start=t.period.start,
            end=t.period.end,
            as_of=t.as_of,
            units=[KpiOut.of(u.key, u.name, u.kpi) for u in t.units],
            total=KpiOut.of("total", "合计", t.total),
        )


CSV_COLUMNS = (
    "received",
    "signed_for_on_time",
    "resolved",
    "resolved_on_time",
    "overdue_now",
    "reworked",
    "rejections",
    "extensions",
    "response_rate",
    "resolution_rate",
    "satisfaction_rate",
    "on_time_rate",
    "rework_rate",
)


def _csv(table: KpiTableOut, first: str, filename: str) -> Any:
    header = [
        first,
        "名称",
        *(METRICS[c][0] for c in CSV_COLUMNS),
        "评价数",
        "平均评分",
        "平均办理时长（小时）",
    ]

    def row(k: KpiOut) -> list[Any]:
        cells = [getattr(k, c) for c in CSV_COLUMNS]
        return [
            k.unit,
            k.name or "",
            *(c.label if isinstance(c, RateOut) else c for c in cells),
            k.rated,
            "" if k.average_score is None else k.average_score,
            "" if k.average_handling_hours is None else k.average_handling_hours,
        ]

    return attachment(
        csv_bytes(header, [*map(row, table.units), row(table.total)]),
        filename,
        "text/csv; charset=utf-8",
    )


def _name(kind: str, p: Period) -> str:
    return f"kpi-{kind}-{p.start.astimezone(LOCAL):%Y%m%d}-{p.end.astimezone(LOCAL):%Y%m%d}.csv"


def _now() -> datetime:
    return datetime.now(LOCAL)


@router.get(
    "/departments",
    response_model=KpiTableOut,
    response_model_by_alias=True,
    summary="KPIs per department for a period (部门考核)",
    dependencies=[known_params("from", "to", "area", "format")],
)
async def department_kpis(
    db: Pool, who: Readers, within: Within, area: Area = None, format: Format = "json"
) -> Any:
    table = KpiTableOut.of(await handler.department_kpis(db, who, within, area=area, now=_now()))
    return _csv(table, "部门", _name("departments", within)) if format == "csv" else table


@router.get(
    "/areas",
    response_model=KpiTableOut,
    response_model_by_alias=True,
    summary="KPIs per area for a period, each covering its subtree (辖区考核)",
    dependencies=[known_params("from", "to", "area", "level", "format")],
)
async def area_kpis(
    db: Pool,
    who: Readers,
    within: Within,
    area: Area = None,
    level: Level = None,
    format: Format = "json",
) -> Any:
    table = KpiTableOut.of(
        await handler.area_kpis(db, who, within, area=area, level=level, now=_now())
    )
    return _csv(table, "辖区", _name("areas", within)) if format == "csv" else table


class RankedOut(BaseModel):
    position: int
    kpi: KpiOut


class ListedOut(BaseModel):
    unit: str
    name: str | None
    reasons: list[str]


class RankingOut(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    as_of: datetime
    unit: str
    by: list[str]
    ranking: list[RankedOut]
    red: list[ListedOut] = Field(description="红榜: every red criterion holds, no black one")
    black: list[ListedOut] = Field(description="黑榜: any black criterion holds")
    thresholds: dict[str, Any] | None = Field(
        description="the thresholds in use (none set: nobody is listed)"
    )


@router.get(
    "/ranking",
    response_model=RankingOut,
    response_model_by_alias=True,
    summary="Departments or areas ranked, with the red/black list (排名、红黑榜)",
    dependencies=[known_params("from", "to", "unit", "area", "level", "by")],
)
async def ranking(
    db: Pool,
    who: Supervisors,
    within: Within,
    area: Area = None,
    level: Level = None,
    unit: Annotated[Literal["department", "area"], Query()] = "department",
    by: Annotated[
        str | None,
        Query(
            max_length=300,
            description="metrics, comma-separated, e.g. response_rate,satisfaction_rate",
        ),
    ] = None,
) -> RankingOut:
    metrics = tuple(m.strip() for m in by.split(",")) if by else None
    r = await handler.ranking(
        db, who, within, unit=unit, area=area, level=level, by=metrics, now=_now()
    )
    names = {u.key: u.name for u in r.table.units}
    return RankingOut(
        start=within.start,
        end=within.end,
        as_of=r.table.as_of,
        unit=unit,
        by=list(r.by),
        ranking=[
            RankedOut(position=x.position, kpi=KpiOut.of(x.unit, names.get(x.unit), x.kpi))
            for x in r.ranked
        ],
        red=[
            ListedOut(unit=x.unit, name=names.get(x.unit), reasons=list(x.reasons))
            for x in r.listed.red
        ],
        black=[
            ListedOut(unit=x.unit, name=names.get(x.unit), reasons=list(x.reasons))
            for x in r.listed.black
        ],
        thresholds=None if r.thresholds is None else thresholds_to_data(r.thresholds),
    )


class ThresholdsOut(BaseModel):
    revision: int
    thresholds: dict[str, Any]
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, r: asyncpg.Record) -> ThresholdsOut:
        return cls(
            revision=r["revision"],
            thresholds=r["data"],
            created_at=r["created_at"],
            created_by=r["created_by"],
        )


@router.get(
    "/thresholds",
    response_model=ThresholdsOut,
    summary="The red/black list's thresholds in use (红黑榜阈值)",
)
async def get_thresholds(db: Pool, who: Anyone) -> ThresholdsOut:
    return ThresholdsOut.of(await handler.current_thresholds(db))


@router.put(
    "/thresholds",
    response_model=ThresholdsOut,
    summary="Replace the red/black list's thresholds (admin; the old ones are kept)",
)
async def put_thresholds(
    db: Pool,
    who: Admin,
    data: Annotated[dict[str, Any], Body(examples=[THRESHOLDS_EXAMPLE])],
) -> ThresholdsOut:
    return ThresholdsOut.of(await handler.replace_thresholds(db, data, who))
