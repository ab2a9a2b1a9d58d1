"""The category catalogue and the departments (部门)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from services.dispatch import handlers, repository
from services.dispatch.domain import (
    CLASS_ZH,
    KIND_ZH,
    Category,
    Department,
    default_kind,
    new_department,
)
from shared.dto import fill
from shared.service import Pool
from shared.auth import PUBLIC, Principal, Role, allow

router = APIRouter(tags=["catalogue"])


class CategoryOut(BaseModel):
    code: str
    name: str
    parent_code: str | None
    category_class: str = Field(description="component (部件) or event (事件), as GB/T 30428")
    class_zh: str
    department_kind: str | None = Field(
        description="the kind of department responsible by default (own or inherited from "
        "the 大类): functional | street_office | co_building | property | volunteer"
    )
    department_kind_zh: str | None

    @classmethod
    def of(cls, c: Category, catalogue: dict[str, Category]) -> CategoryOut:
        kind = default_kind(c.code, catalogue)
        return fill(
            cls,
            c,
            category_class=c.category_class.value,
            class_zh=CLASS_ZH[c.category_class],
            department_kind=kind,
            department_kind_zh=KIND_ZH.get(kind) if kind else None,
        )


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
    kind: str = Field(
        description="functional 职能部门 | street_office 街道办事处 | "
        "co_building 驻区单位 | property 物业企业 | volunteer 志愿服务队"
    )
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
        return fill(
            cls,
            d,
            kind_zh=KIND_ZH.get(d.kind, d.kind),
            contacts=[fill(ContactOut, c) for c in d.contacts],
        )


@router.get(
    "/categories",
    response_model=list[CategoryOut],
    summary="The category catalogue (intake keeps a replica of it)",
    dependencies=[Depends(PUBLIC)],
)
async def list_categories(db: Pool) -> list[CategoryOut]:
    async with db.acquire() as conn:
        catalogue = {c.code: c for c in await repository.list_categories(conn)}
    return [CategoryOut.of(c, catalogue) for c in catalogue.values()]


@router.get(
    "/departments",
    response_model=list[DepartmentOut],
    summary="Departments that receive dispatches",
)
async def list_departments(
    db: Pool,
    who: Annotated[Principal, Depends(allow(*Role))],
) -> list[DepartmentOut]:
    async with db.acquire() as conn:
        return [DepartmentOut.of(d) for d in await repository.list_departments(conn)]


@router.get(
    "/departments/{department_id}",
    response_model=DepartmentOut,
    summary="One department: kind, the areas it serves, its duty contacts",
)
async def get_department(
    department_id: str,
    db: Pool,
    who: Annotated[Principal, Depends(allow(*Role))],
) -> DepartmentOut:
    return DepartmentOut.of(await handlers.get_department(db, department_id))


@router.put(
    "/departments/{department_id}",
    response_model=DepartmentOut,
    summary="Create (201) or replace (200) a department",
    responses={201: {"model": DepartmentOut, "description": "Created"}},
)
async def put_department(
    department_id: str,
    body: DepartmentIn,
    db: Pool,
    response: Response,
    who: Annotated[Principal, Depends(allow(Role.ADMIN))],
) -> DepartmentOut:
    """Admin only. Every field is checked before anything is written: an unknown kind, a
    malformed area path or phone number is a 422 naming the field, and nothing changes."""
    dept = new_department(
        department_id,
        body.name,
        body.kind,
        body.areas,
        [(c.name, c.phone, c.role) for c in body.contacts],
    )
    if await handlers.put_department(db, dept, who):
        response.status_code = 201
    return DepartmentOut.of(dept)
