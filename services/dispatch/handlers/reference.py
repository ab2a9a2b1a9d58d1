"""Reference data use cases: routing rules, departments, liaison units (包联)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.dispatch import domain, repository
from services.dispatch.domain import Department, LiaisonUnits, RoutingRule
from services.dispatch.handlers.common import departments_by_id, log, require_known
from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound


# --- HTTP: routing rules -----------------------------------------------------------------


@dataclass(frozen=True)
class AddRule:
    category_code: str
    area_prefix: str
    department_id: str
    co_department_ids: tuple[str, ...] = ()


async def add_rule(pool: asyncpg.Pool, cmd: AddRule) -> tuple[RoutingRule, dict[str, Department]]:
    """Add a routing rule. Refused, with nothing written: an unknown category or department,
    the lead among its co-handlers, a rule already there for the category and area, or one
    that would be ambiguous with another (the Conflict names it)."""
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_rules(conn)
        catalogue = {c.code: c for c in await repository.list_categories(conn)}
        if cmd.category_code not in catalogue:
            raise Invalid(
                f"category_code：事件分类“{cmd.category_code}”不存在",
                f"category_code: unknown category '{cmd.category_code}'",
                code="unknown_category",
            )
        departments = await departments_by_id(conn)
        require_known(departments, cmd.department_id, cmd.co_department_ids)
        candidate = RoutingRule(
            0, cmd.category_code, cmd.area_prefix, cmd.department_id, cmd.co_department_ids
        )
        domain.check_rule(
            candidate,
            await repository.list_rules(conn),
            lambda code: domain.lineage(code, catalogue),
            departments,
        )
        rule = await repository.insert_rule(
            conn, cmd.category_code, cmd.area_prefix, cmd.department_id, cmd.co_department_ids
        )
        if rule is None:  # cannot happen under the lock; check_rule names the duplicate
            raise Conflict(
                "该分类在该范围内的规则刚刚发生变化，请重试",
                "the rule for this category and area just changed; try again",
                code="rule_exists",
            )
    log.info(
        "routing_rule_added",
        rule_id=rule.id,
        category=rule.category_code,
        area_prefix=rule.area_prefix,
        department_id=rule.department_id,
        co=list(rule.co_department_ids),
    )
    return rule, departments


async def delete_rule(pool: asyncpg.Pool, rule_id: int, who: Principal) -> None:
    """Remove a rule. Assignments it made keep its id and reason (history)."""
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_rules(conn)
        rule = await repository.get_rule(conn, rule_id)
        if rule is None:
            raise NotFound(
                f"派单规则#{rule_id}不存在",
                f"routing rule #{rule_id} not found",
                code="rule_not_found",
            )
        await repository.delete_rule(conn, rule_id)
    log.info(
        "routing_rule_deleted",
        rule_id=rule_id,
        category=rule.category_code,
        area_prefix=rule.area_prefix,
        actor=who.subject,
    )


# --- HTTP: liaison units (包联) ------------------------------------------------------------


async def put_liaison(
    pool: asyncpg.Pool, units: LiaisonUnits, who: Principal
) -> dict[str, Department]:
    """Replace an area's liaison units (an empty list removes them); returns the departments
    by id (for their names)."""
    if len(set(units.department_ids)) != len(units.department_ids):
        raise Invalid(
            "department_ids：包联单位重复",
            "department_ids: a department appears twice",
            code="invalid_liaison",
        )
    async with pool.acquire() as conn, conn.transaction():
        known = await departments_by_id(conn)
        require_known(known, co=units.department_ids, list_field="department_ids")
        await repository.replace_liaison(conn, units)
    log.info(
        "liaison_units_set",
        area_prefix=units.area_prefix,
        departments=list(units.department_ids),
        actor=who.subject,
    )
    return known


# --- HTTP: departments -------------------------------------------------------------------


async def get_department(pool: asyncpg.Pool, department_id: str) -> Department:
    async with pool.acquire() as conn:
        dept = await repository.get_department(conn, department_id)
    if dept is None:
        raise NotFound(
            f"部门“{department_id}”不存在",
            f"department '{department_id}' not found",
            code="department_not_found",
        )
    return dept


async def put_department(pool: asyncpg.Pool, dept: Department, who: Principal) -> bool:
    """Create or replace a department (already checked by ``domain.new_department``);
    True when it was created. Routing rules and assignments that name it are kept."""
    async with pool.acquire() as conn, conn.transaction():
        created = await repository.put_department(conn, dept)
    log.info(
        "department_created" if created else "department_updated",
        department_id=dept.id,
        kind=dept.kind,
        areas=list(dept.areas),
        actor=who.subject,
    )
    return created
