"""Urging (督办): a supervisor — or the community, street or district over the case — hurries
the departments handling a case. Each open assignment (or the named department's) hears one
``case.urged``, numbered: the n-th urging of that assignment; the boards show the count."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.tracking import handlers
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.service import Pool

router = APIRouter(tags=["urging"])


class UrgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # stripped before its length is checked: a blank note is refused (422), not recorded
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] = (
        Field(description="what the department is asked")
    )
    department_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="urge only this department's assignment",
    )


class UrgingOut(BaseModel):
    event_id: UUID
    assignment_id: UUID
    department_id: str
    department_name: str
    count: int = Field(description="the n-th urging of this assignment")


class UrgedOut(BaseModel):
    case_id: UUID
    urged_at: datetime
    urgings: list[UrgingOut]


@router.post(
    "/cases/{case_id}/urge",
    response_model=UrgedOut,
    status_code=201,
    summary="Urge the departments handling a case (督办): one case.urged per open "
    "assignment, or the named department's",
)
async def urge(
    case_id: UUID,
    body: UrgeIn,
    db: Pool,
    response: Response,
    who: Annotated[Principal, Depends(allow(*AREA_ROLES, Role.SUPERVISOR))],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="makes a retried urging safe: the same key (and request) answers 200 with "
            "the urgings made the first time; used for another request, 409",
        ),
    ] = None,
) -> UrgedOut:
    now = datetime.now(UTC)
    events = await handlers.urge_case(
        db,
        case_id,
        who,
        note=body.note,
        department_id=body.department_id,
        now=now,
        idempotency_key=idempotency_key,
    )
    urged_at = events[0].occurred_at if events else now
    if urged_at != now:  # answered from the first time
        response.status_code = 200
    return UrgedOut(
        case_id=case_id,
        urged_at=urged_at,
        urgings=[
            UrgingOut(
                event_id=e.event_id,
                assignment_id=e.payload.assignment_id,
                department_id=e.payload.department_id,
                department_name=e.payload.department_name,
                count=e.payload.count,
            )
            for e in events
        ],
    )
