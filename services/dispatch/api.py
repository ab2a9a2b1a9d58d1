"""Dispatch's HTTP routes: the catalogue, routing rules, the departments' inboxes and their
actions (报到, 退单, 转办, 办理进展, 办结), and the queue of cases waiting for manual dispatch.

Every route states its authorisation rule in one line (``allow(...)`` or ``PUBLIC``); scope
(the holder's area subtree, or the department of the token) is checked in the handlers,
before anything is written."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.dispatch import handlers, repository
from services.dispatch.domain import (
    KIND_ZH,
    ROLE_ZH,
    STATE_ZH,
    Assignment,
    AssignmentState,
    Department,
    RoutingRule,
    new_department,
)
from services.dispatch.domain import Role as AssignmentRole
from shared.auth import PUBLIC, Principal, Role, allow
from shared.events import Priority
from shared.service import pool

Pool = Annotated[asyncpg.Pool, Depends(pool)]
# The department's own actions; which assignment is its own is checked by the handlers.
AssignedDepartment = Annotated[Principal, Depends(allow(Role.DEPARTMENT))]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0)]
AREA_PREFIX = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"

catalogue_router = APIRouter(tags=["catalogue"])
rules_router = APIRouter(tags=["routing rules"])
assignments_router = APIRouter(tags=["assignments"])


# --- catalogue ---------------------------------------------------------------------------


class CategoryOut(BaseModel):
    code: str
    name: str
    parent_code: str | None


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="值班联系人姓名")
    phone: str = Field(description="电话：5–20位数字、“+”或“-”，如0351-4012345")
    role: str | None = Field(None, description="职务，如值班领导")


class DepartmentIn(BaseModel):
    """A department as the administrator describes it; checked by the domain, so a bad
    field gets a message in Chinese that names it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="部门名称")
    kind: str = Field(description="functional 职能部门 | street_office 街道办事处 | "
                                  "co_building 驻区单位 | property 物业企业 | volunteer 志愿服务队")
    areas: list[str] = Field(description="服务区域（区域路径前缀），至少一个，如YA/YA02/YA0201")
    contacts: list[ContactIn] = Field(default_factory=list, description="值班联系人")


class ContactOut(BaseModel):
    name: str
    phone: str
    role: str | None = None


class DepartmentOut(BaseModel):
    id: str
    name: str
    kind: str
    kind_zh: str
    areas: list[str]
    contacts: list[ContactOut]

    @classmethod
    def of(cls, d: Department) -> DepartmentOut:
        return cls(id=d.id, name=d.name, kind=d.kind, kind_zh=KIND_ZH.get(d.kind, d.kind),
                   areas=list(d.areas), contacts=[ContactOut(**vars(c)) for c in d.contacts])


@catalogue_router.get("/categories", response_model=list[CategoryOut],
                      summary="The category catalogue (intake keeps a replica of it)",
                      dependencies=[Depends(PUBLIC)])
async def list_categories(db: Pool) -> list[CategoryOut]:
    async with db.acquire() as conn:
        return [CategoryOut(**vars(c)) for c in await repository.list_categories(conn)]


@catalogue_router.get("/departments", response_model=list[DepartmentOut],
                      summary="Departments that receive dispatches")
async def list_departments(
    db: Pool,
    who: Annotated[Principal, Depends(allow(*Role))],
) -> list[DepartmentOut]:
    async with db.acquire() as conn:
        return [DepartmentOut.of(d) for d in await repository.list_departments(conn)]


@catalogue_router.get("/departments/{department_id}", response_model=DepartmentOut,
                      summary="One department: kind, the areas it serves, its duty contacts")
async def get_department(
    department_id: str, db: Pool,
    who: Annotated[Principal, Depends(allow(*Role))],
) -> DepartmentOut:
    return DepartmentOut.of(await handlers.get_department(db, department_id))


@catalogue_router.put("/departments/{department_id}", response_model=DepartmentOut,
                      summary="Create (201) or replace (200) a department",
                      responses={201: {"model": DepartmentOut, "description": "Created"}})
async def put_department(
    department_id: str, body: DepartmentIn, db: Pool, response: Response,
    who: Annotated[Principal, Depends(allow(Role.ADMIN))],
) -> DepartmentOut:
    """Admin only. Every field is checked before anything is written: an unknown kind, a
    malformed area path or phone number is a 422 naming the field, and nothing changes."""
    dept = new_department(department_id, body.name, body.kind, body.areas,
                          [(c.name, c.phone, c.role) for c in body.contacts])
    if await handlers.put_department(db, dept, who):
        response.status_code = 201
    return DepartmentOut.of(dept)


# --- routing rules -----------------------------------------------------------------------


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category_code: str = Field(min_length=1, max_length=32, description="事件分类编码")
    area_prefix: str = Field(min_length=1, max_length=200, pattern=AREA_PREFIX,
                             description="area path prefix, e.g. YA/YA02/YA0201")
    department_id: str = Field(min_length=1, max_length=64, description="主办部门")


class RuleOut(BaseModel):
    id: int
    category_code: str
    area_prefix: str
    department_id: str
    department_name: str | None = None

    @classmethod
    def of(cls, r: RoutingRule, dept: Department | None = None) -> RuleOut:
        return cls(**vars(r), department_name=dept.name if dept else None)


@rules_router.get("/routing-rules", response_model=list[RuleOut], summary="Routing rules")
async def list_rules(
    db: Pool,
    who: Annotated[Principal, Depends(allow(Role.ADMIN, Role.DISTRICT, Role.SUPERVISOR))],
    category: Annotated[str | None, Query(max_length=32)] = None,
) -> list[RuleOut]:
    async with db.acquire() as conn:
        names = {d.id: d for d in await repository.list_departments(conn)}
        return [RuleOut.of(r, names.get(r.department_id))
                for r in await repository.list_rules(conn, category)]


@rules_router.post("/routing-rules", status_code=201, response_model=RuleOut,
                   summary="Add a routing rule (category × area → lead department)")
async def add_rule(
    body: RuleIn, db: Pool, who: Annotated[Principal, Depends(allow(Role.ADMIN))]
) -> RuleOut:
    rule, dept = await handlers.add_rule(db, handlers.AddRule(**body.model_dump()))
    return RuleOut.of(rule, dept)


# --- assignments -------------------------------------------------------------------------


class AssignmentOut(BaseModel):
    id: UUID
    case_id: UUID
    case_no: str
    department_id: str
    department_name: str
    role: AssignmentRole
    role_label: str
    state: AssignmentState
    state_label: str
    rule_id: int | None
    reason: str
    area_path: str
    category: str
    priority: Priority
    description: str
    note: str | None
    result: str | None
    dispatched_at: datetime
    signed_for_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    exit_reason: str | None = Field(description="退单/转办理由")
    exited_at: datetime | None
    transferred_to: str | None = Field(description="转办给哪个部门")

    @classmethod
    def of(cls, a: Assignment) -> AssignmentOut:
        return cls(**vars(a), role_label=ROLE_ZH[a.role], state_label=STATE_ZH[a.state])


class NoteOut(BaseModel):
    id: int
    note: str
    actor_subject: str
    actor_name: str | None
    created_at: datetime


class AssignmentDetailOut(AssignmentOut):
    notes: list[NoteOut] = Field(description="办理进展, newest last")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, description="退单理由")


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_department_id: str = Field(min_length=1, max_length=64, description="转给哪个部门")
    reason: str = Field(min_length=1, max_length=2000, description="转办理由")


class ProgressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, description="办理进展")


class SignForIn(BaseModel):
    """报到 needs nothing but the token: the acting department is the token's."""

    model_config = ConfigDict(extra="forbid")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: str = Field(min_length=1, max_length=2000, description="办理结果")


@assignments_router.get("/departments/{department_id}/assignments",
                        response_model=list[AssignmentOut],
                        summary="A department's assignments (its inbox)")
async def department_assignments(
    department_id: str, db: Pool,
    who: Annotated[Principal, Depends(allow(Role.DEPARTMENT, Role.COMMUNITY, Role.STREET,
                                            Role.DISTRICT, Role.SUPERVISOR))],
    state: AssignmentState | None = None, priority: Priority | None = None,
    sort: Literal["dispatched_at", "deadline", "priority"] = "dispatched_at",
    limit: Limit = 50, offset: Offset = 0,
) -> list[AssignmentOut]:
    """Department staff read their own department's inbox; community, street, district and
    supervisors read the department's assignments inside their area subtree.

    ``sort``: ``dispatched_at`` (default) newest first; ``deadline`` the earliest deadline
    first — dispatch does not own the clocks (tracking does) and the sign-for deadline is a
    fixed period after dispatch, so for now this orders by ``dispatched_at``, oldest first;
    ``priority`` urgent → normal → minor, then oldest first."""
    _, rows = await handlers.department_assignments(db, who, department_id, state, limit, offset,
                                                    priority, sort)
    return [AssignmentOut.of(a) for a in rows]


@assignments_router.get("/assignments/{assignment_id}", response_model=AssignmentDetailOut,
                        summary="Read an assignment, with its progress notes")
async def get_assignment(
    assignment_id: UUID, db: Pool,
    who: Annotated[Principal, Depends(allow(Role.DEPARTMENT, Role.COMMUNITY, Role.STREET,
                                            Role.DISTRICT, Role.SUPERVISOR))],
) -> AssignmentDetailOut:
    """The assigned department, or an area holder whose subtree contains the case."""
    a, notes = await handlers.get_assignment(db, who, assignment_id)
    return AssignmentDetailOut(**AssignmentOut.of(a).model_dump(),
                               notes=[NoteOut(**vars(n)) for n in notes])


@assignments_router.post("/assignments/{assignment_id}/sign-for", response_model=AssignmentOut,
                         summary="Sign for the assignment (报到)")
async def sign_for(
    assignment_id: UUID, db: Pool,
    who: AssignedDepartment,
    body: SignForIn | None = None,
) -> AssignmentOut:
    """Only the assigned department; no body (or ``{}``) is needed."""
    return AssignmentOut.of(await handlers.sign_for(db, who, assignment_id))


@assignments_router.post("/assignments/{assignment_id}/resolve", response_model=AssignmentOut,
                         summary="Report the case handled, with the result (办结)")
async def resolve(
    assignment_id: UUID, body: ResolveIn, db: Pool,
    who: AssignedDepartment,
) -> AssignmentOut:
    """Only the assigned department, after it signed for the assignment."""
    return AssignmentOut.of(await handlers.resolve(db, who, assignment_id, body.result))


@assignments_router.post("/assignments/{assignment_id}/reject", response_model=AssignmentOut,
                         summary="Push back a misrouted assignment, with a reason (退单)")
async def reject(
    assignment_id: UUID, body: RejectIn, db: Pool,
    who: AssignedDepartment,
) -> AssignmentOut:
    """Only the assigned department, before it signed for the assignment (afterwards: 转办).
    The case goes on to the next candidate department, or — none left — to the community for
    manual dispatch (社区协调)."""
    return AssignmentOut.of(await handlers.reject(db, who, assignment_id, body.reason))


@assignments_router.post("/assignments/{assignment_id}/transfer", response_model=AssignmentOut,
                         summary="Hand the assignment on to another department (转办)")
async def transfer(
    assignment_id: UUID, body: TransferIn, db: Pool,
    who: AssignedDepartment,
) -> AssignmentOut:
    """Only the assigned department, while dispatched or signed for; the target department
    gets a new assignment of the same role."""
    return AssignmentOut.of(await handlers.transfer(db, who, assignment_id,
                                                    body.to_department_id, body.reason))


@assignments_router.post("/assignments/{assignment_id}/progress", status_code=201,
                         response_model=NoteOut, summary="Record a progress note (办理进展)")
async def progress(
    assignment_id: UUID, body: ProgressIn, db: Pool,
    who: AssignedDepartment,
) -> NoteOut:
    """Only the assigned department, after it signed for the assignment."""
    _, note = await handlers.progress(db, who, assignment_id, body.note)
    return NoteOut(**vars(note))


# --- manual dispatch ---------------------------------------------------------------------


class WaitingCaseOut(BaseModel):
    case_id: UUID
    case_no: str
    area_path: str
    category: str
    priority: Priority
    description: str
    departments: list[str]
    note: str | None
    reason: str
    whistled_at: datetime
    queued_at: datetime


@assignments_router.get("/manual-dispatch", response_model=list[WaitingCaseOut],
                        summary="Whistled cases no rule could route (待人工派单), oldest first")
async def manual_dispatch(
    db: Pool,
    who: Annotated[Principal, Depends(allow(Role.COMMUNITY, Role.STREET, Role.DISTRICT,
                                            Role.SUPERVISOR))],
    limit: Limit = 50, offset: Offset = 0,
) -> list[WaitingCaseOut]:
    """Only the cases inside the holder's area subtree."""
    async with db.acquire() as conn:
        waiting = await repository.list_waiting(conn, who.area_filter(), limit, offset)
    return [WaitingCaseOut(**vars(w)) for w in waiting]
