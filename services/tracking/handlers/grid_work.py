"""The seeds' counts as a caller may see them (``domain.grid_work``): 随手做 / 小事不出网格 per
grid worker and per area, and the cases per source (案件来源) per area, for a period.

Scope as the KPIs': community, street, district and supervisors see the cases in their subtree
(an ``area`` filter must lie in it). The level is the KPIs' too: one below ``area`` (or the
caller's own area) unless given, never above the area asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.tracking.domain.grid_work import (
    GridWork,
    WorkerWork,
    grid_work_by_area,
    grid_work_by_worker,
    grid_work_total,
    sources_by_area,
    sources_total,
)
from services.tracking.domain.kpi import Period
from services.tracking.handlers.kpi import LEVELS, caller_scope, check_period, level_depth
from services.tracking.repository import grid_work as repo
from shared.auth import Principal
from shared.contract.values import CaseSource
from shared.errors import Invalid


def depth_of(who: Principal, area: str | None, level: str | None) -> int:
    root = area or (who.areas[0] if len(who.areas) == 1 else None)
    root_depth = len(root.split("/")) if root else 1
    depth = level_depth(level) if level else min(root_depth + 1, LEVELS["grid"])
    if depth < root_depth:
        raise Invalid(
            f"level：层级须不高于所查辖区 {root}",
            f"level: must not be above the area asked for ({root})",
            code="invalid_level",
        )
    return depth


@dataclass(frozen=True)
class GridWorkTable:
    period: Period
    as_of: datetime
    depth: int
    areas: dict[str, GridWork]
    workers: list[WorkerWork]
    total: GridWork


async def grid_work(
    pool: asyncpg.Pool,
    who: Principal,
    period: Period,
    *,
    area: str | None,
    level: str | None,
    now: datetime,
) -> GridWorkTable:
    """Closings in the period per area at ``level`` and per grid worker (随手做)."""
    check_period(period)
    depth = depth_of(who, area, level)
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        scope = await caller_scope(conn, who, area)
        counts = await repo.closing_counts(
            conn, start=period.start, end=period.end, now=now, roots=scope.area_roots
        )
    return GridWorkTable(
        period,
        now,
        depth,
        grid_work_by_area(counts, depth),
        grid_work_by_worker(counts),
        grid_work_total(counts),
    )


@dataclass(frozen=True)
class SourceTable:
    period: Period
    as_of: datetime
    depth: int
    areas: dict[str, dict[CaseSource, int]]
    total: dict[CaseSource, int]


async def sources(
    pool: asyncpg.Pool,
    who: Principal,
    period: Period,
    *,
    area: str | None,
    level: str | None,
    now: datetime,
) -> SourceTable:
    """The cases reported in the period per source, per area at ``level``."""
    check_period(period)
    depth = depth_of(who, area, level)
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        scope = await caller_scope(conn, who, area)
        counts = await repo.source_counts(
            conn, start=period.start, end=period.end, now=now, roots=scope.area_roots
        )
    return SourceTable(period, now, depth, sources_by_area(counts, depth), sources_total(counts))
