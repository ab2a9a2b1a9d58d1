"""Intake's demo data: the fictional 榆安区's jurisdiction tree (shared/demo.py), its grid
boundaries and grid workers, loaded idempotently by ``seed_demo``.

The boundaries are a deterministic lattice around (lon 112.55, lat 37.87): the four streets
are the quadrants (迎泽 north-west, 锦园 north-east, 东湖 south-west, 北城 south-east), each
street's four communities its quadrants, each community's grids a 3 × 3 block read row by
row from the north-west. A grid is a rectangle of about 350 m × 330 m; neighbours share
their edges.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


from services.intake import repository
from services.intake.domain import geometry
from services.intake.repository import jurisdiction
from shared import db, demo
from shared.settings import BaseServiceSettings
from shared.db import Conn

CENTRE = (112.55, 37.87)  # lon, lat
CELL = (0.004, 0.003)  # degrees of lon, lat per grid
_SIDE = 12  # grids across the district (2 streets × 2 communities × 3 grids)

# (subject, grid code): the demo grid workers of shared.demo.USERS.
GRID_WORKERS = [("wangfang", "YA0101-03"), ("wangfang", "YA0101-04"), ("lihua", "YA0302-04")]


def _cell(code: str) -> tuple[int, int]:
    """(column from the west, row from the north) of a demo grid such as ``YA0302-04``."""
    street, community, grid = int(code[2:4]) - 1, int(code[4:6]) - 1, int(code[7:]) - 1
    col = (street % 2) * 6 + (community % 2) * 3 + grid % 3
    row = (street // 2) * 6 + (community // 2) * 3 + grid // 3
    return col, row


def rectangle(code: str) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a demo grid."""
    col, row = _cell(code)
    west = CENTRE[0] - _SIDE / 2 * CELL[0] + col * CELL[0]
    north = CENTRE[1] + _SIDE / 2 * CELL[1] - row * CELL[1]
    return (round(west, 6), round(north - CELL[1], 6), round(west + CELL[0], 6), round(north, 6))


def boundary(code: str) -> dict[str, Any]:
    """The demo grid's boundary as a GeoJSON Polygon (counter-clockwise, closed)."""
    w, s, e, n = rectangle(code)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def centre(code: str) -> tuple[float, float]:
    """(lat, lon) of the middle of a demo grid — a point a test can report from."""
    w, s, e, n = rectangle(code)
    return round((s + n) / 2, 6), round((w + e) / 2, 6)


async def seed(conn: Conn) -> None:
    """Boundaries for every demo grid and the demo grid workers (idempotent: unchanged rows
    are left alone). Runs inside the caller's transaction, after the tree is loaded."""
    now = datetime.now(UTC)
    for area in demo.areas():
        if area.level == "grid":
            b = geometry.parse_boundary(boundary(area.code))
            await jurisdiction.set_boundary(conn, area.code, b.geojson, b.bbox, now)
    for subject, grid in GRID_WORKERS:
        await jurisdiction.add_worker(conn, grid, subject)


async def seed_demo(settings: BaseServiceSettings) -> None:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        async with conn.transaction():
            await repository.upsert_areas(
                conn, [(a.code, a.name, a.level, a.parent, a.path) for a in demo.areas()]
            )
            await seed(conn)
    finally:
        await conn.close()
