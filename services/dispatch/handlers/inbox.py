"""The department's side (部门报到): sign for, resolve, transfer, progress notes, and reading
assignments and inboxes. Each use case is one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from services.dispatch import repository
from services.dispatch.domain import (
    Assignment,
    AssignmentState,
    Department,
    ExtensionRequest,
    PauseEnd,
    PauseRequest,
)
from services.dispatch.handlers.common import (
    assignment_not_found,
    dispatched_event,
    event,
    assignment_facts,
    locked_assignment,
    locked_case_of,
    log,
    next_assignment,
    require_reader,
)
from services.dispatch.handlers.pauses import end_with
from services.dispatch.repository import Note
from shared import outbox
from shared.auth import Principal
from shared.contract import (
    CaseProgressed,
    CaseResolved,
    CaseSignedFor,
    CaseTransferred,
    DispatchBasis,
    Priority,
)
from shared.errors import Conflict, Invalid, NotFound
from shared.db import Conn


async def sign_for(pool: asyncpg.Pool, who: Principal, assignment_id: UUID) -> Assignment:
    """报到: the assigned department signs for its assignment."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        a = await locked_assignment(conn, assignment_id)
        who.require_department(a.department_id)  # before the state: a stranger learns nothing
        a = a.sign_for(now)
        await repository.update_assignment(conn, a)
        await outbox.add(
            conn,
            event(
                CaseSignedFor(**assignment_facts(a)),
                a.case_id,
                who.actor,
                now,
            ),
        )
    log.info(
        "assignment_signed_for",
        assignment_id=str(a.id),
        department_id=a.department_id,
        actor=who.subject,
    )
    return a


async def resolve(
    pool: asyncpg.Pool,
    who: Principal,
    assignment_id: UUID,
    result: str,
    photo_ids: tuple[UUID, ...] = (),
) -> Assignment:
    """办结: the assigned department reports the case handled, with its result and the
    after-photos (整改后) it uploaded to the case. In a joint case (联合办理) the case as a
    whole is resolved when the lead resolved and every co-handler reported (no assignment of
    it open, none waiting for manual dispatch)."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        # Every assignment of the case is locked: the last to report is the one who sees all
        # others done.
        a = await locked_case_of(conn, assignment_id)
        who.require_department(a.department_id)
        a = a.resolve(result, now, photo_ids)
        await _check_photos(conn, a)
        await repository.update_assignment(conn, a)
        a = await end_with(conn, a, PauseEnd.RESOLVED, who.subject, now)  # 挂账/缓办 ends with it
        case_resolved = not await repository.work_left(conn, a.case_id)
        await outbox.add(
            conn,
            event(
                CaseResolved(
                    **assignment_facts(a),
                    result=a.result or "",
                    case_resolved=case_resolved,
                    photo_ids=list(a.photo_ids),
                ),
                a.case_id,
                who.actor,
                now,
            ),
        )
    log.info(
        "assignment_resolved",
        assignment_id=str(a.id),
        department_id=a.department_id,
        actor=who.subject,
    )
    return a


async def _check_photos(conn: Conn, a: Assignment) -> None:
    """Every cited photo must be an after-photo this department uploaded to this case."""
    if not a.photo_ids:
        return
    own = await repository.department_after_photos(conn, a.case_id, a.department_id)
    for i, photo_id in enumerate(a.photo_ids):
        if photo_id not in own:
            raise Invalid(
                f"photo_ids[{i}]：照片 {photo_id} 不是本部门为该案件上传的整改后照片"
                "（刚上传的照片可能尚未同步，请稍候几秒重试）",
                f"photo_ids[{i}]: photo {photo_id} is not an after-photo your department"
                " uploaded to this case (a photo uploaded a moment ago may not have arrived"
                " yet; retry in a few seconds)",
                code="unknown_photo",
            )


async def transfer(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID, to_department_id: str, reason: str
) -> Assignment:
    """转办: the assigned department hands its assignment on to another department, with a
    reason; the target gets a new assignment of the same role."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        a = await locked_case_of(conn, assignment_id)
        who.require_department(a.department_id)  # before the state: a stranger learns nothing
        a = a.transfer(to_department_id, reason, now)
        target = await repository.get_department(conn, to_department_id)
        if target is None:
            raise Invalid(
                f"部门“{to_department_id}”不存在",
                f"unknown department '{to_department_id}'",
                code="unknown_department",
            )
        nxt = next_assignment(
            a,
            target,
            a.role,
            None,
            f"由{a.department_name}转办：{a.exit_reason}",
            DispatchBasis.TRANSFER,
            now,
        )
        await repository.update_assignment(conn, a)
        a = await end_with(conn, a, PauseEnd.TRANSFERRED, who.subject, now)
        if not await repository.insert_assignment(conn, nxt):
            raise _already_open(target)  # rolls the transfer back
        await outbox.add(
            conn,
            event(
                CaseTransferred(
                    **assignment_facts(a),
                    to_department_id=target.id,
                    reason=a.exit_reason or "",
                ),
                a.case_id,
                who.actor,
                now,
            ),
            dispatched_event(nxt, who.actor),
        )
    log.info(
        "assignment_transferred",
        assignment_id=str(a.id),
        department_id=a.department_id,
        to_department_id=target.id,
        actor=who.subject,
    )
    return a


def _already_open(target: Department) -> Conflict:
    return Conflict(
        f"{target.name}已有该案件未办结的派单，不能重复转办",
        f"department '{target.id}' already has an open assignment on this case",
        code="already_assigned",
    )


async def progress(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID, note: str
) -> tuple[Assignment, Note]:
    """办理进展: the assigned department records a progress note while it handles the case."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        a = await locked_assignment(conn, assignment_id)
        who.require_department(a.department_id)
        a, text = a.progress(note, now)
        await repository.update_assignment(conn, a)
        saved = await repository.add_note(conn, a.id, text, who.subject, who.actor.name, now)
        await outbox.add(
            conn,
            event(
                CaseProgressed(**assignment_facts(a), note=text),
                a.case_id,
                who.actor,
                now,
            ),
        )
    log.info(
        "assignment_progressed",
        assignment_id=str(a.id),
        department_id=a.department_id,
        actor=who.subject,
    )
    return a, saved


async def get_assignment(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID
) -> tuple[Assignment, list[Note], list[ExtensionRequest], list[PauseRequest]]:
    """The assignment, its progress notes (newest last), extension and pause requests."""
    async with pool.acquire() as conn:
        a = await repository.get_assignment(conn, assignment_id)
        if a is None:
            raise assignment_not_found(assignment_id)
        require_reader(who, a)
        notes = await repository.list_notes(conn, assignment_id)
        extensions = await repository.extensions.REQUESTS.of_assignment(conn, assignment_id)
        pauses = await repository.pauses.REQUESTS.of_assignment(conn, assignment_id)
    return a, notes, extensions, pauses


async def department_assignments(
    pool: asyncpg.Pool,
    who: Principal,
    department_id: str,
    state: AssignmentState | None,
    limit: int,
    offset: int,
    priority: Priority | None = None,
    sort: str = "dispatched_at",
    case_no: str | None = None,
) -> tuple[Department, list[Assignment]]:
    """A department's inbox (待报到, 办理中, 已办结): all of it for its own staff; for area
    holders, the part inside their subtree. ``case_no``: only that case's assignments."""
    areas = who.area_filter()
    if areas is None:
        who.require_department(department_id)
    async with pool.acquire() as conn:
        dept = await repository.get_department(conn, department_id)
        if dept is None:
            raise NotFound(
                f"部门“{department_id}”不存在",
                f"department '{department_id}' not found",
                code="department_not_found",
            )
        rows = await repository.list_assignments(
            conn,
            department_id,
            state.value if state else None,
            areas,
            limit,
            offset,
            priority.value if priority else None,
            sort,
            case_no.strip().upper() if case_no else None,
        )
    return dept, rows
