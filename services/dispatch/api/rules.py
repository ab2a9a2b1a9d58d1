"""Routing rules (category × area → lead and co-handlers) and liaison units (包联)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.dispatch import handlers, repository
from services.dispatch.api.common import AREA_PREFIX
from services.dispatch.domain import Department, LiaisonUnits, RoutingRule
from shared.dto import fill
from shared.service import Pool
from shared.auth import Principal, Role, allow

router = APIRouter(tags=["routing rules"])


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category_code: str = Field(
        min_length=1, max_length=32, description="分类编码：小类（如E0103）或整个大类（如E01）"
    )
    area_prefix: str = Field(
        min_length=1,
        max_length=200,
        pattern=AREA_PREFIX,
        description="area path prefix, e.g. YA/YA02/YA0201",
    )
    department_id: str = Field(min_length=1, max_length=64, description="主办部门")
    co_department_ids: list[str] = Field(
        default_factory=list, max_length=10, description="协办部门"
    )


class RuleOut(BaseModel):
    id: int
    category_code: str
    area_prefix: str
    department_id: str
    department_name: str | None = None
    co_department_ids: list[str]
    co_department_names: list[str]

    @classmethod
    def of(cls, r: RoutingRule, names: dict[str, Department]) -> RuleOut:
        def name(d: str) -> str:
            return names[d].name if d in names else d

        return fill(
            cls,
            r,
            department_name=name(r.department_id),
            co_department_names=[name(d) for d in r.co_department_ids],
        )


Reader = Annotated[Principal, Depends(allow(Role.ADMIN, Role.DISTRICT, Role.SUPERVISOR))]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]


@router.get("/routing-rules", response_model=list[RuleOut], summary="Routing rules")
async def list_rules(
    db: Pool,
    who: Reader,
    category: Annotated[str | None, Query(max_length=32)] = None,
) -> list[RuleOut]:
    async with db.acquire() as conn:
        names = await handlers.departments_by_id(conn)
        return [RuleOut.of(r, names) for r in await repository.list_rules(conn, category)]


@router.post(
    "/routing-rules",
    status_code=201,
    response_model=RuleOut,
    summary="Add a routing rule (category × area → lead and co-handlers)",
)
async def add_rule(body: RuleIn, db: Pool, who: Admin) -> RuleOut:
    """Refused with nothing written: an unknown category or department (422 naming the
    field), the lead among its co-handlers (422), a rule already there for the category and
    area, or one ambiguous with another — both could match one case, one with the more
    specific area, the other with the more specific category (409 naming that rule)."""
    rule, names = await handlers.add_rule(
        db,
        handlers.AddRule(
            body.category_code, body.area_prefix, body.department_id, tuple(body.co_department_ids)
        ),
    )
    return RuleOut.of(rule, names)


@router.delete("/routing-rules/{rule_id}", status_code=204, summary="Remove a routing rule")
async def delete_rule(
    rule_id: Annotated[int, Path(ge=1, le=2_147_483_647)],  # serial
    db: Pool,
    who: Admin,
) -> Response:
    """Assignments the rule made keep its id and reason (history)."""
    await handlers.delete_rule(db, rule_id, who)
    return Response(status_code=204)


# --- liaison units (包联) ------------------------------------------------------------------


class LiaisonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_ids: list[str] = Field(max_length=10, description="包联单位，按先后顺序；空表示取消")


class LiaisonOut(BaseModel):
    area_prefix: str
    department_ids: list[str]
    department_names: list[str]

    @classmethod
    def of(cls, u: LiaisonUnits, names: dict[str, Department]) -> LiaisonOut:
        return fill(
            cls, u, department_names=[names[d].name if d in names else d for d in u.department_ids]
        )


@router.get(
    "/liaison-units",
    response_model=list[LiaisonOut],
    summary="Liaison units (包联单位) of each area: the fallback when no rule fits",
)
async def list_liaison(db: Pool, who: Reader) -> list[LiaisonOut]:
    async with db.acquire() as conn:
        names = await handlers.departments_by_id(conn)
        return [LiaisonOut.of(u, names) for u in await repository.list_liaison(conn)]


@router.put(
    "/liaison-units/{area_prefix:path}",
    response_model=LiaisonOut,
    summary="Set an area's liaison units, in order (an empty list removes them)",
)
async def put_liaison(
    area_prefix: Annotated[str, Path(max_length=200, pattern=AREA_PREFIX)],
    body: LiaisonIn,
    db: Pool,
    who: Admin,
) -> LiaisonOut:
    units = LiaisonUnits(area_prefix, tuple(body.department_ids))
    return LiaisonOut.of(units, await handlers.put_liaison(db, units, who))
