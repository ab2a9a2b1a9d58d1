"""Extension requests (延期申请): the department asks for more working days, a supervisor
(督办) decides — all the days, fewer, or none. Each an event carrying who did it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from services.dispatch import domain, repository
from services.dispatch.domain import Assignment, ExtensionRequest
from services.dispatch.domain.extensions import EXTENSION
from services.dispatch.handlers import approvals
from services.dispatch.handlers.approvals import about
from services.dispatch.handlers.common import log
from shared.auth import Principal
from shared.contract import CaseExtensionDecided, CaseExtensionRequested


def _requested(e: ExtensionRequest, a: Assignment) -> CaseExtensionRequested:
    return CaseExtensionRequested(**about(e, a), days=e.days, reason=e.reason)


def _decided(e: ExtensionRequest, a: Assignment, approved: bool) -> CaseExtensionDecided:
    return CaseExtensionDecided(
        **about(e, a), approved=approved, days=e.granted_days or 0, comment=e.comment
    )


EXTENSIONS = approvals.Workflow(EXTENSION, repository.extensions.REQUESTS, _requested, _decided)


async def request(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID, days: int, reason: str
) -> ExtensionRequest:
    """延期申请: only the assigned department, while it handles the case."""

    def new(a: Assignment, **how: Any) -> ExtensionRequest:
        return domain.request_extension(a, days, reason, **how)

    e = await EXTENSIONS.ask(pool, who, assignment_id, new)
    log.info(
        "extension_requested", assignment_id=str(e.assignment_id), days=e.days, actor=who.subject
    )
    return e


async def decide(
    pool: asyncpg.Pool,
    who: Principal,
    request_id: UUID,
    *,
    approve: bool,
    days: int | None,
    comment: str | None,
) -> ExtensionRequest:
    """批准 (all the days asked for, or fewer) or 驳回: a supervisor whose area contains the
    case. A resolved or handed-on assignment needs no more time."""
    e = await EXTENSIONS.decide(
        pool,
        who,
        request_id,
        approve=approve,
        approval=lambda e, by, now: e.approve(days, comment, by, now),
        comment=comment,
    )
    log.info(
        "extension_decided",
        request_id=str(e.id),
        approved=approve,
        days=e.granted_days,
        actor=who.subject,
    )
    return e


# Reading one request and listing them go the same way for every kind.
read = EXTENSIONS.read
listing = EXTENSIONS.listing
