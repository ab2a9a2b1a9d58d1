"""GeoReport's two formats and its error shape.

JSON is the XML's Spark-convention mapping: a list is a plural element whose children take
the singular name (``services`` → ``service``, ``service_requests`` → ``request``). Errors are
``[{"code": 400, "description": "中文 / English"}]`` (``<errors><error>`` in XML) with the
matching HTTP status, on every Open311 route — raised by the handler, by the request's
validation or by the authorisation rule alike.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.intake.domain.open311 import Refused
from shared.errors import DomainError, RateLimited

log = structlog.get_logger()

JSON = "application/json; charset=utf-8"
XML = "text/xml; charset=utf-8"
FORMATS = ("json", "xml")

# Spark convention: the element name of a list's items.
SINGULAR = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}

# Our statuses → GeoReport's: 404 for what does not exist, 400 for any other bad request.
_GEOREPORT_STATUS = {422: 400}


def format_of(path: str) -> str:
    return "xml" if path.endswith(".xml") else "json"


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, list):
        child = SINGULAR.get(tag, "item")
        element.extend(_element(child, item) for item in value)
    elif isinstance(value, dict):
        element.extend(_element(key, item) for key, item in value.items())
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element


def to_xml(root: str, payload: Any) -> bytes:
    """``payload`` under ``root``, with the XML declaration GeoReport requires."""
    body = ET.tostring(_element(root, payload), encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body).encode("utf-8")


def render(
    fmt: str, root: str, payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, payload), status_code=status, media_type=XML, headers=headers)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def errors(
    fmt: str, status: int, problems: list[tuple[str, str]], headers: dict[str, str] | None = None
) -> Response:
    """GeoReport's error array: one entry per problem, Chinese first, then English."""
    payload = [{"code": status, "description": f"{zh} / {en}"} for zh, en in problems]
    return render(fmt, "errors", payload, status, headers)


def _validation_problems(exc: RequestValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        problems.append(
            (
                f"参数 {where} 无效：{err.get('msg', '')}",
                f"invalid parameter {where}: {err.get('msg', '')}",
            )
        )
    return problems or [("请求无效", "invalid request")]


def error_response(fmt: str, exc: Exception) -> Response | None:
    """The GeoReport answer for an error our routes raise; None for an unexpected one."""
    if isinstance(exc, DomainError):
        status = _GEOREPORT_STATUS.get(exc.status_code, exc.status_code)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        problems = exc.problems if isinstance(exc, Refused) else [(exc.zh, exc.en)]
        return errors(fmt, status, problems, headers)
    if isinstance(exc, RequestValidationError):
        return errors(fmt, 400, _validation_problems(exc))
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "请求失败"
        return errors(fmt, exc.status_code, [(detail, detail)])
    return None


class GeoReportRoute(APIRoute):
    """An APIRoute whose errors — from dependencies (the auth rule), validation or the
    endpoint — are answered in GeoReport's shape and in the route's own format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        fmt = format_of(self.path)

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:
                response = error_response(fmt, exc)
                if response is None:
                    raise  # the app's handler logs it and answers 500
                log.info(
                    "open311_refused",
                    path=request.url.path,
                    status=response.status_code,
                    error=type(exc).__name__,
                )
                return response

        return route
