"""Cases that come from outside the grid worker's rounds, each use case one transaction:
12345 hotline tickets imported by the command centres (接诉即办), and residents' own reports
(群众上报) checked on site by the grid worker.

A resident's report enters the loop only when the grid worker (or the community) accepts
it: CaseReported (source=resident) is published then, not when the resident sends it —
dispatch, tracking and notify never see an unverified report, and the clocks and KPIs start
from a case someone has seen. Dismissed (不予受理), it is closed with the reason and no event
(it never entered the loop).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from services.intake import repository
from services.intake.domain import CaseStatus
from services.intake.domain import sources as domain
from services.intake.handlers.cases import (
    ReportCase,
    case_in_scope,
    create_case,
    place_case,
    reported_event,
)
from services.intake.repository import CaseRow
from services.intake.repository import casework as casework_repository
from services.intake.repository import sources as sources_repository
from services.intake.repository.sources import ResidentSender
from shared import outbox
from shared.auth import Principal
from shared.contract import Actor, Priority
from shared.db import Conn
from shared.errors import Conflict, Invalid, RateLimited

RESIDENT = "resident"  # reported_by of a resident's report (no account)
RESIDENT_ACTOR = Actor(subject=RESIDENT, role=RESIDENT, name="群众")
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class HotlineTicket:
    """A 12345 ticket as the hotline hands it over (接诉即办)."""

    ticket_no: str
    report: ReportCase
    received_at: datetime  # when the hotline took the call
    caller: str | None = None
    caller_contact: str | None = None  # masked before it is kept

    def fingerprint(self) -> str:
        data: list[str | None] = [
            self.ticket_no,
            self.report.fingerprint(),
            self.received_at.isoformat(),
            self.caller,
            domain.mask_contact(self.caller_contact),
        ]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()


@dataclass(frozen=True)
class ResidentLimits:
    per_client_per_hour: int  # one network address (a whole NAT may share it)
    per_sender_per_hour: int  # one device_id or e-mail


async def import_hotline(
    pool: asyncpg.Pool, who: Principal, ticket: HotlineTicket
) -> tuple[CaseRow, bool]:
    """接诉即办: a 12345 ticket becomes a case (source=hotline) in the grid that holds its
    position. Idempotent on the ticket number: (case, created)."""
    now = datetime.now(UTC)
    case_id = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        earlier = await sources_repository.claim_hotline_ticket(
            conn,
            ticket.ticket_no,
            ticket.fingerprint(),
            case_id,
            caller=ticket.caller,
            caller_contact=domain.mask_contact(ticket.caller_contact),
            received_at=ticket.received_at,
            imported_by=who.subject,
            at=now,
        )
        if earlier is not None:
            request_hash, earlier_id = earlier
            case = await case_in_scope(conn, who, earlier_id)
            if request_hash != ticket.fingerprint():
                raise Conflict(
                    f"工单 {ticket.ticket_no} 已导入为案件 {case.case_no}，内容与本次不同",
                    f"ticket {ticket.ticket_no} was imported as case {case.case_no} "
                    "with different content",
                    code="hotline_ticket_differs",
                )
            return case, False
        grid_code, path, _ = await place_case(conn, who, ticket.report)
        case = await create_case(
            conn,
            ticket.report,
            case_id=case_id,
            grid_code=grid_code,
            path=path,
            reported_by=who.subject,
            actor=who.actor,
            now=now,
            reported_at=min(ticket.received_at, now),
        )
    return case, True


async def _check_sender(
    conn: Conn, sender: ResidentSender, limits: ResidentLimits, now: datetime
) -> None:
    for column, key in sorted(sender.keys(), key=lambda p: p[1]):  # one lock order
        most = limits.per_client_per_hour if column == "client_key" else limits.per_sender_per_hour
        times = await sources_repository.sender_times(conn, column, key, now - WINDOW)
        wait = domain.rate_limit_wait(times, most, WINDOW, now)
        if wait is not None:
            who_zh, who_en = (
                ("同一网络地址", "one network address")
                if column == "client_key"
                else ("同一设备或邮箱", "one device or e-mail")
            )
            raise RateLimited(
                f"上报过于频繁：{who_zh}每小时最多 {most} 件，请 {wait} 秒后再试",
                f"too many reports: at most {most} an hour from {who_en}; retry in {wait} s",
                retry_after=wait,
            )


async def file_resident_report(
    pool: asyncpg.Pool,
    cmd: ReportCase,
    sender: ResidentSender,
    idempotency_key: str | None,
    *,
    limits: ResidentLimits,
) -> tuple[CaseRow, str, bool]:
    """群众上报: a resident's report waits in its grid for the grid worker's check (待核实).
    Returns (case, receipt, created); the receipt lets the resident read it back."""
    now = datetime.now(UTC)
    case_id = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        grid_code, path, _ = await place_case(conn, None, cmd)
        if idempotency_key:
            subject = f"{RESIDENT}:{sender.client_key}"
            earlier = await repository.claim_idempotency_key(
                conn, subject, idempotency_key, cmd.fingerprint(), case_id
            )
            if earlier is not None:
                if earlier[0] != cmd.fingerprint():
                    raise Conflict(
                        "该 Idempotency-Key 已用于另一份不同的上报",
                        "this Idempotency-Key was already used for a different report",
                        code="idempotency_key_reused",
                    )
                case = await repository.get_case(conn, earlier[1])
                receipt = await sources_repository.receipt_of(conn, earlier[1])
                assert case is not None and receipt is not None
                return case, receipt, False
        await _check_sender(conn, sender, limits, now)
        case = await create_case(
            conn,
            cmd,
            case_id=case_id,
            grid_code=grid_code,
            path=path,
            reported_by=RESIDENT,
            actor=RESIDENT_ACTOR,
            now=now,
            status=CaseStatus.TO_VERIFY,
        )
        receipt = secrets.token_urlsafe(24)
        await sources_repository.insert_resident_report(conn, case.id, receipt, sender, now)
    return case, receipt, True


async def accept_resident_report(
    pool: asyncpg.Pool,
    who: Principal,
    case_id: UUID,
    *,
    priority: Priority | None = None,
    category: str | None = None,
    note: str | None = None,
) -> CaseRow:
    """核实属实: the report is real; it enters the loop as a reported case (CaseReported,
    source=resident), with the category and urgency the grid worker saw on site."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await case_in_scope(conn, who, case_id, lock=True)
        domain.check_verify(case.status)
        if category is not None and category != case.category:
            if not await repository.category_exists(conn, category):
                raise Invalid(
                    f"事件分类“{category}”不存在",
                    f"unknown category '{category}'",
                    code="unknown_category",
                )
            await sources_repository.set_category(conn, case.id, category)
        case = await repository.update_status(
            conn,
            case.id,
            CaseStatus.REPORTED,
            now,
            priority=priority.value if priority else None,
        )
        await sources_repository.decide(
            conn, case.id, state="accepted", by=who.subject, by_name=who.name, at=now, note=note
        )
        await outbox.add(conn, reported_event(case, now, who.actor))
    return case


async def dismiss_resident_report(
    pool: asyncpg.Pool,
    who: Principal,
    case_id: UUID,
    *,
    reason: domain.DismissReason,
    note: str | None = None,
    duplicate_of: UUID | None = None,
) -> CaseRow:
    """不予受理: closed with the reason, which the resident reads on his request. No event:
    it never entered the loop."""
    now = datetime.now(UTC)
    domain.check_dismissal(reason, note, duplicate_of)
    async with pool.acquire() as conn, conn.transaction():
        case = await case_in_scope(conn, who, case_id, lock=True)
        domain.check_verify(case.status)
        if duplicate_of is not None:
            if duplicate_of == case.id:
                raise Invalid(
                    "不能指明案件与它自己重复",
                    "a report cannot be a duplicate of itself",
                    code="duplicate_of_itself",
                )
            await case_in_scope(conn, who, duplicate_of)
        case = await repository.update_status(conn, case.id, CaseStatus.CLOSED, now)
        await casework_repository.set_resolution(conn, case.id, domain.DISMISSED)
        await sources_repository.decide(
            conn,
            case.id,
            state="dismissed",
            by=who.subject,
            by_name=who.name,
            at=now,
            reason=reason.value,
            note=note,
            duplicate_of=duplicate_of,
        )
    return case


async def list_resident_reports(
    pool: asyncpg.Pool,
    who: Principal,
    *,
    state: str | None,
    area: str | None,
    limit: int,
    offset: int,
) -> list[tuple[CaseRow, asyncpg.Record]]:
    """Residents' reports in the caller's grids or subtree (``area`` inside it), oldest
    waiting first: the grid worker's list of what to check on site."""
    if area is not None:
        who.require_area(area)
    roots = [area] if area is not None else list(who.areas)
    async with pool.acquire() as conn:
        rows = await sources_repository.resident_reports(
            conn, roots=roots, state=state, limit=limit, offset=offset
        )
    return [(CaseRow.from_record(r), r) for r in rows]


async def resident_report(
    pool: asyncpg.Pool, who: Principal, case_id: UUID
) -> tuple[CaseRow, asyncpg.Record | None]:
    """A case and, if a resident sent it, how his report stands."""
    async with pool.acquire() as conn:
        case = await case_in_scope(conn, who, case_id)
        return case, await sources_repository.resident_report(conn, case.id)
