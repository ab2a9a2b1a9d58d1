"""The SLA reference data over HTTP: the working calendar (工作日历) and the policy versions
(时限策略). Everyone signed in may read them (a department sees how its deadlines are
counted); only admin changes them. Invalid input is refused (422, the field named, Chinese
first) and changes nothing.

- ``GET /sla/calendar``, ``PUT /sla/calendar`` — read; replace (the old one is kept).
- ``GET /sla/policy-versions``, ``GET /sla/policy-versions/{version}``,
  ``POST /sla/policy-versions`` — list; read one; add one (never edit: assignments pin the
  version in force at their dispatch).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, Field

from services.tracking.handlers import sla
from shared.auth import Principal, Role, allow
from shared.service import Pool

router = APIRouter(prefix="/sla", tags=["sla"])
Anyone = Annotated[Principal, Depends(allow(*Role))]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]

CALENDAR_EXAMPLE = {
    "timezone": "Asia/Shanghai",
    "hours": {
        d: [["08:30", "12:00"], ["13:30", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")
    },
    "holidays": ["2026-10-01/2026-10-07"],
    "makeup_days": ["2026-10-10"],
}


class CalendarOut(BaseModel):
    revision: int
    calendar: dict[str, Any] = Field(
        description="timezone, hours per weekday, holidays, "
        "make-up working days (调休上班), make-up hours"
    )
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, r: asyncpg.Record) -> CalendarOut:
        return cls(
            revision=r["revision"],
            calendar=r["data"],
            created_at=r["created_at"],
            created_by=r["created_by"],
        )


class PolicyVersionOut(BaseModel):
    version: int
    effective_from: datetime
    policy: dict[str, Any] = Field(
        description="note, defaults per priority, rules per category code and priority"
    )
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, r: asyncpg.Record) -> PolicyVersionOut:
        return cls(
            version=r["version"],
            effective_from=r["effective_from"],
            policy=r["data"],
            created_at=r["created_at"],
            created_by=r["created_by"],
        )


class PolicyVersionsOut(BaseModel):
    items: list[PolicyVersionOut]


@router.get(
    "/calendar",
    response_model=CalendarOut,
    summary="The working calendar clocks count in (工作日历)",
)
async def get_calendar(db: Pool, who: Anyone) -> CalendarOut:
    return CalendarOut.of(await sla.current_calendar(db))


@router.put(
    "/calendar",
    response_model=CalendarOut,
    summary="Replace the working calendar (new clocks use it; scheduled ones stay)",
)
async def put_calendar(
    db: Pool,
    who: Admin,
    data: Annotated[dict[str, Any], Body(examples=[CALENDAR_EXAMPLE])],
) -> CalendarOut:
    return CalendarOut.of(await sla.replace_calendar(db, data, who))


@router.get(
    "/policy-versions",
    response_model=PolicyVersionsOut,
    summary="SLA policy versions, in the order they take effect (时限策略)",
)
async def list_policy_versions(db: Pool, who: Anyone) -> PolicyVersionsOut:
    return PolicyVersionsOut(items=[PolicyVersionOut.of(r) for r in await sla.policy_versions(db)])


@router.get(
    "/policy-versions/{version}", response_model=PolicyVersionOut, summary="One SLA policy version"
)
async def get_policy_version(
    db: Pool,
    who: Anyone,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
) -> PolicyVersionOut:
    return PolicyVersionOut.of(await sla.policy_version(db, version))


@router.post(
    "/policy-versions",
    response_model=PolicyVersionOut,
    status_code=201,
    summary="Add an SLA policy version, in force from its effective_from",
)
async def add_policy_version(
    db: Pool,
    who: Admin,
    data: Annotated[dict[str, Any], Body()],
) -> PolicyVersionOut:
    return PolicyVersionOut.of(await sla.add_policy_version(db, data, who, datetime.now(UTC)))
