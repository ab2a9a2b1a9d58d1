"""Positions from Chinese map apps (坐标系转换): a pin from 高德/腾讯/微信 is in GCJ-02 (国测局
坐标, "火星坐标"), one from 百度 in BD-09; both are 300–600 m off WGS-84 — more than a grid is
wide. The client declares what it sends; intake converts to WGS-84 before locating the grid
and stores WGS-84 (the grid boundaries are WGS-84).

An adapter over PyPI ``prcoords`` (CC0): its iterative inverses ("bored" functions) come back
within a millimetre of the WGS-84 point (coordTransform's one-step inverse is ~2 m off in
Shanxi). Outside China GCJ-02 and WGS-84 are the same: a point there is returned as sent for
GCJ-02 (BD-09 keeps only Baidu's own fixed offset removed).
"""

from __future__ import annotations

import warnings
from enum import StrEnum

import prcoords


class CoordSystem(StrEnum):
    """The coordinate system a client declares for its lat/lon."""

    WGS84 = "wgs84"  # GPS, 天地图 (CGCS2000 is within centimetres of WGS-84)
    GCJ02 = "gcj02"  # 国测局坐标: 高德, 腾讯, 微信 (wx.getLocation type=gcj02), Apple Maps in China
    BD09 = "bd09"  # 百度坐标 (Baidu Maps)


COORD_SYSTEM_HELP = (
    "坐标系 coordinate system of lat/lon: wgs84 (GPS, default), gcj02 (高德/腾讯/微信), bd09 (百度)"
)


def in_china(lat: float, lon: float) -> bool:
    """Where GCJ-02 differs from WGS-84 (prcoords' box around China)."""
    return bool(prcoords.sanity_in_china_p(prcoords.Coords(lat, lon)))


def to_wgs84(lat: float, lon: float, system: CoordSystem) -> tuple[float, float]:
    """(lat, lon) in WGS-84 for a point sent in ``system``."""
    if system is CoordSystem.WGS84:
        return lat, lon
    with warnings.catch_warnings():  # prcoords warns about points outside China
        warnings.simplefilter("ignore")
        if system is CoordSystem.BD09:
            gcj = prcoords.bd_gcj_bored(prcoords.Coords(lat, lon))
        else:
            gcj = prcoords.Coords(lat, lon)
        if not in_china(gcj.lat, gcj.lon):
            return float(gcj.lat), float(gcj.lon)
        wgs = prcoords.gcj_wgs_bored(gcj)
    return float(wgs.lat), float(wgs.lon)


def from_wgs84(lat: float, lon: float, system: CoordSystem) -> tuple[float, float]:
    """(lat, lon) in ``system`` for a WGS-84 point (for tests and for clients drawing on a
    GCJ-02 or BD-09 base map)."""
    if system is CoordSystem.WGS84:
        return lat, lon
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gcj = prcoords.wgs_gcj(prcoords.Coords(lat, lon))
        out = gcj if system is CoordSystem.GCJ02 else prcoords.gcj_bd(gcj)
    return float(out.lat), float(out.lon)
