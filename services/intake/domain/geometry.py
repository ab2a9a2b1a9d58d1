"""Geometry adapter (shapely): read and check a grid's GeoJSON boundary, test whether a point
lies in it, measure distances and overlaps in metres. WGS84, positions are [lon, lat].

Errors are ``Invalid`` (422, code ``invalid_boundary``) saying what is wrong, Chinese first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry import shape as to_shape
from shapely.geometry.base import BaseGeometry

from shared.errors import Invalid

MAX_POSITIONS = 20_000  # per boundary: a grid is a few streets, not a coastline
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQUATOR = 111_320.0

# GEOS's reasons, in Chinese for the people who draw the grids.
_REASONS_ZH = {
    "Self-intersection": "边界自相交",
    "Ring Self-intersection": "环自相交",
    "Hole lies outside shell": "内环（洞）在外环之外",
    "Holes are nested": "内环相互嵌套",
    "Interior is disconnected": "内部不连通",
    "Nested shells": "多个多边形相互嵌套",
    "Duplicate Rings": "存在重复的环",
    "Too few points": "点数过少",
    "Invalid Coordinate": "坐标无效",
    "Ring is not closed": "环未闭合",
}


@dataclass(frozen=True)
class Boundary:
    geojson: dict[str, Any]  # normalised: {"type": "Polygon"|"MultiPolygon", "coordinates"}
    bbox: tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat
    shape: BaseGeometry


def _bad(zh: str, en: str) -> Invalid:
    return Invalid(f"边界无效：{zh}", f"invalid boundary: {en}", code="invalid_boundary")


def _position(p: Any, where: str) -> tuple[float, float]:
    if (
        not isinstance(p, list | tuple)
        or len(p) not in (2, 3)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
    ):
        raise _bad(
            f"{where} 应为 [经度, 纬度] 数对，收到 {str(p)[:40]}",
            f"{where} must be a [lon, lat] pair, got {str(p)[:40]}",
        )
    lon, lat = float(p[0]), float(p[1])
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise _bad(
            f"{where} 的经度 {p[0]} 超出 −180…180", f"{where}: longitude {p[0]} outside -180..180"
        )
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise _bad(
            f"{where} 的纬度 {p[1]} 超出 −90…90", f"{where}: latitude {p[1]} outside -90..90"
        )
    return lon, lat


def _ring(ring: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(ring, list) or len(ring) < 4:
        raise _bad(f"{where} 至少需要 4 个点（首尾相同）", f"{where} needs at least 4 positions")
    points = [_position(p, f"{where} 第 {i + 1} 点") for i, p in enumerate(ring)]
    if points[0] != points[-1]:
        raise _bad(f"{where} 未闭合（首点须与末点相同）", f"{where} is not closed (first != last)")
    return points


def _polygon(rings: Any, where: str) -> list[list[tuple[float, float]]]:
    if not isinstance(rings, list) or not rings:
        raise _bad(
            f"{where} 的 coordinates 应为由环组成的数组",
            f"{where}: coordinates must be a list of rings",
        )
    return [_ring(r, f"{where}第 {i + 1} 环" if i else f"{where}外环") for i, r in enumerate(rings)]


def _reason_zh(reason: str) -> str:
    head = re.split(r"\[", reason, maxsplit=1)[0]
    where = reason[len(head) :]
    return _REASONS_ZH.get(head, head) + (f"（位置 {where}）" if where else "")


def parse_boundary(data: Any) -> Boundary:
    """A GeoJSON Polygon or MultiPolygon (or a Feature holding one), checked and normalised."""
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = data.get("geometry")
    if not isinstance(data, dict):
        raise _bad(
            "须为 GeoJSON 对象（Polygon 或 MultiPolygon）",
            "must be a GeoJSON object (Polygon or MultiPolygon)",
        )
    kind, coords = data.get("type"), data.get("coordinates")
    if kind == "Polygon":
        polygons = [_polygon(coords, "")]
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise _bad(
                "MultiPolygon 的 coordinates 应为由多边形组成的非空数组",
                "MultiPolygon coordinates must be a non-empty list of polygons",
            )
        polygons = [_polygon(p, f"第 {i + 1} 个多边形") for i, p in enumerate(coords)]
    else:
        raise _bad(
            f"类型须为 Polygon 或 MultiPolygon，收到 {str(kind)[:40]}",
            f"type must be Polygon or MultiPolygon, got {str(kind)[:40]}",
        )
    if sum(len(r) for p in polygons for r in p) > MAX_POSITIONS:
        raise _bad(f"点数超过 {MAX_POSITIONS}", f"more than {MAX_POSITIONS} positions")
    shapes = [Polygon(p[0], p[1:]) for p in polygons]
    shape: BaseGeometry = shapes[0] if kind == "Polygon" else MultiPolygon(shapes)
    reason = shapely.is_valid_reason(shape)
    if reason != "Valid Geometry":
        raise _bad(_reason_zh(reason), reason)
    if shape.area <= 0:
        raise _bad("面积为零", "the area is zero")
    normal = [[[list(pt) for pt in ring] for ring in p] for p in polygons]
    geojson = {"type": kind, "coordinates": normal[0] if kind == "Polygon" else normal}
    min_lon, min_lat, max_lon, max_lat = shape.bounds
    return Boundary(geojson, (min_lon, min_lat, max_lon, max_lat), shape)


def shape_of(geojson: dict[str, Any]) -> BaseGeometry:
    """A stored (already checked) boundary as a shape."""
    return to_shape(geojson)


def covers(shape: BaseGeometry, lon: float, lat: float) -> bool:
    """The point lies inside the boundary or on its edge."""
    return shape.covers(Point(lon, lat))


def _metres(shape: BaseGeometry, lon: float, lat: float) -> BaseGeometry:
    """``shape`` in local metres around (lon, lat) — an equirectangular approximation,
    good to a fraction of a percent over a district."""
    return affinity.scale(
        shape,
        xfact=_M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat)),
        yfact=_M_PER_DEG_LAT,
        origin=(lon, lat),
    )


def distance_m(shape: BaseGeometry, lon: float, lat: float) -> float:
    """Metres from the point to the boundary's area (0 when inside)."""
    return _metres(shape, lon, lat).distance(_metres(Point(lon, lat), lon, lat))


def overlap_m2(a: BaseGeometry, b: BaseGeometry) -> float:
    """Square metres the two areas share (shared edges count nothing)."""
    if not a.intersects(b):
        return 0.0
    common = a.intersection(b)
    c = common.centroid if not common.is_empty else None
    if c is None or common.area == 0:
        return 0.0
    return _metres(common, c.x, c.y).area


def area_m2(shape: BaseGeometry) -> float:
    c = shape.centroid
    return _metres(shape, c.x, c.y).area
