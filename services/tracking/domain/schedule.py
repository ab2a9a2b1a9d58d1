"""From an assignment's pinned policy to the stages its durable timers fire: for each clock
the warning (预警), the deadline (超时) and the escalation ladder's steps (逐级上报); and, when
an escalation fires, the next repetition while the clock stays overdue.

Pure: the plan comes from ``deadlines.plan_clocks``; callers pass ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import islice

from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.deadlines import (
    ClockPlan,
    Extension,
    Pause,
    escalation_schedule,
    plan_clocks,
)
from services.tracking.domain.policy import Ladder, SlaPolicy
from services.tracking.domain.timeline import timeline
from shared.contract.values import Clock

MAX_SKIPPED_REPEATS = 100_000  # bounds the catch-up loop after a very long outage


class TimerKind(StrEnum):
    """Which stage of a clock a timer fires (its durable timer's ``kind``)."""

    WARNING = "warning"  # 预警 (黄灯): the warning share of the allowance is used up
    DEADLINE = "deadline"  # 超时 (红灯)
    ESCALATION = "escalation"  # 逐级上报: community → street → district, repeating


@dataclass(frozen=True)
class Stage:
    """One timer of a clock: fire ``kind`` at ``at`` (``level`` for an escalation step)."""

    clock: Clock
    kind: TimerKind
    step: int
    at: datetime
    level: str | None = None


def plan_assignment(
    policy: SlaPolicy,
    calendar: WorkingCalendar,
    start: datetime,
    *,
    extensions: Iterable[Extension] = (),
    pauses: Iterable[Pause] = (),
    now: datetime | None = None,
    sign_for: timedelta | None = None,
) -> dict[Clock, ClockPlan]:
    """Every clock of an assignment dispatched at ``start``, its ladder's steps listed once,
    moved by approved extensions and pauses (an open pause counted until ``now``).
    ``sign_for`` overrides the policy's sign-for limit with calendar time (short clocks for
    demos and tests; pauses do not move it); the warning ratio and the ladder still come from
    the policy."""
    steps = len(policy.ladder.steps)
    plans = plan_clocks(
        policy, calendar, start, extensions=extensions, pauses=pauses, now=now, escalations=steps
    )
    if sign_for is not None:
        if sign_for <= timedelta(0):
            raise ValueError("a sign-for limit must be positive")
        due_at = start + sign_for
        ladder = escalation_schedule(policy.ladder, calendar, due_at, [])
        plans[Clock.SIGN_FOR] = replace(
            plans[Clock.SIGN_FOR],
            allowance=sign_for,
            due_at=due_at,
            warn_at=start + sign_for * policy.warning_ratio,
            escalations=tuple(islice(ladder, steps)),
        )
    return plans


def stages(plan: ClockPlan, *, after: datetime | None = None) -> list[Stage]:
    """The timers of one clock: warning, deadline, the ladder's steps — only those strictly
    after ``after`` when given (a deadline moved at ``after`` does not re-fire the past)."""
    out = [
        Stage(plan.clock, TimerKind.WARNING, 0, plan.warn_at),
        Stage(plan.clock, TimerKind.DEADLINE, 0, plan.due_at),
    ]
    out += [
        Stage(plan.clock, TimerKind.ESCALATION, e.index, e.at, e.level.value)
        for e in plan.escalations
    ]
    return [s for s in out if after is None or s.at > after]


def next_escalation(
    ladder: Ladder,
    calendar: WorkingCalendar,
    clock: Clock,
    step: int,
    at: datetime,
    now: datetime,
) -> Stage | None:
    """After escalation ``step`` (due at ``at``) fired: the next one, if the ladder repeats
    and ``step`` is its last listed one. Repetitions missed while no scheduler ran are
    skipped: the next is the first after ``now``, not a burst of stale ones."""
    if ladder.repeat_every is None or step < len(ladder.steps) - 1:
        return None
    basis = timeline(calendar, ladder.repeat_every.working)
    every = ladder.repeat_every.duration(basis)
    nxt, step = basis.add(at, every), step + 1
    for _ in range(MAX_SKIPPED_REPEATS):
        if nxt > now:
            break
        nxt, step = basis.add(nxt, every), step + 1
    return Stage(clock, TimerKind.ESCALATION, step, nxt, ladder.steps[-1].level.value)
