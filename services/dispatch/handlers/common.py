"""What dispatch's use cases share: the events they write, routing's inputs, and turning a
routing decision into assignments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import structlog

from services.dispatch import domain, repository
from services.dispatch.domain import Assignment, AssignmentState, Decision, Department
from shared.auth import Principal
from shared.contract import (
    Actor,
    AssignmentRole,
    CaseDispatched,
    DispatchBasis,
    Envelope,
    EventPayload,
    Priority,
    new_event,
)
from shared.errors import Invalid, NotFound
from shared.db import Conn

PRODUCER = "dispatch"
log = structlog.get_logger()

# Automatic routing when the whistle carries no actor (an event from before attribution).
SYSTEM_ACTOR = Actor(subject="system:dispatch", role="system", name="自动派单")


E = TypeVar("E", bound=EventPayload)


def facts(a: Assignment) -> dict[str, Any]:
    """The case's facts (``CaseFacts``) as an assignment carries them."""
    return {
        "case_no": a.case_no,
        "area_path": a.area_path,
        "category": a.category,
        "priority": Priority(a.priority),
    }


def assignment_facts(a: Assignment) -> dict[str, Any]:
    """What every event about one assignment says: the case's facts and whose assignment."""
    return {**facts(a), "assignment_id": a.id, "department_id": a.department_id}


def event(payload: E, case_id: UUID, actor: Actor | None, at: datetime) -> Envelope[E]:
    return new_event(payload, case_id=case_id, producer=PRODUCER, occurred_at=at, actor=actor)


def dispatched_event(
    a: Assignment, actor: Actor, *, rework: bool = False
) -> Envelope[CaseDispatched]:
    return event(
        CaseDispatched(
            **assignment_facts(a),
            department_name=a.department_name,
            role=a.role,
            rule_id=a.rule_id,
            reason=a.reason,
            description=a.description,
            rework=rework,
            basis=a.basis,
        ),
        a.case_id,
        actor,
        a.dispatched_at,
    )


def assignment_not_found(assignment_id: UUID) -> NotFound:
    return NotFound(
        f"派单 {assignment_id} 不存在",
        f"assignment {assignment_id} not found",
        code="assignment_not_found",
    )


async def locked_assignment(conn: Conn, assignment_id: UUID) -> Assignment:
    a = await repository.get_assignment(conn, assignment_id, lock=True)
    if a is None:
        raise assignment_not_found(assignment_id)
    return a


async def locked_case_of(conn: Conn, assignment_id: UUID) -> Assignment:
    """Lock every assignment of the assignment's case (in one order, so two departments
    acting at once cannot deadlock) and return the assignment, current."""
    found = await repository.get_assignment(conn, assignment_id)
    if found is None:
        raise assignment_not_found(assignment_id)
    await repository.lock_case_assignments(conn, found.case_id)
    return await locked_assignment(conn, assignment_id)


def require_reader(who: Principal, a: Assignment) -> None:
    """The assigned department, or an area holder whose subtree contains the case."""
    if who.area_filter() is None:
        who.require_department(a.department_id)
    else:
        who.require_area(a.area_path)


def next_assignment(
    a: Assignment,
    department: Department,
    role: AssignmentRole,
    rule_id: int | None,
    reason: str,
    basis: DispatchBasis,
    now: datetime,
) -> Assignment:
    """A new assignment of the same case at another department (改派, 转办, 人工派单)."""
    return replace(
        a,
        id=uuid4(),
        department_id=department.id,
        department_name=department.name,
        role=role,
        state=AssignmentState.DISPATCHED,
        rule_id=rule_id,
        reason=reason,
        result=None,
        dispatched_at=now,
        signed_for_at=None,
        resolved_at=None,
        updated_at=now,
        exit_reason=None,
        exited_at=None,
        transferred_to=None,
        basis=basis,
        photo_ids=(),
        pause_kind=None,
        paused_since=None,
    )


def require_known(
    departments: Mapping[str, Department],
    lead: str | None = None,
    co: Iterable[str] = (),
    *,
    list_field: str = "co_department_ids",
) -> None:
    """Every named department must exist: a 422 naming the field of the first that does not
    (``department_id`` for the lead, ``<list_field>[i]`` for the others)."""
    named = [] if lead is None else [("department_id", lead)]
    named += [(f"{list_field}[{i}]", d) for i, d in enumerate(co)]
    for field, dept_id in named:
        if dept_id not in departments:
            raise Invalid(
                f"{field}：部门“{dept_id}”不存在",
                f"{field}: unknown department '{dept_id}'",
                code="unknown_department",
            )


async def departments_by_id(conn: Conn) -> dict[str, Department]:
    return {d.id: d for d in await repository.list_departments(conn)}


async def decide(
    conn: Conn,
    *,
    case_id: UUID,
    category: str,
    area_path: str,
    named: list[str],
    departments: dict[str, Department],
    busy: Iterable[str] | None = None,
) -> Decision:
    """Route a case with everything routing needs from the database: the category's lineage
    and default kind, the rules of its lineage, the area's liaison units, the departments
    that rejected it (退单) and — unless the caller has them — those already handling it."""
    catalogue = {c.code: c for c in await repository.list_categories(conn)}
    chain = domain.lineage(category, catalogue)
    return domain.route(
        category=category,
        area_path=area_path,
        rules=await repository.rules_for(conn, chain),
        named=named,
        departments=departments,
        exclude=await repository.rejected_departments(conn, case_id),
        busy=await repository.open_departments(conn, case_id) if busy is None else busy,
        lineage=chain,
        default_kind=domain.default_kind(category, catalogue),
        liaison=await repository.liaison_covering(conn, area_path),
    )


async def open_assignments(
    conn: Conn,
    template: Assignment,
    decision: Decision,
    departments: dict[str, Department],
    actor: Actor,
    now: datetime,
    prefix: str = "",
) -> list[Assignment]:
    """One new assignment per route of the decision (those already open are skipped)."""
    made = []
    for r in decision.routes:
        dept = departments.get(r.department_id) or Department(
            r.department_id, r.department_name, ""
        )
        a = next_assignment(template, dept, r.role, r.rule_id, prefix + r.reason, r.basis, now)
        if await repository.insert_assignment(conn, a):
            made.append(a)
            log.info(
                "case_dispatched",
                department_id=a.department_id,
                role=a.role.value,
                rule_id=a.rule_id,
                basis=a.basis.value,
                actor=actor.subject,
            )
        else:
            log.info("assignment_already_open", department_id=a.department_id)
    return made
