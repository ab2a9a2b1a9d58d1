"""The catalogue as GeoReport services: leaf categories, their definitions, discovery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.intake.domain.open311.common import PRIORITIES
from shared.errors import NotFound

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-22 00:00"  # bump when the service definitions change shape


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    parent_code: str | None


def services(categories: list[Category]) -> list[dict[str, Any]]:
    """GET services: every leaf category (one with no subclasses), by code."""
    names = {c.code: c.name for c in categories}
    parents = {c.parent_code for c in categories if c.parent_code}
    leaves = sorted((c for c in categories if c.code not in parents), key=lambda c: c.code)
    return [_service(c, names.get(c.parent_code or "")) for c in leaves]


def _service(category: Category, group: str | None) -> dict[str, Any]:
    keywords = [category.name] + ([group.split("·")[-1]] if group else [])
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": f"{group}：{category.name}" if group else category.name,
        # true: the service definition declares attribute[grid_code] (and [priority])
        "metadata": True,
        "type": "realtime",
        "keywords": ", ".join(keywords),
        "group": group,
    }


def find_service(categories: list[Category], code: str) -> dict[str, Any]:
    for service in services(categories):
        if service["service_code"] == code:
            return service
    raise NotFound(
        f"服务类型（事件分类）“{code}”不存在",
        f"service_code '{code}' not found",
        code="service_not_found",
    )


def service_definition(code: str) -> dict[str, Any]:
    """GET services/{code}: the attributes a request of this service takes."""
    grid = {
        "variable": True,
        "code": "grid_code",
        "datatype": "string",
        "required": False,
        "datatype_description": "网格编码，如 YA0101-01 / grid code, e.g. YA0101-01",
        "order": 1,
        "description": "问题所在网格；未填时按 lat/long 落入所在网格，二者至少其一（可向社区或"
        "网格员询问） / the grid (网格) where the problem is; without it, lat/long "
        "must fall inside a grid (ask your community or grid worker)",
    }
    priority = {
        "variable": True,
        "code": "priority",
        "datatype": "singlevaluelist",
        "required": False,
        "datatype_description": None,
        "order": 2,
        "description": "紧急程度（默认一般） / urgency (normal unless given)",
        "values": [{"key": key, "name": name} for key, name in PRIORITIES.items()],
    }
    return {"service_code": code, "attributes": [grid, priority]}


def discovery(url: str, production: bool) -> dict[str, Any]:
    """The Service Discovery document (http://wiki.open311.org/Service_Discovery)."""
    return {
        "changeset": CHANGESET,
        "contact": "请联系所在社区或区综合指挥平台 / contact your community or the district "
        "command centre",
        "key_service": "api_key 即 Whistle 登录凭证（Bearer JWT），由区综合指挥平台为网格员、"
        "社区、街道账号签发；群众不带 api_key 也可上报（限频，网格员现场核实后受理），凭返回的"
        " token 查询本人事项 / the api_key is a Whistle bearer token (JWT), issued to grid "
        "workers, communities and streets; residents may file without one (rate-limited, "
        "verified on site by the grid worker) and follow their request with the token returned",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": CHANGESET,
                "type": "production" if production else "test",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
