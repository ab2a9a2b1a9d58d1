"""What intake follows of a case after the whistle: the departments' progress (dispatched,
signed for, resolved, rejected or transferred) and tracking's clocks, from their events — the
reporter's view of the case. Each handler runs in the consumer's transaction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from services.intake import domain, repository
from services.intake.domain import CaseStatus
from services.intake.repository import CaseRow
from shared import deferred
from shared.contract import (
    CaseClockStarted,
    CaseClockStopped,
    CaseDispatched,
    CaseOverdue,
    CaseRejected,
    CaseResolved,
    CaseSignedFor,
    CaseTransferred,
    CaseUnroutable,
    Envelope,
)
from shared.db import Conn


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
