"""Open311's use cases. Filing goes through intake's own report (网格发现) — the same checks,
idempotency, rate limit, transaction and outbox event; reads check the caller's scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake import handlers as intake
from services.intake.domain import open311 as domain
from services.intake.repository import open311 as repository
from services.intake.domain.open311 import CaseView, NewRequest, RequestQuery
from services.intake.repository import CaseRow
from services.intake.repository.sources import ResidentSender
from services.intake.coords import CoordSystem
from services.intake.handlers import sources
from services.intake.handlers.cases import ReportCase
from shared.auth import Principal
from shared.errors import NotFound
from shared.contract import CaseSource, Location, Priority


async def services(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return domain.services(await repository.categories(conn))


async def service(pool: asyncpg.Pool, code: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return domain.find_service(await repository.categories(conn), code)


async def file_request(
    pool: asyncpg.Pool,
    who: Principal,
    new: NewRequest,
    idempotency_key: str | None,
    *,
    rate_limit_per_minute: int,
) -> tuple[CaseRow, bool]:
    """POST requests: a GeoReport request becomes a reported case. Returns (case, created)."""
    found = await service(pool, new.service_code)  # only leaf categories are services
    cmd = _report(new, found, new.reporter or who.name, CaseSource.GRID_PATROL)
    return await intake.report_case(
        pool, who, cmd, idempotency_key, rate_limit_per_minute=rate_limit_per_minute
    )


def _report(
    new: NewRequest, found: dict[str, Any], reporter: str, source: CaseSource
) -> ReportCase:
    return ReportCase(
        grid_code=new.grid_code,
        category=new.service_code,
        description=new.description or found["service_name"],
        priority=Priority(new.priority),
        location=Location(lat=new.lat, lon=new.long, address=new.address),
        reporter=reporter,
        source=source,
        coord_system=CoordSystem(new.coord_system),
    )


async def file_resident_request(
    pool: asyncpg.Pool,
    new: NewRequest,
    sender: ResidentSender,
    idempotency_key: str | None,
    *,
    limits: sources.ResidentLimits,
) -> tuple[CaseRow, str, bool]:
    """POST requests without a token: a resident's report, waiting for the grid worker's
    check (待核实). Returns (case, receipt, created)."""
    found = await service(pool, new.service_code)
    cmd = _report(new, found, new.reporter or "群众", CaseSource.RESIDENT)
    return await sources.file_resident_report(pool, cmd, sender, idempotency_key, limits=limits)


async def get_by_receipt(pool: asyncpg.Pool, receipt: str) -> CaseView:
    """A resident reads his own request back with the token he was given; a token that
    names no request is 404 (nothing said about other requests)."""
    async with pool.acquire() as conn:
        case = await repository.find_by_receipt(conn, receipt)
    if case is None:
        raise NotFound("查询凭证无效", "no service request has this token", code="token_not_found")
    return case


async def get_request(pool: asyncpg.Pool, who: Principal, ref: UUID | str) -> CaseView:
    """requests/{id} and tokens/{id}: 404 if there is no such case, 403 outside my scope."""
    async with pool.acquire() as conn:
        case = await repository.find_case(conn, ref)
    if case is None:
        raise NotFound(
            f"事项 {ref} 不存在", f"service request {ref} not found", code="request_not_found"
        )
    who.require_area(case.area_path)
    return case


async def list_requests(
    pool: asyncpg.Pool, who: Principal, params: dict[str, str]
) -> list[CaseView]:
    """GET requests: only what lies in the caller's jurisdiction."""
    query: RequestQuery = domain.parse_query(params, datetime.now(UTC))
    async with pool.acquire() as conn:
        return await repository.list_cases(conn, list(who.areas), query)
