"""Intake's use cases: each one transaction — read, let the domain decide, write, outbox."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.intake import coords, domain, repository
from services.intake.coords import CoordSystem
from services.intake.repository import casework as casework_repository
from services.intake.domain import CaseStatus
from services.intake.handlers import jurisdiction
from services.intake.repository import CaseRow
from shared import outbox
from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound, RateLimited
from shared.contract import (
    Actor,
    CaseClosed,
    CaseReported,
    CaseSource,
    CaseWhistled,
    Envelope,
    Level,
    Location,
    Priority,
    new_event,
)
from shared.db import Conn

PRODUCER = "intake"


@dataclass(frozen=True)
class ReportCase:
    grid_code: str | None  # None: placed by the location's point
    category: str
    description: str
    priority: Priority
    location: Location  # lat/lon in ``coord_system``
    reporter: str  # who found it, as written on the case (defaults to the caller's name)
    source: CaseSource = CaseSource.GRID_PATROL  # 案件来源
    coord_system: CoordSystem = CoordSystem.WGS84  # what the client's lat/lon are in

    def fingerprint(self) -> str:
        data: dict[str, Any] = {
            "grid_code": self.grid_code,
            "category": self.category,
            "description": self.description,
            "priority": self.priority.value,
            "location": self.location.model_dump(),
            "reporter": self.reporter,
        }
        if self.source is not CaseSource.GRID_PATROL:  # older keys' hashes stay valid
            data["source"] = self.source.value
        if self.coord_system is not CoordSystem.WGS84:
            data["coord_system"] = self.coord_system.value
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def wgs84(self) -> tuple[Location, dict[str, Any] | None]:
        """The location in WGS-84 (what grids are drawn in), and the point as sent when it
        was in another system (kept on the case for audit)."""
        loc = self.location
        if self.coord_system is CoordSystem.WGS84 or loc.lat is None or loc.lon is None:
            return loc, None
        lat, lon = coords.to_wgs84(loc.lat, loc.lon, self.coord_system)
        sent = {"coord_system": self.coord_system.value, "lat": loc.lat, "lon": loc.lon}
        return Location(lat=lat, lon=lon, address=loc.address), sent


@dataclass(frozen=True)
class WhistleCase:
    departments: list[str] = field(default_factory=list)
    note: str | None = None
    priority: Priority | None = None
    level: Level = Level.COMMUNITY


def case_facts(case: CaseRow) -> dict[str, Any]:
    """What every event about a case says of it."""
    return {
        "case_no": case.case_no,
        "area_path": case.area_path,
        "category": case.category,
        "priority": Priority(case.priority),
    }


def case_scene(case: CaseRow) -> dict[str, Any]:
    """What the events that send people to the case (上报, 吹哨) add: where and what."""
    return {
        "grid_code": case.grid_code,
        "description": case.description,
        "location": Location(lat=case.lat, lon=case.lon, address=case.address),
    }


async def find_case(conn: Conn, case_id: UUID, *, lock: bool = False) -> CaseRow:
    case = await repository.get_case(conn, case_id, lock=lock)
    if case is None:
        raise NotFound(f"案件 {case_id} 不存在", f"case {case_id} not found", code="case_not_found")
    return case


async def case_in_scope(
    conn: Conn, who: Principal, case_id: UUID, *, lock: bool = False
) -> CaseRow:
    """The case, if it lies in the caller's grids or subtree."""
    case = await find_case(conn, case_id, lock=lock)
    who.require_area(case.area_path)
    return case


async def place_case(
    conn: Conn, who: Principal | None, cmd: ReportCase
) -> tuple[str, str, Location]:
    """(grid code, area path, WGS-84 location) of a new report, inside the caller's scope
    (None: a resident, who may report anywhere)."""
    location, _ = cmd.wgs84()
    grid_code = await jurisdiction.place_report(conn, cmd.grid_code, location)
    path = await repository.grid_path(conn, grid_code)
    if path is None:
        raise Invalid(
            f"网格“{grid_code}”不存在", f"unknown grid '{grid_code}'", code="unknown_grid"
        )
    if who is not None:
        who.require_area(path)
    return grid_code, path, location


def reported_event(case: CaseRow, now: datetime, actor: Actor) -> Envelope[CaseReported]:
    """网格发现 as the loop hears it: the case enters the loop (for a resident's report: once
    verified on site)."""
    return new_event(
        CaseReported(
            **case_facts(case),
            **case_scene(case),
            reporter=case.reporter,
            reported_at=case.reported_at,
            source=case.source,
        ),
        case_id=case.id,
        producer=PRODUCER,
        occurred_at=now,
        actor=actor,
    )


async def create_case(
    conn: Conn,
    cmd: ReportCase,
    *,
    case_id: UUID,
    grid_code: str,
    path: str,
    reported_by: str,
    actor: Actor,
    now: datetime,
    reported_at: datetime | None = None,
    status: CaseStatus = CaseStatus.REPORTED,
) -> CaseRow:
    """Write a new case; a reported one enters the loop (CaseReported in the outbox), one to
    verify (待核实) waits for the grid worker."""
    if not await repository.category_exists(conn, cmd.category):
        raise Invalid(
            f"事件分类“{cmd.category}”不存在",
            f"unknown category '{cmd.category}'",
            code="unknown_category",
        )
    location, sent = cmd.wgs84()
    seq = await repository.next_case_seq(conn)
    case = CaseRow(
        id=case_id,
        case_no=domain.format_case_no(path, now, seq),
        grid_code=grid_code,
        area_path=path,
        category=cmd.category,
        description=cmd.description,
        priority=cmd.priority.value,
        lat=location.lat,
        lon=location.lon,
        address=location.address,
        reporter=cmd.reporter,
        reported_by=reported_by,
        status=status,
        status_at=now,
        departments=[],
        reported_at=(reported_at or now).astimezone(UTC),
        updated_at=now,
        closed_at=None,
        source=cmd.source,
        position_sent=sent,
    )
    await repository.insert_case(conn, case)
    if status is CaseStatus.REPORTED:
        await outbox.add(conn, reported_event(case, now, actor))
    return case


async def report_case(
    pool: asyncpg.Pool,
    who: Principal,
    cmd: ReportCase,
    idempotency_key: str | None,
    *,
    rate_limit_per_minute: int,
) -> tuple[CaseRow, bool]:
    """网格发现: record a new case. Returns (case, created); a retried key returns the first case."""
    now = datetime.now(UTC)
    case_id = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        grid_code, path, _ = await place_case(conn, who, cmd)
        if idempotency_key:
            earlier = await repository.claim_idempotency_key(
                conn, who.subject, idempotency_key, cmd.fingerprint(), case_id
            )
            if earlier is not None:
                request_hash, earlier_id = earlier
                if request_hash != cmd.fingerprint():
                    raise Conflict(
                        "该 Idempotency-Key 已用于另一份不同的上报",
                        "this Idempotency-Key was already used for a different report",
                        code="idempotency_key_reused",
                    )
                case = await repository.get_case(conn, earlier_id)
                assert case is not None
                return case, False
        recent = await repository.reports_since(conn, who.subject, now - timedelta(minutes=1))
        if recent >= rate_limit_per_minute:
            raise RateLimited(
                f"上报过于频繁：每人每分钟最多 {rate_limit_per_minute} 件，请稍后再试",
                f"too many reports: at most {rate_limit_per_minute} per user per minute",
                retry_after=60,
            )
        case = await create_case(
            conn,
            cmd,
            case_id=case_id,
            grid_code=grid_code,
            path=path,
            reported_by=who.subject,
            actor=who.actor,
            now=now,
        )
    return case, True


async def whistle_case(
    pool: asyncpg.Pool,
    who: Principal,
    case_id: UUID,
    cmd: WhistleCase,
    *,
    grid_workers_may_whistle: bool = False,
) -> CaseRow:
    """社区吹哨: hand the case to the departments (optionally naming them, raising priority)."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await case_in_scope(conn, who, case_id, lock=True)
        domain.check_whistle(case.status)
        domain.check_whistle_level(who.role, cmd.level, grid_workers_may_whistle)
        priority = cmd.priority.value if cmd.priority else case.priority
        case = await repository.update_status(
            conn, case.id, CaseStatus.WHISTLED, now, departments=cmd.departments, priority=priority
        )
        await outbox.add(
            conn,
            new_event(
                CaseWhistled(
                    **case_facts(case),
                    **case_scene(case),
                    departments=cmd.departments,
                    note=cmd.note,
                    level=cmd.level,
                ),
                case_id=case.id,
                producer=PRODUCER,
                occurred_at=now,
                actor=who.actor,
            ),
        )
    return case


async def close_case(
    pool: asyncpg.Pool, who: Principal, case_id: UUID, note: str | None
) -> CaseRow:
    """核查结案: the community verified the department's result on site."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await case_in_scope(conn, who, case_id, lock=True)
        domain.check_close(case.status)
        case = await repository.update_status(conn, case.id, CaseStatus.CLOSED, now)
        await casework_repository.set_resolution(conn, case.id, "verified")
        await outbox.add(
            conn,
            new_event(
                CaseClosed(**case_facts(case), note=note),
                case_id=case.id,
                producer=PRODUCER,
                occurred_at=now,
                actor=who.actor,
            ),
        )
    return case


async def get_case(pool: asyncpg.Pool, who: Principal, case_id: UUID) -> CaseRow:
    async with pool.acquire() as conn:
        return await case_in_scope(conn, who, case_id)


async def list_cases(
    pool: asyncpg.Pool,
    who: Principal,
    *,
    area: str | None,
    status: CaseStatus | None,
    limit: int,
    offset: int,
    category: str | None = None,
    overdue: bool | None = None,
    text: str | None = None,
    source: CaseSource | None = None,
) -> list[CaseRow]:
    """Cases in the caller's jurisdiction (optionally narrowed to ``area`` inside it), of a
    category (a 大类 covers its 小类), overdue or not, matching a text, from a source."""
    if area is not None:
        who.require_area(area)
    roots = [area] if area is not None else list(who.areas)
    async with pool.acquire() as conn:
        return await repository.list_cases(
            conn,
            roots=roots,
            status=status.value if status else None,
            category=category,
            overdue=overdue,
            text=text,
            limit=limit,
            offset=offset,
            source=source.value if source else None,
        )


async def sync_categories(pool: asyncpg.Pool, rows: list[tuple[str, str, str | None]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await repository.replace_categories(conn, rows)
