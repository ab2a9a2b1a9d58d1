"""Intake's use cases: each one transaction — read, let the domain decide, write, outbox."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.intake import domain, repository
from services.intake.repository import casework as casework_repository
from services.intake.domain import CaseStatus
from services.intake.handlers import jurisdiction
from services.intake.repository import CaseRow
from shared import deferred, outbox
from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound, RateLimited
from shared.contract import (
    CaseClockStarted,
    CaseClockStopped,
    CaseClosed,
    CaseDispatched,
    CaseOverdue,
    CaseRejected,
    CaseTransferred,
    CaseResolved,
    CaseReported,
    CaseSignedFor,
    CaseUnroutable,
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
    location: Location
    reporter: str  # who found it, as written on the case (defaults to the caller's name)

    def fingerprint(self) -> str:
        data = {
            "grid_code": self.grid_code,
            "category": self.category,
            "description": self.description,
            "priority": self.priority.value,
            "location": self.location.model_dump(),
            "reporter": self.reporter,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


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
        grid_code = await jurisdiction.place_report(conn, cmd.grid_code, cmd.location)
        path = await repository.grid_path(conn, grid_code)
        if path is None:
            raise Invalid(
                f"网格“{grid_code}”不存在", f"unknown grid '{grid_code}'", code="unknown_grid"
            )
        who.require_area(path)
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
        if not await repository.category_exists(conn, cmd.category):
            raise Invalid(
                f"事件分类“{cmd.category}”不存在",
                f"unknown category '{cmd.category}'",
                code="unknown_category",
            )
        seq = await repository.next_case_seq(conn)
        case = CaseRow(
            id=case_id,
            case_no=domain.format_case_no(path, now, seq),
            grid_code=grid_code,
            area_path=path,
            category=cmd.category,
            description=cmd.description,
            priority=cmd.priority.value,
            lat=cmd.location.lat,
            lon=cmd.location.lon,
            address=cmd.location.address,
            reporter=cmd.reporter,
            reported_by=who.subject,
            status=CaseStatus.REPORTED,
            status_at=now,
            departments=[],
            reported_at=now,
            updated_at=now,
            closed_at=None,
        )
        await repository.insert_case(conn, case)
        await outbox.add(
            conn,
            new_event(
                CaseReported(
                    **case_facts(case),
                    grid_code=case.grid_code,
                    description=case.description,
                    location=cmd.location,
                    reporter=case.reporter,
                    reported_at=now,
                ),
                case_id=case.id,
                producer=PRODUCER,
                occurred_at=now,
                actor=who.actor,
            ),
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
                    grid_code=case.grid_code,
                    description=case.description,
                    location=Location(lat=case.lat, lon=case.lon, address=case.address),
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
) -> list[CaseRow]:
    """Cases in the caller's jurisdiction (optionally narrowed to ``area`` inside it), of a
    category (a 大类 covers its 小类), overdue or not, matching a text."""
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
        )


# --- consumed: the reporter's view of progress elsewhere -------------------------------


async def _advance(conn: Conn, case: CaseRow, status: CaseStatus, at: datetime) -> None:
    """Move the case's status forward to ``status`` (a late event never moves it back)."""
    after = domain.advance(case.status, case.status_at, status, at)
    if after is not case.status:
        await repository.update_status(conn, case.id, after, at)


async def _our_case(conn: Conn, case_id: UUID) -> CaseRow | None:
    """The case, locked for this transaction; None when it is not one of ours (another
    intake's data set): nothing to follow."""
    return await repository.get_case(conn, case_id, lock=True)


async def on_dispatched(conn: Conn, event: Envelope[CaseDispatched]) -> None:
    """派单: the department joins the case's departments (its photo rights begin)."""
    if case := await _our_case(conn, event.case_id):
        await repository.add_assigned_department(conn, case.id, event.payload.department_id)
        await _advance(conn, case, CaseStatus.DISPATCHED, event.occurred_at)


async def on_unroutable(conn: Conn, event: Envelope[CaseUnroutable]) -> None:
    """No department matched: the case waits for a person to dispatch it (待人工派单)."""
    if case := await _our_case(conn, event.case_id):
        await _advance(conn, case, CaseStatus.UNROUTABLE, event.occurred_at)


async def on_signed_for(conn: Conn, event: Envelope[CaseSignedFor]) -> None:
    """部门报到: the department signed for the case."""
    if case := await _our_case(conn, event.case_id):
        await _advance(conn, case, CaseStatus.SIGNED_FOR, event.occurred_at)


async def on_resolved(conn: Conn, event: Envelope[CaseResolved]) -> None:
    """办结: the case waits for the community's check once every department reported; a
    co-handler's report alone leaves it waiting for the others (联合办理)."""
    case = await _our_case(conn, event.case_id)
    if case is not None and event.payload.case_resolved:
        await _advance(conn, case, CaseStatus.RESOLVED, event.occurred_at)


async def on_left(conn: Conn, event: Envelope[CaseRejected] | Envelope[CaseTransferred]) -> None:
    """退单 / 转办: the department pushed the case back or handed it on — it is no longer one
    of the case's departments (its photo rights end). The status is unchanged: what comes
    next (dispatched elsewhere, or waiting for the community) says it."""
    if case := await _our_case(conn, event.case_id):
        await repository.remove_assigned_department(conn, case.id, event.payload.department_id)


async def _follow_clock(
    conn: Conn,
    event: Envelope[CaseClockStarted] | Envelope[CaseClockStopped] | Envelope[CaseOverdue],
    state: str,
    due_at: datetime | None,
) -> None:
    """Keep the reporter's view of the case's deadlines from tracking's clock events."""
    if not await repository.case_known(conn, event.case_id):
        return
    p = event.payload
    await repository.upsert_clock(
        conn,
        event.case_id,
        p.assignment_id,
        p.clock,
        p.department_id,
        due_at,
        state,
        event.occurred_at,
    )
    # once per transaction: a consumer's batch updates all its cases in one statement
    await deferred.once_per_transaction(conn, repository.refresh_deadlines, event.case_id)


async def on_clock_started(conn: Conn, event: Envelope[CaseClockStarted]) -> None:
    await _follow_clock(conn, event, "running", event.payload.due_at)


async def on_clock_stopped(conn: Conn, event: Envelope[CaseClockStopped]) -> None:
    await _follow_clock(conn, event, "stopped", None)


async def on_overdue(conn: Conn, event: Envelope[CaseOverdue]) -> None:
    await _follow_clock(conn, event, "overdue", event.payload.due_at)


async def sync_categories(pool: asyncpg.Pool, rows: list[tuple[str, str, str | None]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await repository.replace_categories(conn, rows)
