"""KPIs (考核) as a caller may see them: per department, per area, the ranking and the red/black
list (红黑榜), and the list's thresholds (admin). The figures are ``domain.kpi``'s and
``domain.ranking``'s definitions over the facts ``repository.kpi`` gathers.

Scope: community, street, district and supervisors see the assignments on cases in their
subtree (an ``area`` filter must lie inside it); department staff see only their own
department's assignments, wherever the cases are (an ``area`` filter narrows them).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

import asyncpg
import structlog

from services.tracking.domain.kpi import Kpi, Period, add_kpis, group_kpis, is_overdue
from services.tracking.domain.ranking import (
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
from services.tracking.repository import kpi as kpi_repo
from shared.auth import Principal, Role
from shared.clock import BEIJING
from shared.errors import Invalid, NotFound
from shared.db import Conn

log = structlog.get_logger()

LOCAL = BEIJING  # the district's days (the kept sums are per day of it)
MAX_PERIOD = timedelta(days=366)  # a year, leap years included
LEVELS = {"district": 1, "street": 2, "community": 3, "grid": 4}
_AREA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}(/[A-Za-z0-9][A-Za-z0-9_-]{0,31}){0,5}$")


def check_period(period: Period) -> None:
    if period.end - period.start > MAX_PERIOD:
        raise Invalid(
            f"to：统计区间过长（最长 {MAX_PERIOD.days} 天）",
            f"to: the period is too long (at most {MAX_PERIOD.days} days)",
            code="period_too_long",
        )


def level_depth(level: str) -> int:
    if level not in LEVELS:
        raise Invalid(
            f"level：未知层级“{level}”（可用：{'、'.join(LEVELS)}）",
            f"level: unknown level '{level}' (known: {', '.join(LEVELS)})",
            code="invalid_level",
        )
    return LEVELS[level]


class Scope(NamedTuple):
    area_roots: tuple[str, ...] | None  # None: anywhere
    department_id: str | None  # only this department's assignments


async def caller_scope(conn: Conn, who: Principal, area: str | None) -> Scope:
    """The caller's own scope, narrowed by ``area``; an area outside it is refused (403), one
    that is malformed (422) or that no case has ever come from (404) too."""
    if area is not None:
        if not _AREA.match(area):
            raise Invalid(
                f"area：辖区编码格式无效“{area}”（如 YA/YA01）",
                f"area: not an area path '{area}' (e.g. YA/YA01)",
                code="invalid_area",
            )
        if who.role is not Role.DEPARTMENT:
            who.require_area(area)
        if not await kpi_repo.area_known(conn, area):
            raise NotFound(
                f"area：未知辖区 {area}（督办系统中没有该辖区的案件）",
                f"area: unknown area {area} (tracking knows no case there)",
                code="area_not_found",
            )
    if who.role is Role.DEPARTMENT:
        return Scope((area,) if area else None, who.department_id)
    return Scope((area,) if area else who.areas, None)


@dataclass(frozen=True)
class Unit:
    key: str  # department id or area path
    name: str | None  # the department's name (areas: none, tracking has no tree)
    kpi: Kpi


@dataclass(frozen=True)
class KpiTable:
    period: Period
    as_of: datetime
    units: list[Unit]
    total: Kpi


Range = tuple[date, date, int]  # [from, to) and +1 (add) or -1 (take away)


class Split(NamedTuple):
    """A period cut where the kept sums can answer (migration 0008): months and days (Beijing
    time) to add or take away, and the instants of the part-days at the edges."""

    months: tuple[Range, ...]  # firsts of months
    days: tuple[Range, ...]
    whole: tuple[datetime, datetime] | None  # the instants the months and days cover
    edges: tuple[tuple[datetime, datetime], ...]  # part-days, read from the facts


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=LOCAL)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def split_period(period: Period, today: date | None = None) -> Split:
    """Whole months from the month sums; of a month the period covers in part, its days —
    or the month less the days outside the period, when fewer day sums are read that way
    (days after ``today`` have none yet: e.g. this month so far is this month's sum)."""
    start, end = period.start.astimezone(LOCAL), period.end.astimezone(LOCAL)
    d0 = start.date() if start == _midnight(start.date()) else start.date() + timedelta(days=1)
    d1 = end.date()
    if d0 >= d1:  # no whole day inside: all from the facts
        return Split((), (), None, ((period.start, period.end),))

    def read(a: date, b: date) -> int:  # how many days of [a, b) may have sums
        last = b if today is None else min(b, today + timedelta(days=1))
        return max((last - a).days, 0)

    months: list[Range] = []
    days: list[Range] = []
    month = d0.replace(day=1)
    while month < d1:
        following = _next_month(month)
        a, b = max(d0, month), min(d1, following)
        if (a, b) == (month, following):
            months.append((month, following, 1))
        elif 1 + read(month, a) + read(b, following) < read(a, b):
            months.append((month, following, 1))
            days += [(x, y, -1) for x, y in ((month, a), (b, following)) if x < y]
        else:
            days.append((a, b, 1))
        month = following
    edges = tuple(
        (a, b) for a, b in ((period.start, _midnight(d0)), (_midnight(d1), period.end)) if a < b
    )
    return Split(tuple(months), tuple(days), (_midnight(d0), _midnight(d1)), edges)


def _summed(r: asyncpg.Record) -> Kpi:
    return Kpi(**{name: r[name] for name in kpi_repo.SUMS}, handling_total=r["handling"])


async def _kpis(
    pool: asyncpg.Pool,
    who: Principal,
    period: Period,
    area: str | None,
    now: datetime,
    key: Callable[[str, str], str],
) -> tuple[dict[str, Kpi], dict[str, str]]:
    """The figures per ``key(department_id, area_path)`` and the departments' names.

    Whole days come from the sums kept as the facts are recorded; the part-days at the edges
    and "overdue now" (it depends on the moment asked) from the facts — the latter only of the
    assignments that can still be overdue. The sums count every fact recorded; the facts
    those stamped by ``now``: the same for a caller asking now (the API), unless a producer's
    clock ran ahead of ours."""
    check_period(period)
    cut = split_period(period, today=now.astimezone(LOCAL).date())
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        scope = await caller_scope(conn, who, area)
        sums = await kpi_repo.summed(
            conn,
            months=cut.months,
            days=cut.days,
            area_roots=scope.area_roots,
            department_id=scope.department_id,
        )
        facts: list[kpi_repo.DepartmentFacts] = []
        for a, b in cut.edges:
            facts += await kpi_repo.assignment_facts(
                conn,
                start=a,
                end=b,
                now=now,
                area_roots=scope.area_roots,
                department_id=scope.department_id,
            )
        open_facts = (
            []
            if cut.whole is None
            else await kpi_repo.open_assignment_facts(
                conn,
                start=cut.whole[0],
                end=cut.whole[1],
                now=now,
                area_roots=scope.area_roots,
                department_id=scope.department_id,
            )
        )
    units: dict[str, Kpi] = defaultdict(Kpi)
    names: dict[str, str] = {}
    for row in sums:
        k = key(row["department_id"], row["area_path"])
        units[k] = add_kpis(units[k], _summed(row))
        if row["department_name"]:
            names[row["department_id"]] = row["department_name"]
    grouped = group_kpis(
        [r.facts for r in facts], period, now, lambda f: key(f.department_id, f.area_path)
    )
    for unit, v in grouped.items():
        units[str(unit)] = add_kpis(units[str(unit)], v)
    names.update({r.facts.department_id: r.department_name for r in facts if r.department_name})
    for r in open_facts:  # only what depends on the moment asked
        f = r.facts
        if f.dispatched_at in period and f.dispatched_at <= now and is_overdue(f, now):
            k = key(f.department_id, f.area_path)
            units[k] = replace(units[k], overdue_now=units[k].overdue_now + 1)
    return {k: units[k] for k in sorted(units) if units[k].received}, names


def _total(units: dict[str, Kpi]) -> Kpi:
    total = Kpi()
    for v in units.values():
        total = add_kpis(total, v)
    return total


async def department_kpis(
    pool: asyncpg.Pool, who: Principal, period: Period, *, area: str | None, now: datetime
) -> KpiTable:
    units, names = await _kpis(pool, who, period, area, now, lambda dept, _: dept)
    return KpiTable(
        period, now, [Unit(k, names.get(k), v) for k, v in units.items()], _total(units)
    )


async def area_kpis(
    pool: asyncpg.Pool,
    who: Principal,
    period: Period,
    *,
    area: str | None,
    level: str | None,
    now: datetime,
) -> KpiTable:
    """Per area ``level`` (default: one below ``area``, or the caller's own area), each
    covering its subtree; a level above the area asked for is refused."""
    root = area or (who.areas[0] if len(who.areas) == 1 else None)
    root_depth = len(root.split("/")) if root else 1
    depth = level_depth(level) if level else min(root_depth + 1, LEVELS["grid"])
    if depth < root_depth:
        raise Invalid(
            f"level：层级须不高于所查辖区 {root}",
            f"level: must not be above the area asked for ({root})",
            code="invalid_level",
        )
    units, _ = await _kpis(
        pool, who, period, area, now, lambda _, path: "/".join(path.split("/")[:depth])
    )
    return KpiTable(period, now, [Unit(k, None, v) for k, v in units.items()], _total(units))


@dataclass(frozen=True)
class Ranking:
    table: KpiTable
    by: tuple[str, ...]
    ranked: list[Ranked]
    thresholds: Thresholds | None
    listed: RedBlackList


async def ranking(
    pool: asyncpg.Pool,
    who: Principal,
    period: Period,
    *,
    unit: str,
    area: str | None,
    level: str | None,
    by: tuple[str, ...] | None,
    now: datetime,
) -> Ranking:
    """Departments (``unit=department``) or areas (``unit=area``) best first, and the
    red/black list by the thresholds in use (none set: nobody is listed)."""
    for metric in by or ():
        if metric not in METRICS:
            raise Invalid(
                f"by：未知指标“{metric}”（可用：{'、'.join(METRICS)}）",
                f"by: unknown metric '{metric}' (known: {', '.join(METRICS)})",
                code="invalid_metric",
            )
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
        raise NotFound(
            "尚未设置红黑榜阈值",
            "no red/black list thresholds have been set",
            code="thresholds_not_set",
        )
    return row


async def replace_thresholds(pool: asyncpg.Pool, data: Any, who: Principal) -> asyncpg.Record:
    """Validate and store new thresholds (the old ones stay as history)."""
    thresholds = thresholds_from_data(data)  # Invalid, naming the field
    async with pool.acquire() as conn, conn.transaction():
        row = await kpi_repo.add_thresholds(conn, thresholds_to_data(thresholds), who.subject)
    log.info("kpi_thresholds_replaced", revision=row["revision"], by=who.subject)
    return row


async def seed_thresholds(conn: Conn, data: dict[str, Any], by: str) -> None:
    """The demo seed: thresholds only if none are set. Idempotent."""
    thresholds = thresholds_from_data(data)
    async with conn.transaction():
        await kpi_repo.lock_thresholds(conn)
        if await kpi_repo.current_thresholds(conn) is None:
            await kpi_repo.add_thresholds(conn, thresholds_to_data(thresholds), by)
