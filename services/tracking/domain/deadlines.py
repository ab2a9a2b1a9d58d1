"""An assignment's current deadlines under its pinned policy: when each clock warns, when it
is due, and when the escalation ladder fires — moved by approved extensions (延期) and approved
pauses (挂账/缓办).

The rules, in one place:
- Every clock counts from the dispatch (``start``), in its limit's basis (working or
  calendar time).
- A clock's *allowance* is its limit; approved extensions add to the resolution clock only,
  N days each: N standard working days on a working-time clock, N × 24 h on a calendar-time
  clock.
- The clock stands still during approved pauses (any clock still running; in practice the
  resolution clock): the deadline is the instant at which the allowance has been used up,
  not counting paused time. A pause still open is counted as ending at ``now``, and the
  plan says ``paused`` — its instants are the earliest they can be, and no timer should
  fire while it lasts.
- The warning is at ``warning_ratio`` of the allowance (extensions included), by the same
  measure, so it always comes before the deadline.
- Escalation step k fires its delay after the deadline (in the delay's basis, pauses not
  counted); after the last step the last level is escalated to again every ``repeat_every``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import islice

from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.policy import Ladder, Limit, SlaPolicy, invalid
from services.tracking.domain.timeline import Timeline, timeline
from shared.contract.values import Clock, Level


@dataclass(frozen=True)
class Extension:
    """An approved extension (延期) of the resolution clock by ``days`` working days."""

    days: int

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise invalid("days", "延期天数须为正整数", "extension days must be a positive integer")


@dataclass(frozen=True)
class Pause:
    """An approved pause (挂账/缓办) from ``start`` until ``end`` (None: still paused)."""

    start: datetime
    end: datetime | None
    reason: str

    def __post_init__(self) -> None:
        if not self.reason or not self.reason.strip():
            raise invalid("reason", "挂账/缓办须说明理由", "a pause needs a reason")
        if self.end is not None and self.end <= self.start:
            raise invalid("end", "挂账结束时间须晚于开始时间", "a pause must end after it starts")


class Light(StrEnum):
    """The standard's traffic light for a running clock."""

    GREEN = "green"  # 绿灯: in time
    YELLOW = "yellow"  # 黄灯: warned, not yet due
    RED = "red"  # 红灯: overdue


@dataclass(frozen=True)
class Escalation:
    index: int  # 0, 1, 2… in firing order
    level: Level
    at: datetime
    repeat: int  # 0 for a ladder step, n for the n-th repetition after the last step


@dataclass(frozen=True)
class ClockPlan:
    clock: Clock
    limit: Limit
    extension_days: int
    allowance: timedelta  # in the clock's basis, extensions included
    warn_at: datetime
    due_at: datetime
    escalations: tuple[Escalation, ...]
    paused: bool

    def light(self, now: datetime) -> Light:
        """Green, yellow from the warning, red once the deadline has passed (a step done at
        the deadline itself is on time)."""
        if now > self.due_at:
            return Light.RED
        return Light.YELLOW if now >= self.warn_at else Light.GREEN


def _closed_pauses(
    pauses: Iterable[Pause], now: datetime | None
) -> list[tuple[datetime, datetime]]:
    """Pauses as closed intervals, sorted and merged (an open one ends at ``now``)."""
    spans = []
    for p in pauses:
        if p.end is not None:
            end = p.end
        elif now is not None:
            end = max(now, p.start)
        else:
            raise ValueError("an open pause needs `now` to be measured")
        if end > p.start:
            spans.append((p.start, end))
    merged: list[tuple[datetime, datetime]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def run_clock(
    basis: Timeline, start: datetime, amount: timedelta, pauses: Sequence[tuple[datetime, datetime]]
) -> datetime:
    """The instant at which ``amount`` of ``basis`` time has run from ``start``, the clock
    standing still during ``pauses`` (sorted, merged)."""
    cursor, remaining = start, amount
    for p_start, p_end in pauses:
        if p_end <= cursor:
            continue
        candidate = basis.add(cursor, remaining)
        if candidate <= p_start:
            return candidate
        if p_start > cursor:
            remaining -= basis.between(cursor, p_start)
        cursor = p_end
    return basis.add(cursor, remaining)


def escalation_schedule(
    ladder: Ladder,
    calendar: WorkingCalendar,
    due_at: datetime,
    pauses: Sequence[tuple[datetime, datetime]],
) -> Iterator[Escalation]:
    """Every escalation of an overdue clock, in order (endless if the ladder repeats)."""
    at = due_at
    for index, step in enumerate(ladder.steps):
        basis = timeline(calendar, step.after.working)
        at = run_clock(basis, due_at, step.after.duration(basis), pauses)
        yield Escalation(index, step.level, at, 0)
    if ladder.repeat_every is None:
        return
    basis = timeline(calendar, ladder.repeat_every.working)
    every, level = ladder.repeat_every.duration(basis), ladder.steps[-1].level
    index, repeat = len(ladder.steps), 1
    while True:
        at = run_clock(basis, at, every, pauses)
        yield Escalation(index, level, at, repeat)
        index, repeat = index + 1, repeat + 1


def plan_clocks(
    policy: SlaPolicy,
    calendar: WorkingCalendar,
    start: datetime,
    *,
    extensions: Iterable[Extension] = (),
    pauses: Iterable[Pause] = (),
    now: datetime | None = None,
    escalations: int = 3,
) -> dict[Clock, ClockPlan]:
    """The current plan of every clock of ``policy`` for an assignment dispatched at
    ``start``; ``escalations`` caps how many escalations of each clock are listed."""
    if escalations < 0:
        raise ValueError("escalations must not be negative")
    pause_list = list(pauses)
    spans = _closed_pauses(pause_list, now)
    paused = any(p.end is None for p in pause_list)
    extension_days = sum(e.days for e in extensions)
    plans = {}
    for clock, limit in policy.clocks().items():
        basis = timeline(calendar, limit.working)
        days = extension_days if clock is Clock.RESOLVE else 0
        allowance = limit.duration(basis) + basis.day_length * days
        due_at = run_clock(basis, start, allowance, spans)
        warn_at = run_clock(basis, start, allowance * policy.warning_ratio, spans)
        ladder = islice(escalation_schedule(policy.ladder, calendar, due_at, spans), escalations)
        plans[clock] = ClockPlan(
            clock, limit, days, allowance, warn_at, due_at, tuple(ladder), paused
        )
    return plans
