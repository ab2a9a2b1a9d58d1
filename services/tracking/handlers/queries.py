"""Supervisors' reads: who may read a case and its history, which part of the boards one sees."""

from __future__ import annotations

from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from services.tracking import repository
from services.tracking.domain import CaseView
from services.tracking.repository import AssignmentRow
from services.tracking.repository import forecast as forecast_repo
from services.tracking.repository import sla as sla_repo
from services.tracking.repository.sla import ClockRow
from shared.auth import Forbidden, Principal, Role
from shared.db import Conn
from shared.errors import NotFound

# --- who may read what ----------------------------------------------------------------------


def require_case_reader(who: Principal, case: CaseView, assignments: list[AssignmentRow]) -> None:
    """Department staff read a case only if their department has an assignment on it (in any
    state); everyone else only if the case lies in the area they act for."""
    if who.role is Role.DEPARTMENT:
        if not any(a.department_id == who.department_id for a in assignments):
            raise Forbidden(
                f"本部门（{who.department_id}）在该案件上没有派单，无权查看其全过程",
                f"department '{who.department_id}' has no assignment on this case",
                code="not_your_case",
            )
        return
    who.require_area(case.area_path)


class BoardScope(NamedTuple):
    """What part of the overdue board a caller sees: cases under any of ``area_roots`` (None:
    no area restriction) and, if set, only ``department_id``'s assignments."""

    area_roots: tuple[str, ...] | None
    department_id: str | None


def board_scope(who: Principal, *, area: str | None, department_id: str | None) -> BoardScope:
    """Narrow the caller's own scope by the requested filters; a filter reaching outside the
    scope is refused rather than silently emptied."""
    if who.role is Role.DEPARTMENT:
        if department_id is not None and department_id != who.department_id:
            raise Forbidden(
                f"只能查看本部门的超时事项（本部门：{who.department_id}，请求：{department_id}）",
                f"department staff see only their own department's overdue items "
                f"(yours: {who.department_id}, requested: {department_id})",
                code="not_your_department",
            )
        return BoardScope((area,) if area is not None else None, who.department_id)
    if area is not None:
        who.require_area(area)
        return BoardScope((area,), department_id)
    return BoardScope(who.area_filter(), department_id)


# --- queries for supervisors --------------------------------------------------------------------


class CaseHistory(NamedTuple):
    case: CaseView
    assignments: list[AssignmentRow]
    events: list[asyncpg.Record]
    clocks: list[ClockRow]
    forecast: dict[str, Any] | None = None  # the case's resolution forecast (预计办结时间)


async def case_history(pool: asyncpg.Pool, case_id: UUID, who: Principal) -> CaseHistory:
    """The case, its assignments and its timeline, if ``who`` may read them."""
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        case = await repository.get_case(conn, case_id)
        if case is None:
            raise NotFound(
                f"案件 {case_id} 不存在或尚未同步到督办系统",
                f"case {case_id} not found (or not yet known to tracking)",
                code="case_not_found",
            )
        assignments = await repository.case_assignments(conn, case_id)
        require_case_reader(who, case, assignments)
        return CaseHistory(
            case,
            assignments,
            await repository.timeline(conn, case_id),
            await sla_repo.case_clocks(conn, case_id),
            await _forecast(conn, case_id),
        )


async def _forecast(conn: Conn, case_id: UUID) -> dict[str, Any] | None:
    row = await forecast_repo.case_forecast(conn, case_id)
    return None if row is None else dict(row)
