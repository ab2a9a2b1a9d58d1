"""Pauses (挂账/缓办): the department asks, a supervisor (督办) decides, the department (or a
supervisor) resumes the work (恢复办理). Each an event carrying who did it; a pause still
running when its assignment is resolved or transferred ends with it (recorded, no event: the
assignment's own event stops every clock)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.dispatch import domain, repository
from services.dispatch.domain import Assignment, PauseEnd, PauseRequest
from services.dispatch.domain.pauses import PAUSE
from services.dispatch.handlers import approvals
from services.dispatch.handlers.approvals import about
from services.dispatch.handlers.common import event, locked_assignment, log
from shared import outbox
from shared.auth import Principal, Role
from shared.contract import CasePauseDecided, CasePauseRequested, CaseResumed, PauseKind
from shared.db import Conn


def _requested(p: PauseRequest, a: Assignment) -> CasePauseRequested:
    return CasePauseRequested(**about(p, a), kind=p.kind, reason=p.reason)


def _decided(p: PauseRequest, a: Assignment, approved: bool) -> CasePauseDecided:
    return CasePauseDecided(
        **about(p, a), kind=p.kind, reason=p.reason, approved=approved, comment=p.comment
    )


PAUSES = approvals.Workflow(PAUSE, repository.pauses.REQUESTS, _requested, _decided)


async def request(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID, kind: PauseKind, reason: str
) -> PauseRequest:
    """挂账/缓办申请: only the assigned department, while it handles the case."""

    def new(a: Assignment, **how: Any) -> PauseRequest:
        return domain.request_pause(a, kind, reason, **how)

    p = await PAUSES.ask(pool, who, assignment_id, new)
    log.info(
        "pause_requested",
        assignment_id=str(p.assignment_id),
        kind=p.kind.value,
        actor=who.subject,
    )
    return p


async def decide(
    pool: asyncpg.Pool, who: Principal, request_id: UUID, *, approve: bool, comment: str | None
) -> PauseRequest:
    """批准 or 驳回: a supervisor whose area contains the case. A resolved or handed-on
    assignment has no clock left to stop."""
    p = await PAUSES.decide(
        pool,
        who,
        request_id,
        approve=approve,
        approval=lambda p, by, now: p.approve(comment, by, now),
        comment=comment,
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
        await PAUSES.requests.save(conn, p)
        await outbox.add(
            conn, event(CaseResumed(**about(p, a), note=p.end_note), a.case_id, who.actor, now)
        )
    log.info("pause_resumed", assignment_id=str(a.id), request_id=str(p.id), actor=who.subject)
    return p


async def end_with(conn: Conn, a: Assignment, how: PauseEnd, by: str, now: datetime) -> Assignment:
    """The assignment was resolved or handed on while paused: the pause ends with it.
    Returns the assignment as it now is: not paused."""
    running = await repository.pauses.running(conn, a.id)
    if running is not None:
        await PAUSES.requests.save(conn, running.end(how, by, now))
        log.info("pause_ended_with_assignment", assignment_id=str(a.id), how=how.value)
    return replace(a, pause_kind=None, paused_since=None)


# Reading one request and listing them go the same way for every kind.
read = PAUSES.read
listing = PAUSES.listing
