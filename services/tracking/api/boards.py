"""The supervisors' boards (督办): what is late, most late first.

Who may read what (the scope is checked by the handler): community, street, district and
supervisors see their subtree (an ``area`` filter must lie inside it); department staff see
their own department's items.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from services.tracking import domain, handlers
from services.tracking.domain import CaseStatus
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.events import Priority
from shared.service import pool

router = APIRouter(tags=["boards"])
Pool = Annotated[asyncpg.Pool, Depends(pool)]


class OverdueOut(BaseModel):
    case_id: UUID
    case_no: str
    area_path: str
    category: str
    priority: Priority
    status: CaseStatus
    assignment_id: UUID
    department_id: str
    department_name: str | None
    clock: str
    due_at: datetime
    fired_at: datetime
    overdue_seconds: float
    overdue_label: str


class BoardOut(BaseModel):
    as_of: datetime
    items: list[OverdueOut]


@router.get("/overdue", response_model=BoardOut,
            summary="The overdue board: dispatches not signed for in time, most late first "
            "(超时督办)")
async def overdue(
    db: Pool,
    who: Annotated[Principal, Depends(allow(*AREA_ROLES, Role.SUPERVISOR, Role.DEPARTMENT))],
    area: Annotated[str | None, Query(min_length=1, max_length=200,
                                      description="area path prefix, e.g. YA/YA01")] = None,
    department_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> BoardOut:
    now = datetime.now(UTC)
    entries = await handlers.overdue_board(
        db, who, area=area.rstrip("/") if area else None, department_id=department_id,
        limit=limit, offset=offset,
    )
    return BoardOut(as_of=now, items=[_board_item(e, now) for e in entries])


def _board_item(e: domain.OverdueEntry, now: datetime) -> OverdueOut:
    late = e.late_by(now)
    return OverdueOut(
        case_id=e.case_id, case_no=e.case_no, area_path=e.area_path, category=e.category,
        priority=Priority(e.priority), status=e.status, assignment_id=e.assignment_id,
        department_id=e.department_id, department_name=e.department_name, clock=e.clock.value,
        due_at=e.due_at, fired_at=e.fired_at, overdue_seconds=round(late.total_seconds(), 3),
        overdue_label=domain.lateness_label(late),
    )
