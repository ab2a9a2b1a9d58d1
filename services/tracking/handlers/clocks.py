"""An assignment's clocks, inside the transaction of the event that moves them: a dispatch
pins the SLA policy in force and starts the clocks with their timers (warning, deadline,
escalation steps); a step done stops its clock; an approved extension moves the resolution
deadline and the end of an approved pause (挂账/缓办) every clock it held still (``replan``).
Each returns what changed, for the caller to announce."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
import structlog

from services.tracking import domain, repository
from services.tracking.domain import AssignmentState, Clock
from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.deadlines import ClockPlan, Extension, Pause, escalation_schedule
from services.tracking.domain.policy import Ladder, PinnedPolicy, pin_policy
from services.tracking.domain.policy_data import pinned_from_data, pinned_to_data
from services.tracking.domain.schedule import (
    MAX_SKIPPED_REPEATS,
    Stage,
    TimerKind,
    plan_assignment,
    stages,
)
from services.tracking.handlers.sla import load_calendar, policy_version_at
from services.tracking.repository import pauses as pause_repo
from services.tracking.repository import sla as sla_repo
from services.tracking.repository.sla import ClockRow
from shared.contract import AssignmentFacts, CaseDispatched, CaseExtensionDecided, Envelope
from shared.db import Conn

log = structlog.get_logger()

# The sign-for limit when no SLA policy version is in force and none is configured.
DEFAULT_SIGN_FOR = timedelta(minutes=30)


class Started(NamedTuple):
    clock: Clock
    due_at: datetime


async def _schedule(
    conn: Conn,
    event: Envelope[AssignmentFacts],
    assignment_id: UUID,
    found: list[Stage],
    revision: int = 0,
) -> None:
    await repository.schedule_timers(
        conn,
        [
            repository.Arm(
                event.case_id,
                assignment_id,
                s.clock,
                s.at,
                event.correlation_id,
                event.event_id,
                s.kind,
                s.step,
                s.level,
                revision,
            )
            for s in found
        ],
    )


async def _pinned(
    conn: Conn, event: Envelope[CaseDispatched], stored: dict[str, Any] | None
) -> PinnedPolicy | None:
    """The policy the assignment runs under: pinned before, or the version in force at the
    dispatch (pinned now, for good); None when no version is in force."""
    if stored is not None:
        return pinned_from_data(stored)
    version = await policy_version_at(conn, event.occurred_at)
    if version is None:
        return None
    p = event.payload
    pinned = pin_policy([version], p.category, p.priority.value, event.occurred_at)
    await sla_repo.pin_policy(conn, p.assignment_id, pinned_to_data(pinned))
    return pinned


async def start_clocks(
    conn: Conn,
    event: Envelope[CaseDispatched],
    state: AssignmentState,
    *,
    sign_for: timedelta | None,
) -> list[Started]:
    """On case.dispatched (the assignment row exists and is locked): start the clocks the
    assignment still needs, under its pinned policy. ``sign_for`` overrides the policy's
    sign-for limit (short clocks for demos and tests)."""
    p = event.payload
    at = event.occurred_at
    current = await sla_repo.assignment_sla(conn, p.assignment_id)
    assert current is not None
    wanted = domain.clocks_to_start(state, current["ended_at"] is not None)
    if not wanted:
        return []
    pinned = await _pinned(conn, event, current["policy"])
    calendar = await load_calendar(conn) if pinned is not None else None
    if pinned is None or calendar is None:
        # No policy in force (or no calendar): the sign-for clock alone, as before policies.
        log.warning(
            "no_sla_policy_in_force",
            assignment_id=str(p.assignment_id),
            dispatched_at=at.isoformat(),
            calendar=calendar is not None,
        )
        if Clock.SIGN_FOR not in wanted:
            return []
        due_at = domain.sign_for_due_at(at, sign_for or DEFAULT_SIGN_FOR)
        if not await sla_repo.start_clock(
            conn, ClockRow(p.assignment_id, Clock.SIGN_FOR, event.case_id, at, None, due_at)
        ):
            return []
        await _schedule(
            conn, event, p.assignment_id, [Stage(Clock.SIGN_FOR, TimerKind.DEADLINE, 0, due_at)]
        )
        return [Started(Clock.SIGN_FOR, due_at)]
    plans = plan_assignment(pinned.policy, calendar, at, sign_for=sign_for)
    started = []
    for clock, plan in plans.items():
        if clock not in wanted or not await sla_repo.start_clock(
            conn, ClockRow(p.assignment_id, clock, event.case_id, at, plan.warn_at, plan.due_at)
        ):
            continue
        await _schedule(conn, event, p.assignment_id, stages(plan))
        started.append(Started(clock, plan.due_at))
    log.info(
        "clocks_started",
        assignment_id=str(p.assignment_id),
        policy_version=pinned.version,
        matched=pinned.matched,
        clocks=[s.clock.value for s in started],
    )
    return started


async def stop_clocks(
    conn: Conn,
    assignment_id: UUID,
    clocks: tuple[Clock, ...],
    at: datetime,
    because: str,
) -> list[Clock]:
    """Stop those clocks if they run, and cancel their pending timers; the clocks stopped."""
    stopped = await sla_repo.stop_clocks(conn, assignment_id, list(clocks), at, because)
    await repository.cancel_assignment_timers(conn, assignment_id, list(clocks), at)
    return stopped


async def stop_case_clocks(
    conn: Conn, case_id: UUID, at: datetime, because: str
) -> list[asyncpg.Record]:
    """The case closed (or was merged away): every clock of it stops."""
    stopped = await sla_repo.stop_case_clocks(conn, case_id, at, because)
    await repository.cancel_case_timers(conn, case_id, at)
    return stopped


async def extend_resolution(conn: Conn, event: Envelope[CaseExtensionDecided]) -> ClockPlan | None:
    """An approved extension (延期): record it once, then move the resolution deadline by every
    approved extension (and pause) of the assignment — the new warning, deadline and
    escalation steps replace the pending ones (those already past at the decision do not fire
    again). None when nothing is announced: a duplicate decision, no resolution clock left, no
    policy — or the clock stands still (挂账/缓办): its deadline moves now, its timers and the
    announcement come with the resumption."""
    p = event.payload
    at = event.occurred_at
    current = await sla_repo.assignment_sla(conn, p.assignment_id)
    if current is None or not await sla_repo.add_extension(
        conn, p.request_id, p.assignment_id, p.days, at
    ):
        return None
    clock = await sla_repo.lock_clock(conn, p.assignment_id, Clock.RESOLVE)
    if clock is None or clock.state == "stopped":
        log.info("extension_recorded_without_clock", assignment_id=str(p.assignment_id))
        return None
    moved = await replan(conn, event, current, [clock], after=at)
    return moved[0].plan if moved and moved[0].clock.state == "running" else None


class Moved(NamedTuple):
    clock: ClockRow  # as it is now: new deadline, revision raised, running or paused
    plan: ClockPlan


async def replan(
    conn: Conn,
    event: Envelope[AssignmentFacts],
    current: asyncpg.Record,
    clocks: list[ClockRow],
    *,
    after: datetime,
    state: str | None = None,
) -> list[Moved]:
    """Move those clocks (locked) of one assignment to their deadlines under its pinned policy,
    the working calendar, every approved extension and every pause of it (one still open is
    counted until ``after``): revision raised, pending timers replaced by the stages after
    ``after`` — none for a clock standing still. ``state`` sets the clocks running again
    (resumption); by default each keeps its own. Nothing moves without a policy or calendar
    (then only a sign-for clock runs, stopped before any pause or extension)."""
    calendar = await load_calendar(conn) if current["policy"] is not None else None
    if not clocks or calendar is None:
        return []
    assignment_id = clocks[0].assignment_id
    pinned = pinned_from_data(current["policy"])
    pauses = [
        Pause(r.started_at, r.ended_at, r.reason or "挂账/缓办")
        for r in await pause_repo.of_assignment(conn, assignment_id)
        if r.started_at is not None and (r.ended_at is None or r.ended_at > r.started_at)
    ]
    plans = plan_assignment(
        pinned.policy,
        calendar,
        current["dispatched_at"] or clocks[0].started_at,
        extensions=[Extension(d) for d in await sla_repo.extension_days(conn, assignment_id)],
        pauses=pauses,
        now=after,
    )
    await repository.cancel_assignment_timers(conn, assignment_id, [c.clock for c in clocks], after)
    out = []
    for c in clocks:
        plan = plans.get(c.clock)
        if plan is None:  # pragma: no cover - the pinned policy has every clock it started
            continue
        moved = replace(
            c,
            warn_at=plan.warn_at,
            due_at=plan.due_at,
            extension_days=plan.extension_days,
            revision=c.revision + 1,
            state=state or c.state,
        )
        await sla_repo.move_clock(conn, moved)
        if moved.state == "running":
            await _schedule(
                conn,
                event,
                assignment_id,
                _remaining(plan, pinned.policy.ladder, calendar, pauses, after),
                moved.revision,
            )
        out.append(Moved(moved, plan))
        log.info(
            "deadline_moved",
            assignment_id=str(assignment_id),
            clock=c.clock.value,
            due_at=plan.due_at.isoformat(),
            extension_days=plan.extension_days,
            pauses=len(pauses),
            state=moved.state,
        )
    return out


def _remaining(
    plan: ClockPlan, ladder: Ladder, calendar: WorkingCalendar, pauses: list[Pause], after: datetime
) -> list[Stage]:
    """The stages still to fire after ``after``; when the ladder's listed steps are all past
    (a clock long overdue) and it repeats, its next repetition — counted with the pauses, so
    the step numbers go on from the last one fired."""
    found = stages(plan, after=after)
    if (
        not plan.escalations
        or ladder.repeat_every is None
        or any(s.kind is TimerKind.ESCALATION for s in found)
    ):
        return found
    spans = sorted((p.start, p.end or after) for p in pauses)
    for e in islice(escalation_schedule(ladder, calendar, plan.due_at, spans), MAX_SKIPPED_REPEATS):
        if e.at > after:
            found.append(Stage(plan.clock, TimerKind.ESCALATION, e.index, e.at, e.level.value))
            break
    return found
