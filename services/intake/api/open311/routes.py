"""Open311 GeoReport v2 over intake, so existing civic-tech clients can file and follow cases.

Every resource in both formats — the suffix chooses: ``/open311/v2/services.json`` or
``.xml``. The service list, definitions and discovery are public reference data; filing and
reading requests need one of our bearer tokens, as GeoReport's ``api_key`` or the
``Authorization`` header. Errors answer in GeoReport's shape (see formats.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.intake.domain import open311 as domain
from services.intake.handlers import open311 as handlers
from services.intake.api.open311.auth import ApiKeyRule
from services.intake.api.open311.formats import GeoReportRoute, format_of, render
from shared.auth import AREA_ROLES, PUBLIC, Principal, Role
from services.intake.api.common import settings
from shared.service import Pool

V2 = "/open311/v2"
router = APIRouter(route_class=GeoReportRoute, tags=["open311"])

# The same rules as intake's own POST /cases and GET /cases (scope: checked by handlers).
Filer = Annotated[Principal, Depends(ApiKeyRule((Role.GRID_WORKER, *AREA_ROLES)))]
Reader = Annotated[Principal, Depends(ApiKeyRule((Role.GRID_WORKER, *AREA_ROLES, Role.SUPERVISOR)))]
Public = [Depends(PUBLIC)]


async def _format(request: Request) -> str:
    return format_of(request.scope["route"].path)


Fmt = Annotated[str, Depends(_format)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="optional: a retried POST with the same key returns the same request",
    ),
]


class RequestForm(BaseModel):
    """POST requests, form-encoded as GeoReport sends it (parameters we do not use are
    accepted and ignored)."""

    model_config = ConfigDict(extra="ignore")
    api_key: str | None = Field(None, description="one of our bearer tokens (JWT)")
    jurisdiction_id: str | None = Field(None, description="ignored: one jurisdiction")
    service_code: str | None = Field(None, description="事件分类编码 (GET services)")
    lat: str | None = Field(None, description="WGS84 latitude")
    long: str | None = Field(None, description="WGS84 longitude")
    address_string: str | None = None
    address_id: str | None = Field(None, description="not supported")
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    description: str | None = None
    media_url: str | None = None
    grid_code: str | None = Field(None, alias="attribute[grid_code]", description="网格编码")
    priority: str | None = Field(
        None, alias="attribute[priority]", description="urgent / normal / minor"
    )


class RequestsQuery(BaseModel):
    """GET requests' arguments (page and page_size: the common paging extension)."""

    model_config = ConfigDict(extra="ignore")
    api_key: str | None = None
    jurisdiction_id: str | None = None
    service_request_id: str | None = Field(None, description="comma-delimited; overrides the rest")
    service_code: str | None = Field(None, description="comma-delimited")
    start_date: str | None = Field(None, description="W3C datetime, e.g. 2010-01-01T00:00:00Z")
    end_date: str | None = Field(None, description="at most 90 days after start_date")
    status: str | None = Field(None, description="open, closed or open,closed")
    page: str | None = None
    page_size: str | None = Field(None, description="at most 1000 (the default)")


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def _both(method: str, path: str, **kwargs: Any) -> Callable[[Endpoint], Endpoint]:
    """Register the endpoint at ``path.json`` and ``path.xml``."""

    def register(endpoint: Endpoint) -> Endpoint:
        for fmt in ("json", "xml"):
            router.add_api_route(
                f"{path}.{fmt}",
                endpoint,
                methods=[method],
                name=f"{endpoint.__name__}_{fmt}",
                **kwargs,
            )
        return endpoint

    return register


@_both("GET", "/open311/discovery", dependencies=Public, summary="Open311 service discovery")
async def discovery(request: Request, fmt: Fmt) -> Response:
    url = str(request.base_url).rstrip("/") + V2
    production = settings(request).environment == "production"
    return render(fmt, "discovery", domain.discovery(url, production))


@_both(
    "GET",
    f"{V2}/services",
    dependencies=Public,
    summary="GeoReport: the service list (leaf categories 事件分类)",
)
async def services(db: Pool, fmt: Fmt) -> Response:
    return render(fmt, "services", await handlers.services(db))


@_both(
    "GET",
    f"{V2}/services/{{service_code}}",
    dependencies=Public,
    summary="GeoReport: a service definition (its attributes: grid_code, priority)",
)
async def service_definition(service_code: str, db: Pool, fmt: Fmt) -> Response:
    await handlers.service(db, service_code)
    return render(fmt, "service_definition", domain.service_definition(service_code))


@_both(
    "POST",
    f"{V2}/requests",
    status_code=201,
    summary="GeoReport: file a service request (网格发现), form-encoded",
)
async def post_request(
    form: Annotated[RequestForm, Form()],
    request: Request,
    db: Pool,
    who: Filer,
    fmt: Fmt,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    if not request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        raise domain.Refused(
            [
                (
                    "请以 application/x-www-form-urlencoded 表单提交",
                    "send the request as application/x-www-form-urlencoded",
                )
            ]
        )
    new = domain.parse_new_request(form.model_dump(by_alias=True, exclude_none=True))
    case, created = await handlers.file_request(
        db,
        who,
        new,
        idempotency_key,
        rate_limit_per_minute=settings(request).report_rate_limit_per_minute,
    )
    headers = {"Location": f"{V2}/requests/{case.case_no}.{fmt}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    answer = [domain.filed(case.case_no, case.priority, who.subject)]
    return render(fmt, "service_requests", answer, 201 if created else 200, headers)


@_both(
    "GET",
    f"{V2}/requests",
    summary="GeoReport: service requests in my jurisdiction (90 days, 1000 at most)",
)
async def get_requests(
    query: Annotated[RequestsQuery, Query()], db: Pool, who: Reader, fmt: Fmt
) -> Response:
    cases = await handlers.list_requests(db, who, query.model_dump(exclude_none=True))
    return render(fmt, "service_requests", [domain.service_request(c) for c in cases])


@_both(
    "GET",
    f"{V2}/requests/{{service_request_id}}",
    summary="GeoReport: one service request (by case number or UUID)",
)
async def get_request(service_request_id: str, db: Pool, who: Reader, fmt: Fmt) -> Response:
    case = await handlers.get_request(db, who, domain.parse_ref(service_request_id))
    return render(fmt, "service_requests", [domain.service_request(case)])


@_both(
    "GET",
    f"{V2}/tokens/{{token}}",
    summary="GeoReport: the service_request_id for a token (our case UUID)",
)
async def get_token(token: str, db: Pool, who: Reader, fmt: Fmt) -> Response:
    case = await handlers.get_request(db, who, domain.token_id(token))
    return render(fmt, "service_requests", [domain.token_answer(case.case_no, case.id)])
