"""POST requests: a GeoReport form checked and turned into what our report needs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.intake.domain.open311.common import NOTICES, PRIORITIES, Problem, Refused, field

DESCRIPTION_MAX = 2000  # intake's own limit (GeoReport allows up to 4,000)
ADDRESS_MAX = 500
NAME_MAX = 64

NEED_GRID = (
    "缺少所在网格：每件事项都须落到一个网格，请以 attribute[grid_code] 提供网格编码（见服务定义"
    " services/{service_code}），或提供落在某个网格内的 lat 与 long",
    "a grid is required: every case belongs to one grid, so send attribute[grid_code] (see "
    "the service definition services/{service_code}) or a lat/long inside a grid",
)
NEED_LOCATION = (
    "缺少位置：请提供 lat 与 long，或 address_string（暂不支持 address_id）",
    "a location is required: lat and long, or address_string (address_id is not supported)",
)


# Positions from Chinese map apps (an extension parameter; GeoReport itself says WGS84).
COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")


@dataclass(frozen=True)
class NewRequest:
    """A service request as our report needs it. email, phone, device_id, account_id and
    media_url are accepted but not kept: a case has no place for them yet."""

    service_code: str
    grid_code: str | None  # None: placed in the grid whose boundary holds lat/long
    description: str | None  # None: the handler uses the service's name
    priority: str
    lat: float | None
    long: float | None
    address: str | None
    reporter: str | None  # None: the caller's own name
    coord_system: str = "wgs84"  # what lat/long are in: wgs84, gcj02 (高德/腾讯/微信), bd09 (百度)
    device_id: str | None = None  # a resident's: counted by the rate limit
    email: str | None = None
    phone: str | None = None


def _coordinate(raw: str | None, name: str, bound: float, problems: list[Problem]) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not -bound <= value <= bound:  # also refuses nan
        problems.append(
            (
                f"{name} 须为 -{bound:g} 到 {bound:g} 之间的数",
                f"{name} must be a number between -{bound:g} and {bound:g}",
            )
        )
        return None
    return value


def _too_long(value: str | None, name: str, most: int, problems: list[Problem]) -> None:
    if value is not None and len(value) > most:
        problems.append(
            (f"{name} 过长（上限 {most} 字）", f"{name} is longer than {most} characters")
        )


def reporter_name(first: str | None, last: str | None) -> str | None:
    """Chinese names read family name first (李 + 明 = 李明); others 'John Smith'."""
    if not first and not last:
        return None
    if any("\u3400" <= ch <= "\u9fff" for ch in (first or "") + (last or "")):
        name = f"{last or ''}{first or ''}"
    else:
        name = " ".join(p for p in (first, last) if p)
    return name[:NAME_MAX]


def parse_new_request(form: Mapping[str, str]) -> NewRequest:
    """Check a POST requests form; every problem found is reported at once."""
    problems: list[Problem] = []
    code = field(form, "service_code")
    if code is None:
        problems.append(
            (
                "缺少 service_code（事件分类编码，见 services 列表）",
                "service_code is required (see the services list)",
            )
        )
    raw_lat, raw_long = field(form, "lat"), field(form, "long")
    lat = _coordinate(raw_lat, "lat", 90, problems)
    lon = _coordinate(raw_long, "long", 180, problems)
    if (raw_lat is None) != (raw_long is None):
        problems.append(("lat 与 long 须同时提供", "lat and long must be sent together"))
    address = field(form, "address_string")
    _too_long(address, "address_string", ADDRESS_MAX, problems)
    if raw_lat is None and raw_long is None and address is None:
        problems.append(NEED_LOCATION)
    grid = field(form, "attribute[grid_code]")
    if grid is None and (lat is None or lon is None):
        problems.append(NEED_GRID)
    description = field(form, "description")
    _too_long(description, "description", DESCRIPTION_MAX, problems)
    priority = field(form, "attribute[priority]") or "normal"
    if priority not in PRIORITIES:
        problems.append(
            (
                "attribute[priority] 须为 urgent、normal 或 minor",
                "attribute[priority] must be urgent, normal or minor",
            )
        )
    coord_system = (field(form, "coord_system") or "wgs84").lower()
    if coord_system not in COORD_SYSTEMS:
        problems.append(
            (
                "coord_system 须为 wgs84（GPS）、gcj02（高德/腾讯/微信）或 bd09（百度）",
                "coord_system must be wgs84 (GPS), gcj02 (Amap/Tencent/WeChat) or bd09 (Baidu)",
            )
        )
    if problems or code is None:
        raise Refused(problems)
    return NewRequest(
        service_code=code,
        grid_code=grid,
        description=description,
        priority=priority,
        lat=lat,
        long=lon,
        address=address,
        reporter=reporter_name(field(form, "first_name"), field(form, "last_name")),
        coord_system=coord_system,
        device_id=_short(field(form, "device_id")),
        email=_short(field(form, "email")),
        phone=_short(field(form, "phone")),
    )


def _short(value: str | None, most: int = 200) -> str | None:
    return value[:most] if value else None


def filed(case_no: str, priority: str, account_id: str | None) -> dict[str, Any]:
    """POST requests' answer for one request (realtime: the id, never a token)."""
    return {
        "service_request_id": case_no,
        "service_notice": NOTICES.get(priority),
        "account_id": account_id,
    }


RESIDENT_NOTICE = (
    "已收到您的反映：网格员将到现场核实，属实的即受理办理，不属实或不属于公共事务的将说明理由。"
    "请保存 token，凭它查询办理进度（requests/{service_request_id}.json?token=…）。 / Received: "
    "the grid worker checks it on site; if confirmed it is taken on, otherwise you are told why. "
    "Keep the token: it lets you follow your request (requests/{service_request_id}.json?token=…)."
)


def filed_by_resident(case_no: str, receipt: str) -> dict[str, Any]:
    """POST requests' answer to a resident (no account): the id and the token that alone
    lets him read his request back."""
    return {
        "service_request_id": case_no,
        "token": receipt,
        "service_notice": RESIDENT_NOTICE,
        "account_id": None,
    }
