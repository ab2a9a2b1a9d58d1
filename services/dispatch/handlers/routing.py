"""Routing use cases: a whistle becomes assignments (派单); a rejection (退单) goes on to the
next candidate or to the community; the community dispatches by hand (人工派单); a failed
check (返工) returns to the same departments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from services.dispatch import domain, repository
from services.dispatch.domain import Assignment, AssignmentState, Decision, Department
from services.dispatch.handlers.common import (
    SYSTEM_ACTOR,
    decide,
    departments_by_id,
    dispatched_event,
    event,
    assignment_facts,
    facts,
    locked_case_of,
    log,
    next_assignment,
    open_assignments,
    require_known,
)
from services.dispatch.repository import WaitingCase
from shared import outbox
from shared.auth import Principal
from shared.contract import (
    Actor,
    AssignmentRole,
    CaseFacts,
    CasePhotoAdded,
    CaseRejected,
    CaseResolved,
    CaseReworkRequested,
    CaseUnroutable,
    CaseWhistled,
    DispatchBasis,
    Envelope,
)
from shared.errors import Conflict, Invalid, NotFound
from shared.db import Conn


def _template(case_id: UUID, whistle: CaseWhistled | WaitingCase, now: datetime) -> Assignment:
    """The case's facts as every new assignment of it carries them."""
    return Assignment(
        id=uuid4(),
        case_id=case_id,
        case_no=whistle.case_no,
        department_id="",
        department_name="",
        role=AssignmentRole.LEAD,
        state=AssignmentState.DISPATCHED,
        rule_id=None,
        reason="",
        area_path=whistle.area_path,
        category=whistle.category,
        priority=str(whistle.priority),
        description=whistle.description,
        note=whistle.note,
        result=None,
        dispatched_at=now,
        signed_for_at=None,
        resolved_at=None,
        updated_at=now,
    )


async def _queue(
    conn: Conn,
    a: Assignment,
    reason: str,
    named: list[str],
    whistled_at: datetime,
    actor: Actor,
    now: datetime,
) -> Envelope[CaseUnroutable]:
    """Send the case to the community/street command for manual dispatch, visibly."""
    await repository.queue_for_manual_dispatch(
        conn,
        WaitingCase(
            case_id=a.case_id,
            case_no=a.case_no,
            area_path=a.area_path,
            category=a.category,
            priority=a.priority,
            description=a.description,
            departments=named,
            note=a.note,
            reason=reason,
            whistled_at=whistled_at,
            queued_at=now,
        ),
    )
    log.info("case_unroutable", reason=reason)
    return event(CaseUnroutable(**facts(a), reason=reason), a.case_id, actor, now)


# --- consumed: 社区吹哨 → 派单 -----------------------------------------------------------


async def route_whistle(conn: Conn, event_in: Envelope[CaseWhistled]) -> None:
    """Route a whistled case to its departments, or queue it for manual dispatch.

    Runs in the consumer's transaction, after the inbox claimed the event. When the case is
    already being handled (a repeated whistle, or one at a higher level), only departments
    it names that are not on the case yet are convened, as co-handlers (协办) — the rules do
    not add a second lead.
    """
    w = event_in.payload
    now = datetime.now(UTC)
    actor = event_in.actor or SYSTEM_ACTOR  # routing a whistle is the community's act
    await repository.remember_whistle(
        conn, event_in.case_id, list(w.departments), event_in.occurred_at
    )
    departments = await departments_by_id(conn)
    template = _template(event_in.case_id, w, now)
    on_case = await repository.open_departments(conn, event_in.case_id)
    if on_case:
        decision = domain.route(
            category=w.category,
            area_path=w.area_path,
            rules=(),
            named=w.departments,
            departments=departments,
            busy=on_case,
        )
        routes = tuple(
            replace(r, role=AssignmentRole.CO) if AssignmentRole.LEAD in on_case.values() else r
            for r in decision.routes
        )
        made = await open_assignments(
            conn, template, Decision(routes, decision.reason), departments, actor, now
        )
        if any(a.role is AssignmentRole.LEAD for a in made):
            await repository.clear_manual_dispatch(conn, event_in.case_id, now)
        log.info("whistle_on_a_case_in_hand", convened=[a.department_id for a in made])
    else:
        decision = await decide(
            conn,
            case_id=event_in.case_id,
            category=w.category,
            area_path=w.area_path,
            named=list(w.departments),
            departments=departments,
            busy=on_case,
        )
        if not decision.routable:
            await outbox.add(
                conn,
                await _queue(
                    conn,
                    template,
                    decision.reason,
                    list(w.departments),
                    event_in.occurred_at,
                    actor,
                    now,
                ),
            )
            return
        await repository.clear_manual_dispatch(conn, event_in.case_id, now)
        made = await open_assignments(conn, template, decision, departments, actor, now)
    if made:
        await outbox.add(conn, *(dispatched_event(a, actor) for a in made))


async def send_back_for_rework(conn: Conn, event_in: Envelope[CaseReworkRequested]) -> None:
    """返工: the community's on-site check failed — the case returns to the same department(s)
    as new assignments that point at the ones they redo, with the community's reason."""
    p = event_in.payload
    now = datetime.now(UTC)
    departments = p.departments or await repository.resolved_departments(conn, event_in.case_id)
    actor = event_in.actor or SYSTEM_ACTOR
    made = []
    for department_id in departments:
        previous = await repository.latest_resolved(conn, event_in.case_id, department_id)
        if previous is None:
            log.info("rework_without_resolved_assignment", department_id=department_id)
            continue
        again = replace(
            next_assignment(
                previous,
                Department(previous.department_id, previous.department_name, ""),
                previous.role,
                previous.rule_id,
                f"返工：{p.reason}",
                DispatchBasis.REWORK,
                now,
            ),
            priority=p.priority.value,
        )
        if not await repository.insert_assignment(conn, again):
            continue  # already open again at that department
        await repository.mark_rework(conn, again.id, previous.id)
        made.append(dispatched_event(again, actor, rework=True))
        log.info(
            "case_sent_back_for_rework", department_id=department_id, rework_of=str(previous.id)
        )
    if made:
        await outbox.add(conn, *made)


async def record_photo(conn: Conn, event_in: Envelope[CasePhotoAdded]) -> None:
    """Keep the photos intake announces, so a resolution can cite its after-photos."""
    p = event_in.payload
    await repository.add_photo(
        conn, p.photo_id, event_in.case_id, p.kind, p.department_id, event_in.occurred_at
    )


# --- HTTP: 退单 → the next candidate, or the community ----------------------------------


async def reject(
    pool: asyncpg.Pool, who: Principal, assignment_id: UUID, reason: str
) -> Assignment:
    """退单: the assigned department pushes back a misrouted assignment (before 报到), with its
    reason. In the same transaction:

    - a lead's (主办) rejection sends the case on to the next candidate — routing again with
      the whistle's named departments, without every department that rejected the case and
      without those already on it — or, none left, to the community/street command for
      manual dispatch (社区协调), which is announced;
    - a co-handler's (协办) rejection leaves the case with the others; if it was the last
      piece of work and the lead has resolved, the case is resolved now.
    """
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        a = await locked_case_of(conn, assignment_id)
        who.require_department(a.department_id)  # before the state: a stranger learns nothing
        a = a.reject(reason, now)
        await repository.update_assignment(conn, a)
        events: list[Envelope[CaseFacts]] = [
            event(
                CaseRejected(
                    **assignment_facts(a),
                    reason=a.exit_reason or "",
                ),
                a.case_id,
                who.actor,
                now,
            )
        ]
        if a.role is AssignmentRole.LEAD:
            events += await _reroute(conn, a, who.actor, now)
        else:
            events += await _resolved_if_done(conn, a.case_id, who.actor, now)
        await outbox.add(conn, *events)
    log.info(
        "assignment_rejected",
        assignment_id=str(a.id),
        department_id=a.department_id,
        role=a.role.value,
        actor=who.subject,
    )
    return a


async def _reroute(
    conn: Conn, a: Assignment, actor: Actor, now: datetime
) -> list[Envelope[CaseFacts]]:
    departments = await departments_by_id(conn)
    named = await repository.named_departments(conn, a.case_id)
    decision = await decide(
        conn,
        case_id=a.case_id,
        category=a.category,
        area_path=a.area_path,
        named=named,
        departments=departments,
    )
    prefix = f"退单后改派：{a.department_name}退单（{a.exit_reason}）；"
    made = await open_assignments(conn, a, decision, departments, actor, now, prefix)
    if any(m.role is AssignmentRole.LEAD for m in made):
        return [dispatched_event(m, actor) for m in made]
    rejected = await repository.rejected_departments(conn, a.case_id)
    names = "、".join(departments[d].name if d in departments else d for d in rejected)
    why = (
        f"{a.department_name}退单（{a.exit_reason}），已退单部门：{names}；"
        f"没有其他可派部门，转社区协调（待人工派单）。{decision.reason}"
    )
    return [await _queue(conn, a, why, named, a.dispatched_at, actor, now)]


async def _resolved_if_done(
    conn: Conn, case_id: UUID, actor: Actor, now: datetime
) -> list[Envelope[CaseFacts]]:
    """When no work is left and the lead has resolved, say the case is resolved."""
    if await repository.work_left(conn, case_id):
        return []
    lead = await repository.resolved_lead(conn, case_id)
    if lead is None:
        return []
    return [
        event(
            CaseResolved(
                **facts(lead),
                assignment_id=lead.id,
                department_id=lead.department_id,
                result=lead.result or "",
                case_resolved=True,
                photo_ids=list(lead.photo_ids),
            ),
            case_id,
            actor,
            now,
        )
    ]


# --- HTTP: 人工派单 ------------------------------------------------------------------------


async def dispatch_by_hand(
    pool: asyncpg.Pool, who: Principal, case_id: UUID, lead: str, co: list[str], note: str | None
) -> list[Assignment]:
    """人工派单: the community/street/district command dispatches a case waiting in its queue
    to a lead and co-handlers of its choosing (the departments that rejected it included,
    after arbitration)."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        waiting = await repository.waiting_case(conn, case_id, lock=True)
        if waiting is None:
            raise NotFound(
                f"案件 {case_id} 不在待人工派单队列中",
                f"case {case_id} is not waiting for manual dispatch",
                code="not_waiting",
            )
        who.require_area(waiting.area_path)
        departments = await departments_by_id(conn)
        chosen = [lead, *co]
        if len(set(chosen)) != len(chosen):
            raise Invalid(
                "co_department_ids：部门重复（主办部门不能同时协办）",
                "co_department_ids: a department appears twice",
                code="invalid_dispatch",
            )
        require_known(departments, lead, co)
        await repository.lock_case_assignments(conn, case_id)
        on_case = await repository.open_departments(conn, case_id)
        for d in chosen:
            if d in on_case:
                raise Conflict(
                    f"{departments[d].name}已有该案件未办结的派单",
                    f"department '{d}' already has an open assignment on this case",
                    code="already_assigned",
                )
        by = who.actor.name or who.subject
        extra = f"；{note.strip()}" if note and note.strip() else ""
        routes = [
            domain.Route(
                lead,
                departments[lead].name,
                AssignmentRole.LEAD,
                None,
                f"人工派单：{by}指定{departments[lead].name}主办{extra}",
                DispatchBasis.MANUAL,
            )
        ]
        routes += [
            domain.Route(
                d,
                departments[d].name,
                AssignmentRole.CO,
                None,
                f"人工派单：{by}指定{departments[d].name}协办{extra}",
                DispatchBasis.MANUAL,
            )
            for d in co
        ]
        template = _template(case_id, waiting, now)
        made = await open_assignments(
            conn, template, Decision(tuple(routes), routes[0].reason), departments, who.actor, now
        )
        await repository.clear_manual_dispatch(conn, case_id, now)
        await outbox.add(conn, *(dispatched_event(a, who.actor) for a in made))
    log.info("case_dispatched_by_hand", case_id=str(case_id), lead=lead, co=co, actor=who.subject)
    return made
