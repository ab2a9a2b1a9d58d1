"""Extension requests (延期申请): the department asks, a supervisor (督办) decides. Each an
event carrying who did it."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from services.dispatch import domain, repository
from services.dispatch.domain import AssignmentState, ExtensionRequest
from services.dispatch.handlers.common import (
    event,
    facts,
    locked_assignment,
    log,
    require_reader,
)
from shared import outbox
from shared.auth import Principal
from shared.errors import Conflict, NotFound
from shared.contract import CaseExtensionDecided, CaseExtensionRequested


async def request(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID, days: int, reason: str
) -> ExtensionRequest:
    """延期申请: only the assigned department, while it handles the case."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        a = await locked_assignment(conn, assignment_id)
        who.require_department(a.department_id)
        e = domain.request_extension(
            a,
            days,
            reason,
            pending=await repository.extensions.has_pending(conn, a.id),
            request_id=uuid4(),
            by=who.subject,
            now=now,
        )
        if not await repository.extensions.insert(conn, e):  # pragma: no cover - row lock
            raise Conflict(
                "该派单已有待审批的延期申请",
                "a request is already pending",
                code="extension_pending",
            )
        await outbox.add(
            conn,
            event(
                CaseExtensionRequested(
                    **facts(a),
                    request_id=e.id,
                    assignment_id=a.id,
                    department_id=a.department_id,
                    department_name=a.department_name,
                    days=e.days,
                    reason=e.reason,
                ),
                a.case_id,
                who.actor,
                now,
            ),
        )
    log.info("extension_requested", assignment_id=str(a.id), days=e.days, actor=who.subject)
    return e


def _not_found(request_id: UUID) -> NotFound:
    return NotFound(
        f"延期申请 {request_id} 不存在",
        f"extension request {request_id} not found",
        code="extension_not_found",
    )


async def decide(
    pool: asyncpg.Pool,
    who: Principal,
    request_id: UUID,
    *,
    approve: bool,
    days: int | None,
    comment: str | None,
) -> ExtensionRequest:
    """批准 or 驳回: a supervisor whose area contains the case. Approval needs the assignment
    still in hand (a resolved or handed-on assignment needs no more time)."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        e = await repository.extensions.get(conn, request_id, lock=True)
        if e is None:
            raise _not_found(request_id)
        a = await locked_assignment(conn, e.assignment_id)
        who.require_area(a.area_path)  # before the state: a stranger learns nothing
        if approve:
            if a.state is not AssignmentState.SIGNED_FOR:
                raise Conflict(
                    f"派单已“{domain.STATE_ZH[a.state]}”，无需再批准延期，请驳回",
                    f"the assignment is {a.state}: it needs no extension; refuse the request",
                    code="invalid_state",
                )
            e = e.approve(days, comment, who.subject, now)
        else:
            e = e.refuse(comment or "", who.subject, now)
        await repository.extensions.decide(conn, e)
        await outbox.add(
            conn,
            event(
                CaseExtensionDecided(
                    **facts(a),
                    request_id=e.id,
                    assignment_id=a.id,
                    department_id=a.department_id,
                    department_name=a.department_name,
                    approved=approve,
                    days=e.granted_days or 0,
                    comment=e.comment,
                ),
                a.case_id,
                who.actor,
                now,
            ),
        )
    log.info(
        "extension_decided",
        request_id=str(e.id),
        approved=approve,
        days=e.granted_days,
        actor=who.subject,
    )
    return e


async def read(pool: asyncpg.Pool, who: Principal, request_id: UUID) -> ExtensionRequest:
    async with pool.acquire() as conn:
        e = await repository.extensions.get(conn, request_id)
        if e is None:
            raise _not_found(request_id)
        a = await repository.get_assignment(conn, e.assignment_id)
        assert a is not None
    require_reader(who, a)
    return e


def request_scope(
    who: Principal, department_id: str | None
) -> tuple[str | None, tuple[str, ...] | None]:
    """Which requests (延期, 挂账/缓办) a caller lists: department staff only their own
    department's, whatever they ask for; area holders those inside their subtrees."""
    areas = who.area_filter()
    return (who.department_id if areas is None else department_id), areas


async def listing(
    pool: asyncpg.Pool,
    who: Principal,
    state: str | None,
    department_id: str | None,
    limit: int,
    offset: int,
) -> list[ExtensionRequest]:
    """Department staff see their own department's requests; area holders those of cases
    inside their subtree."""
    department_id, areas = request_scope(who, department_id)
    async with pool.acquire() as conn:
        return await repository.extensions.listing(
            conn, state=state, department_id=department_id, areas=areas, limit=limit, offset=offset
        )
