"""Open311 GeoReport v2 over intake, so existing civic-tech clients can file and follow cases.

Every resource in both formats — the suffix chooses: ``/open311/v2/services.json`` or
``.xml``. The service list, definitions and discovery are public reference data; filing and
reading requests need one of our bearer tokens, as GeoReport's ``api_key`` or the
``Authorization`` header. Errors answer in GeoReport's shape (see formats.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.intake.domain import open311 as domain
from services.intake.domain.sources import mask_contact
from services.intake.handlers import open311 as handlers
from services.intake.handlers import sources
from services.intake.repository.sources import ResidentSender
from services.intake.api.open311.auth import ApiKeyRule, ResidentOrStaffRule
from services.intake.api.open311.formats import GeoReportRoute, format_of, render
from shared.auth import AREA_ROLES, PUBLIC, Principal, Role
from shared.errors import NotFound, Unauthenticated
from services.intake.api.common import settings
from shared.service import Pool

V2 = "/open311/v2"
router = APIRouter(route_class=GeoReportRoute, tags=["open311"])

# The same rules as intake's own POST /cases and GET /cases (scope: checked by handlers).
# Without any credential a resident may file a request (群众上报: rate-limited, checked on
# site before it enters the loop) and read back his own with the token he was given.
READERS = (Role.GRID_WORKER, *AREA_ROLES, Role.SUPERVISOR)
Filer = Annotated[Principal | None, Depends(ResidentOrStaffRule((Role.GRID_WORKER, *AREA_ROLES)))]
Reader = Annotated[Principal, Depends(ApiKeyRule(READERS))]
OwnReader = Annotated[Principal | None, Depends(ResidentOrStaffRule(READERS))]
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
    api_key: str | None = Field(
        None, description="one of our bearer tokens (JWT); absent: a resident's own report"
    )
    coord_system: str | None = Field(
        None, description="lat/long in wgs84 (default), gcj02 (高德/腾讯/微信) or bd09 (百度)"
    )
    jurisdiction_id: str | None = Field(None, description="ignored: one jurisdiction")
    service_code: str | None = Field(None, description="事件分类编码 (GET services)")
    lat: str | None = Field(None, description="latitude (WGS84 unless coord_system says)")
    long: str | None = Field(None, description="longitude (WGS84 unless coord_system says)")
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
    if who is None:
        return await _file_for_resident(request, db, new, fmt, idempotency_key)
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


async def _file_for_resident(
    request: Request, db: Pool, new: domain.NewRequest, fmt: str, idempotency_key: str | None
) -> Response:
    """群众上报: counted per network address and per device or e-mail (429 with Retry-After
    beyond the limits), and waiting for the grid worker's check."""
    conf = settings(request)
    limits = sources.ResidentLimits(
        per_client_per_hour=conf.resident_reports_per_hour_per_client,
        per_sender_per_hour=conf.resident_reports_per_hour_per_sender,
    )
    client = request.client.host if request.client else "unknown"
    sender = ResidentSender(
        client_key=_key("client", client),
        device_key=_key("device", new.device_id) if new.device_id else None,
        email_key=_key("email", new.email.lower()) if new.email else None,
        contact=mask_contact(new.phone or new.email),
    )
    case, receipt, created = await handlers.file_resident_request(
        db, new, sender, idempotency_key, limits=limits
    )
    headers = {"Location": f"{V2}/requests/{case.case_no}.{fmt}?token={receipt}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    answer = [domain.filed_by_resident(case.case_no, receipt)]
    return render(fmt, "service_requests", answer, 201 if created else 200, headers)


def _key(kind: str, value: str) -> str:
    """What the rate limit counts a sender by: a hash, not the address itself."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


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
async def get_request(
    service_request_id: str,
    db: Pool,
    who: OwnReader,
    fmt: Fmt,
    token: Annotated[
        str | None,
        Query(max_length=100, description="a resident's token (from his POST), instead of api_key"),
    ] = None,
) -> Response:
    if who is None:
        case = await handlers.get_by_receipt(db, _receipt_or_401(token))
        if service_request_id not in (case.case_no, str(case.id)):
            raise NotFound(
                "查询凭证无效", "no service request has this token", code="token_not_found"
            )
    else:
        case = await handlers.get_request(db, who, domain.parse_ref(service_request_id))
    return render(fmt, "service_requests", [domain.service_request(case)])


@_both(
    "GET",
    f"{V2}/tokens/{{token}}",
    summary="GeoReport: the service_request_id for a token (our case UUID)",
)
async def get_token(token: str, db: Pool, who: OwnReader, fmt: Fmt) -> Response:
    if who is None:
        case = await handlers.get_by_receipt(db, _receipt_or_401(token))
        return render(fmt, "service_requests", [domain.token_answer(case.case_no, token)])
    case = await handlers.get_request(db, who, domain.token_id(token))
    return render(fmt, "service_requests", [domain.token_answer(case.case_no, case.id)])


def _receipt_or_401(token: str | None) -> str:
    """Without api_key only a resident's own token opens a request."""
    if token is None or not domain.is_receipt(token):
        raise Unauthenticated(
            "需要登录：请以 api_key 参数或 Authorization: Bearer 头提供凭证，或提供上报时获得的"
            " token",
            "authentication required: send api_key=<token>, 'Authorization: Bearer <token>' "
            "or the token your report was given",
            code="unauthenticated",
        )
    return token
