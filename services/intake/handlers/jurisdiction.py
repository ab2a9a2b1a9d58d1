"""Use cases of the jurisdiction tree: each one transaction — lock, read, let the domain
decide, write. Also where a reported point finds its grid (网格定位)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.intake.domain import jurisdiction as domain
from services.intake.domain import geometry
from services.intake.repository import jurisdiction as repository
from services.intake.domain.jurisdiction import Area, AreaSpec
from services.intake.repository.jurisdiction import AreaRow
from shared.auth import Principal, Role
from shared.errors import Conflict, DomainError, Invalid, NotFound
from shared.contract import Location
from shared.db import Conn

# Digitised borders of neighbouring grids rarely meet exactly: slivers up to this share of
# the smaller grid are tolerated (a point in one is placed by the lowest code).
OVERLAP_TOLERANCE = 0.01


@dataclass(frozen=True)
class ImportRow:
    spec: AreaSpec
    boundary: dict[str, Any] | None = None


def _not_found(code: str) -> NotFound:
    return NotFound(f"区域“{code}”不存在", f"area '{code}' not found", code="area_not_found")


async def _row(conn: Conn, code: str) -> AreaRow:
    row = await repository.get_area(conn, code)
    if row is None:
        raise _not_found(code)
    return row


# --- reading ------------------------------------------------------------------------------


async def get_area(pool: asyncpg.Pool, code: str) -> AreaRow:
    async with pool.acquire() as conn:
        return await _row(conn, code)


async def locate(conn: Conn, lat: float, lon: float) -> tuple[str, str | None] | None:
    """(grid code, micro-grid code or None) whose boundary holds the point, or None."""
    hits = [
        r.area
        for r in await repository.bounded_at(conn, lon, lat)
        if geometry.covers(geometry.shape_of(r.boundary or {}), lon, lat)
    ]
    return domain.pick_grid(hits)


async def locate_area(pool: asyncpg.Pool, lat: float, lon: float) -> tuple[AreaRow, AreaRow | None]:
    async with pool.acquire() as conn:
        found = await locate(conn, lat, lon)
        if found is None:
            raise NotFound(
                "该位置不在任何网格内",
                f"no grid holds the point (lat {lat}, lon {lon})",
                code="point_outside_grids",
            )
        grid_code, micro_code = found
        return await _row(conn, grid_code), (await _row(conn, micro_code) if micro_code else None)


async def locate_grid(conn: Conn, lat: float, lon: float) -> str | None:
    found = await locate(conn, lat, lon)
    return found[0] if found else None


async def place_report(conn: Conn, grid_code: str | None, location: Location) -> str:
    """The grid a new report belongs to (called inside the report's transaction): the named
    grid, or the one whose boundary holds the point. Refuses a point outside every grid when
    no grid is named, and a point that lies in another grid than the named, bounded one
    (beyond GPS tolerance). An unknown named grid is returned as is (the caller refuses it)."""
    if location.lat is None or location.lon is None:
        if grid_code is None:  # the API requires one of the two; a guard for other callers
            raise Invalid(
                "须提供网格编码或位置坐标",
                "give a grid code or a point",
                code="grid_or_point_required",
            )
        return grid_code
    lat, lon = location.lat, location.lon
    found = await locate_grid(conn, lat, lon)
    named = await repository.get_area(conn, grid_code) if grid_code else None
    boundary = named.boundary if named is not None else None
    named_bounded = boundary is not None
    near = (
        boundary is not None
        and geometry.distance_m(geometry.shape_of(boundary), lon, lat) <= domain.GPS_TOLERANCE_M
    )
    return domain.choose_grid(
        grid_code, found, named_bounded=named_bounded, near_named=near, lat=lat, lon=lon
    )


async def list_workers(pool: asyncpg.Pool, who: Principal, code: str) -> tuple[AreaRow, list[str]]:
    """网格员 of a grid: the administrator sees every grid, others the grids in their scope."""
    async with pool.acquire() as conn:
        row = await _row(conn, code)
        if who.role is not Role.ADMIN:
            who.require_area(row.area.path)
        domain.check_bounded(row.area, "网格员", "grid workers")
        return row, await repository.list_workers(conn, code)


# --- changing the tree (administrator) -----------------------------------------------------


async def _put(conn: Conn, spec: AreaSpec, now: datetime) -> tuple[Area, str]:
    existing = await repository.get_area(conn, spec.code)
    parent = await repository.get_area(conn, spec.parent_code) if spec.parent_code else None
    attached = await repository.attached(conn, spec.code) if existing else domain.Attached()
    area = domain.place(
        spec,
        existing=existing.area if existing else None,
        parent=parent.area if parent else None,
        attached=attached,
    )
    return area, await repository.save_area(conn, area, now)


async def _set_boundary(conn: Conn, code: str, data: Any, now: datetime) -> bool:
    boundary = geometry.parse_boundary(data)
    row = await _row(conn, code)
    domain.check_bounded(row.area, "边界", "boundaries")
    if row.area.level is domain.Level.GRID:  # grids tile the district: no two may overlap
        mine = geometry.area_m2(boundary.shape)
        for other in await repository.grids_meeting_box(conn, boundary.bbox, exclude=code):
            shape = geometry.shape_of(other.boundary or {})
            shared = geometry.overlap_m2(boundary.shape, shape)
            if shared > OVERLAP_TOLERANCE * min(mine, geometry.area_m2(shape)):
                raise Conflict(
                    f"网格“{code}”的边界与网格“{other.area.code}”重叠约 {shared:.0f} 平方米",
                    f"the boundary of grid '{code}' overlaps grid '{other.area.code}' "
                    f"by about {shared:.0f} m²",
                    code="boundary_overlaps",
                )
    return await repository.set_boundary(conn, code, boundary.geojson, boundary.bbox, now)


async def put_area(pool: asyncpg.Pool, spec: AreaSpec) -> tuple[AreaRow, str]:
    """Create or change one node; returns it and 'created' / 'updated' / 'unchanged'."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_tree(conn)
        _, outcome = await _put(conn, spec, now)
        return await _row(conn, spec.code), outcome


async def put_boundary(pool: asyncpg.Pool, code: str, data: Any) -> AreaRow:
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_tree(conn)
        await _set_boundary(conn, code, data, now)
        return await _row(conn, code)


async def import_tree(pool: asyncpg.Pool, rows: Sequence[ImportRow]) -> Counter[str]:
    """Load many nodes (and their boundaries) in one transaction: all or nothing. Each row
    follows the rules of PUT /areas/{code}; an error names the row's code."""
    now = datetime.now(UTC)
    boundaries = {r.spec.code: r.boundary for r in rows if r.boundary is not None}
    outcomes: Counter[str] = Counter()
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_tree(conn)
        for spec in domain.import_order([r.spec for r in rows]):
            try:
                _, outcome = await _put(conn, spec, now)
                if (
                    spec.code in boundaries
                    and await _set_boundary(conn, spec.code, boundaries[spec.code], now)
                    and outcome == "unchanged"
                ):
                    outcome = "updated"
            except DomainError as exc:
                raise type(exc)(
                    f"导入失败，区域“{spec.code}”：{exc.zh}",
                    f"import failed at area '{spec.code}': {exc.en}",
                    code=exc.code,
                ) from exc
            outcomes[outcome] += 1
    return outcomes


async def put_workers(
    pool: asyncpg.Pool, code: str, subjects: list[str]
) -> tuple[AreaRow, list[str]]:
    """Assign exactly these grid workers (网格员) to the grid."""
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_tree(conn)
        row = await _row(conn, code)
        domain.check_bounded(row.area, "网格员", "grid workers")
        await repository.replace_workers(conn, code, sorted(set(subjects)))
        return row, await repository.list_workers(conn, code)
