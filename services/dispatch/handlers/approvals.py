"""Requests a supervisor (督办) decides — 延期 and 挂账/缓办 — go the same way: the assigned
department asks while it handles the case, a supervisor whose area contains the case approves
(批准) or refuses (驳回), each step an event carrying who did it; the assigned department and
area holders read them. What differs — what is asked for, what approval grants, the events —
each kind passes in as a ``Workflow``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

import asyncpg

from services.dispatch import repository
from services.dispatch.domain import Assignment
from services.dispatch.domain.approvals import ApprovalRequest, RequestKind
from services.dispatch.handlers.common import (
    assignment_facts,
    event,
    locked_assignment,
    require_reader,
)
from services.dispatch.repository.approvals import Requests
from shared import outbox
from shared.auth import Principal
from shared.contract import EventPayload

R = TypeVar("R", bound=ApprovalRequest)


def about(r: ApprovalRequest, a: Assignment) -> dict[str, Any]:
    """What every event about a request says: the case, the request and its department."""
    return {**assignment_facts(a), "request_id": r.id, "department_name": a.department_name}


def request_scope(
    who: Principal, department_id: str | None
) -> tuple[str | None, tuple[str, ...] | None]:
    """Which requests a caller lists: department staff only their own department's,
    whatever they ask for; area holders those inside their subtrees."""
    areas = who.area_filter()
    return (who.department_id if areas is None else department_id), areas


@dataclass(frozen=True)
class Workflow(Generic[R]):
    """One kind of request: its words, its table and its two events."""

    kind: RequestKind
    requests: Requests[R]
    requested: Callable[[R, Assignment], EventPayload]  # CaseExtensionRequested, ...
    decided: Callable[[R, Assignment, bool], EventPayload]  # ... and whether approved

    async def ask(
        self,
        pool: asyncpg.Pool,
        who: Principal,
        assignment_id: UUID,
        new: Callable[..., R],
    ) -> R:
        """The assigned department asks, while it handles the case: ``new(a, pending=,
        request_id=, by=, now=)`` is the domain's rule for what it asks."""
        now = datetime.now(UTC)
        async with pool.acquire() as conn, conn.transaction():
            a = await locked_assignment(conn, assignment_id)
            who.require_department(a.department_id)  # before the state: a stranger learns nothing
            r = new(
                a,
                pending=await self.requests.has_pending(conn, a.id),
                request_id=uuid4(),
                by=who.subject,
                now=now,
            )
            if not await self.requests.insert(conn, r):  # pragma: no cover - row lock
                raise self.kind.pending_raced()
            await outbox.add(conn, event(self.requested(r, a), a.case_id, who.actor, now))
        return r

    async def decide(
        self,
        pool: asyncpg.Pool,
        who: Principal,
        request_id: UUID,
        *,
        approve: bool,
        approval: Callable[[R, str, datetime], R],
        comment: str | None,
    ) -> R:
        """批准 (``approval(r, by, now)``) or 驳回: a supervisor whose area contains the case.
        Approval needs the assignment still in hand."""
        now = datetime.now(UTC)
        async with pool.acquire() as conn, conn.transaction():
            r = await self.requests.get(conn, request_id, lock=True)
            if r is None:
                raise self.kind.not_found(request_id)
            a = await locked_assignment(conn, r.assignment_id)
            who.require_area(a.area_path)  # before the state: a stranger learns nothing
            if approve:
                r.require_approvable(a)
                r = approval(r, who.subject, now)
            else:
                r = r.refuse(comment or "", who.subject, now)
            await self.requests.save(conn, r)
            await outbox.add(conn, event(self.decided(r, a, approve), a.case_id, who.actor, now))
        return r

    async def read(self, pool: asyncpg.Pool, who: Principal, request_id: UUID) -> R:
        """The assigned department, or an area holder whose subtree contains the case."""
        async with pool.acquire() as conn:
            r = await self.requests.get(conn, request_id)
            if r is None:
                raise self.kind.not_found(request_id)
            a = await repository.get_assignment(conn, r.assignment_id)
            assert a is not None
        require_reader(who, a)
        return r

    async def listing(
        self,
        pool: asyncpg.Pool,
        who: Principal,
        state: str | None,
        department_id: str | None,
        limit: int,
        offset: int,
    ) -> list[R]:
        """Department staff see their own department's requests; area holders those of cases
        inside their subtree; oldest first."""
        department_id, areas = request_scope(who, department_id)
        async with pool.acquire() as conn:
            return await self.requests.listing(
                conn,
                state=state,
                department_id=department_id,
                areas=areas,
                limit=limit,
                offset=offset,
            )
