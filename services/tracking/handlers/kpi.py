"""KPIs (考核) as a caller may see them: per department, per area, the ranking and the red/black
list (红黑榜), and the list's thresholds (admin). The figures are ``sla.kpi``'s and
``sla.ranking``'s definitions over the facts ``repository.kpi`` gathers.

Scope: community, street, district and supervisors see the assignments on cases in their
subtree (an ``area`` filter must lie inside it); department staff see only their own
department's assignments, wherever the cases are (an ``area`` filter narrows them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
import structlog

from services.tracking.repository import kpi as kpi_repo
from services.tracking.sla.kpi import Kpi, Period, compute_kpi, group_kpis
from services.tracking.sla.ranking import (
    DEFAULT_RANKING,
    METRICS,
    Ranked,
    RedBlackList,
    Thresholds,
    rank,
    red_black_list,
    thresholds_from_data,
    thresholds_to_data,
)
from shared.auth import Principal, Role
from shared.errors import Invalid, NotFound

log = structlog.get_logger()

MAX_PERIOD = timedelta(days=366)  # a year, leap years included
LEVELS = {"district": 1, "street": 2, "community": 3, "grid": 4}
_AREA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}(/[A-Za-z0-9][A-Za-z0-9_-]{0,31}){0,5}$")


def check_period(period: Period) -> None:
    if period.end - period.start > MAX_PERIOD:
        raise Invalid(f"to：统计区间过长（最长 {MAX_PERIOD.days} 天）",
                      f"to: the period is too long (at most {MAX_PERIOD.days} days)",
                      code="period_too_long")


def level_depth(level: str) -> int:
    if level not in LEVELS:
        raise Invalid(f"level：未知层级“{level}”（可用：{'、'.join(LEVELS)}）",
                      f"level: unknown level '{level}' (known: {', '.join(LEVELS)})",
                      code="invalid_level")
    return LEVELS[level]


class Scope(NamedTuple):
    area_roots: tuple[str, ...] | None  # None: anywhere
    department_id: str | None           # only this department's assignments


async def _scope(conn: asyncpg.Connection, who: Principal, area: str | None) -> Scope:
    """The caller's own scope, narrowed by ``area``; an area outside it is refused (403), one
    that is malformed (422) or that no case has ever come from (404) too."""
    if area is not None:
        if not _AREA.match(area):
            raise Invalid(f"area：辖区编码格式无效“{area}”（如 YA/YA01）",
                          f"area: not an area path '{area}' (e.g. YA/YA01)", code="invalid_area")
        if who.role is not Role.DEPARTMENT:
            who.require_area(area)
        if not await kpi_repo.area_known(conn, area):
            raise NotFound(f"area：未知辖区 {area}（督办系统中没有该辖区的案件）",
                           f"area: unknown area {area} (tracking knows no case there)",
                           code="area_not_found")
    if who.role is Role.DEPARTMENT:
        return Scope((area,) if area else None, who.department_id)
    return Scope((area,) if area else who.areas, None)


@dataclass(frozen=True)
class Unit:
    key: str           # department id or area path
    name: str | None   # the department's name (areas: none, tracking has no tree)
    kpi: Kpi


@dataclass(frozen=True)
class KpiTable:
    period: Period
    as_of: datetime
    units: list[Unit]
    total: Kpi


async def _facts(pool: asyncpg.Pool, who: Principal, period: Period, area: str | None,
                 now: datetime) -> list[kpi_repo.DepartmentFacts]:
    check_period(period)
    async with pool.acquire() as conn, conn.transaction(readonly=True,
                                                         isolation="repeatable_read"):
        scope = await _scope(conn, who, area)
        return await kpi_repo.assignment_facts(
            conn, start=period.start, end=period.end, now=now, area_roots=scope.area_roots,
            department_id=scope.department_id)


async def department_kpis(pool: asyncpg.Pool, who: Principal, period: Period, *,
                          area: str | None, now: datetime) -> KpiTable:
    rows = await _facts(pool, who, period, area, now)
    names = {r.facts.department_id: r.department_name for r in rows if r.department_name}
    facts = [r.facts for r in rows]
    grouped = group_kpis(facts, period, now, lambda f: f.department_id)
    return KpiTable(period, now, [Unit(str(k), names.get(str(k)), v) for k, v in grouped.items()],
                    compute_kpi(facts, period, now))


async def area_kpis(pool: asyncpg.Pool, who: Principal, period: Period, *, area: str | None,
                    level: str | None, now: datetime) -> KpiTable:
    """Per area ``level`` (default: one below ``area``, or the caller's own area), each
    covering its subtree; a level above the area asked for is refused."""
    root = area or (who.areas[0] if len(who.areas) == 1 else None)
    root_depth = len(root.split("/")) if root else 1
    depth = level_depth(level) if level else min(root_depth + 1, LEVELS["grid"])
    if depth < root_depth:
        raise Invalid(f"level：层级须不高于所查辖区 {root}",
                      f"level: must not be above the area asked for ({root})",
                      code="invalid_level")
    rows = await _facts(pool, who, period, area, now)
    facts = [r.facts for r in rows]
    grouped = group_kpis(facts, period, now, lambda f: "/".join(f.area_path.split("/")[:depth]))
    return KpiTable(period, now, [Unit(str(k), None, v) for k, v in grouped.items()],
                    compute_kpi(facts, period, now))


@dataclass(frozen=True)
class Ranking:
    table: KpiTable
    by: tuple[str, ...]
    ranked: list[Ranked]
    thresholds: Thresholds | None
    listed: RedBlackList


async def ranking(pool: asyncpg.Pool, who: Principal, period: Period, *, unit: str,
                  area: str | None, level: str | None, by: tuple[str, ...] | None,
                  now: datetime) -> Ranking:
    """Departments (``unit=department``) or areas (``unit=area``) best first, and the
    red/black list by the thresholds in use (none set: nobody is listed)."""
    for metric in by or ():
        if metric not in METRICS:
            raise Invalid(f"by：未知指标“{metric}”（可用：{'、'.join(METRICS)}）",
                          f"by: unknown metric '{metric}' (known: {', '.join(METRICS)})",
                          code="invalid_metric")
    if unit == "department":
        table = await department_kpis(pool, who, period, area=area, now=now)
    else:
        table = await area_kpis(pool, who, period, area=area, level=level, now=now)
    async with pool.acquire() as conn:
        row = await kpi_repo.current_thresholds(conn)
    thresholds = thresholds_from_data(row["data"]) if row else None
    kpis = {u.key: u.kpi for u in table.units}
    order = by or DEFAULT_RANKING
    ranked = rank(kpis, order, min_received=thresholds.min_received if thresholds else 1)
    listed = red_black_list(kpis, thresholds) if thresholds else RedBlackList((), ())
    return Ranking(table, tuple(order), ranked, thresholds, listed)


# --- thresholds (admin) ------------------------------------------------------------------------


async def current_thresholds(pool: asyncpg.Pool) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await kpi_repo.current_thresholds(conn)
    if row is None:
        raise NotFound("尚未设置红黑榜阈值", "no red/black list thresholds have been set",
                       code="thresholds_not_set")
    return row


async def replace_thresholds(pool: asyncpg.Pool, data: Any, who: Principal) -> asyncpg.Record:
    """Validate and store new thresholds (the old ones stay as history)."""
    thresholds = thresholds_from_data(data)  # Invalid, naming the field
    async with pool.acquire() as conn, conn.transaction():
        row = await kpi_repo.add_thresholds(conn, thresholds_to_data(thresholds), who.subject)
    log.info("kpi_thresholds_replaced", revision=row["revision"], by=who.subject)
    return row


async def seed_thresholds(conn: asyncpg.Connection, data: dict[str, Any], by: str) -> None:
    """The demo seed: thresholds only if none are set. Idempotent."""
    thresholds = thresholds_from_data(data)
    async with conn.transaction():
        await kpi_repo.lock_thresholds(conn)
        if await kpi_repo.current_thresholds(conn) is None:
            await kpi_repo.add_thresholds(conn, thresholds_to_data(thresholds), by)
