"""Pauses (挂账/缓办): the department asks, a supervisor (督办) decides, the department (or a
supervisor) resumes the work (恢复办理). Each an event carrying who did it; a pause still
running when its assignment is resolved or transferred ends with it (recorded, no event: the
assignment's own event stops every clock)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from services.dispatch import domain, repository
from services.dispatch.domain import Assignment, AssignmentState, PauseEnd, PauseRequest
from services.dispatch.handlers.common import (
    event,
    facts,
    locked_assignment,
    log,
    require_reader,
)
from services.dispatch.handlers.extensions import request_scope
from shared import outbox
from shared.auth import Principal, Role
from shared.errors import Conflict, NotFound
from shared.contract import CasePauseDecided, CasePauseRequested, CaseResumed, PauseKind


async def request(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID, kind: PauseKind, reason: str
) -> PauseRequest:
    """挂账/缓办申请: only the assigned department, while it handles the case."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        a = await locked_assignment(conn, assignment_id)
        who.require_department(a.department_id)  # before the state: a stranger learns nothing
        p = domain.request_pause(
            a,
            kind,
            reason,
            pending=await repository.pauses.has_pending(conn, a.id),
            request_id=uuid4(),
            by=who.subject,
            now=now,
        )
        if not await repository.pauses.insert(conn, p):  # pragma: no cover - row lock
            raise Conflict(
                "该派单已有待审批的挂账/缓办申请",
                "a request is already pending",
                code="pause_pending",
            )
        await outbox.add(
            conn,
            event(
                CasePauseRequested(
                    **facts(a),
                    request_id=p.id,
                    assignment_id=a.id,
                    department_id=a.department_id,
                    department_name=a.department_name,
                    kind=p.kind,
                    reason=p.reason,
                ),
                a.case_id,
                who.actor,
                now,
            ),
        )
    log.info("pause_requested", assignment_id=str(a.id), kind=p.kind.value, actor=who.subject)
    return p


def _not_found(request_id: UUID) -> NotFound:
    return NotFound(
        f"挂账/缓办申请 {request_id} 不存在",
        f"pause request {request_id} not found",
        code="pause_not_found",
    )


async def decide(
    pool: asyncpg.Pool, who: Principal, request_id: UUID, *, approve: bool, comment: str | None
) -> PauseRequest:
    """批准 or 驳回: a supervisor whose area contains the case. Approval needs the assignment
    still in hand (a resolved or handed-on assignment has no clock left to stop)."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        p = await repository.pauses.get(conn, request_id, lock=True)
        if p is None:
            raise _not_found(request_id)
        a = await locked_assignment(conn, p.assignment_id)
        who.require_area(a.area_path)  # before the state: a stranger learns nothing
        if approve:
            if a.state is not AssignmentState.SIGNED_FOR:
                raise Conflict(
                    f"派单已“{domain.STATE_ZH[a.state]}”，无需再批准{p.label}，请驳回",
                    f"the assignment is {a.state}: it needs no pause; refuse the request",
                    code="invalid_state",
                )
            p = p.approve(comment, who.subject, now)
        else:
            p = p.refuse(comment or "", who.subject, now)
        await repository.pauses.save(conn, p)
        await outbox.add(
            conn,
            event(
                CasePauseDecided(
                    **facts(a),
                    request_id=p.id,
                    assignment_id=a.id,
                    department_id=a.department_id,
                    department_name=a.department_name,
                    kind=p.kind,
                    reason=p.reason,
                    approved=approve,
                    comment=p.comment,
                ),
                a.case_id,
                who.actor,
                now,
            ),
        )
    log.info("pause_decided", request_id=str(p.id), approved=approve, actor=who.subject)
    return p


async def resume(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID, note: str | None
) -> PauseRequest:
    """恢复办理: the assigned department, or a supervisor whose area contains the case, ends
    the running pause; the clocks run again."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        a = await locked_assignment(conn, assignment_id)
        if who.role is Role.DEPARTMENT:
            who.require_department(a.department_id)
        else:
            who.require_area(a.area_path)
        running = await repository.pauses.running(conn, a.id)
        if running is None:
            raise domain.pauses.not_paused()
        p = running.resume(note, who.subject, now)
        await repository.pauses.save(conn, p)
        await outbox.add(
            conn,
            event(
                CaseResumed(
                    **facts(a),
                    request_id=p.id,
                    assignment_id=a.id,
                    department_id=a.department_id,
                    department_name=a.department_name,
                    note=p.end_note,
                ),
                a.case_id,
                who.actor,
                now,
            ),
        )
    log.info("pause_resumed", assignment_id=str(a.id), request_id=str(p.id), actor=who.subject)
    return p


async def end_with(
    conn: asyncpg.Connection, a: Assignment, how: PauseEnd, by: str, now: datetime
) -> Assignment:
    """The assignment was resolved or handed on while paused: the pause ends with it.
    Returns the assignment as it now is: not paused."""
    running = await repository.pauses.running(conn, a.id)
    if running is not None:
        await repository.pauses.save(conn, running.end(how, by, now))
        log.info("pause_ended_with_assignment", assignment_id=str(a.id), how=how.value)
    return replace(a, pause_kind=None, paused_since=None)


async def read(pool: asyncpg.Pool, who: Principal, request_id: UUID) -> PauseRequest:
    async with pool.acquire() as conn:
        p = await repository.pauses.get(conn, request_id)
        if p is None:
            raise _not_found(request_id)
        a = await repository.get_assignment(conn, p.assignment_id)
        assert a is not None
    require_reader(who, a)
    return p


async def listing(
    pool: asyncpg.Pool,
    who: Principal,
    state: str | None,
    department_id: str | None,
    limit: int,
    offset: int,
) -> list[PauseRequest]:
    """Department staff see their own department's requests; area holders those of cases
    inside their subtree."""
    department_id, areas = request_scope(who, department_id)
    async with pool.acquire() as conn:
        return await repository.pauses.listing(
            conn, state=state, department_id=department_id, areas=areas, limit=limit, offset=offset
        )
