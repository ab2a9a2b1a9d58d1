"""Backtesting an SLA policy (时限策略回测): how the past assignments of a period would have
fared under another policy version — how many of each clock would have been warned (预警),
late (超时) and escalated (逐级上报, per level) — next to what the policy pinned to them
actually produced.

The same deadline code as live (``deadlines.plan_clocks``: working calendar, extensions,
pauses); the assignments' real history decides when each clock stopped. A clock is warned,
late or escalated to a level when it was still running strictly after that instant (a step
done at the deadline itself is on time); a clock still running is measured at ``now``.
Pure: callers pass ``now`` and the histories.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.deadlines import Extension, Pause, plan_clocks
from services.tracking.domain.policy import PolicyVersion, invalid, policy_for
from shared.contract.values import Clock, Level

CN = ZoneInfo("Asia/Shanghai")
MAX_PERIOD = timedelta(days=366)


@dataclass(frozen=True)
class LiveClock:
    """A clock as the live policy ran it: its deadlines and the escalation levels it reached
    (its fired escalation timers)."""

    warn_at: datetime | None
    due_at: datetime
    stopped_at: datetime | None
    escalated: tuple[Level, ...] = ()


@dataclass(frozen=True)
class History:
    """One past assignment: its case's facts, when it was dispatched, when each clock was
    stopped by what happened (signed for, first progress note, resolved, rejected,
    transferred, the case closed — None: never), its approved extensions and pauses, and the
    clocks the live policy ran."""

    assignment_id: str
    department_id: str
    department_name: str | None
    category: str
    priority: str
    dispatched_at: datetime
    stops: dict[Clock, datetime | None]
    extensions: tuple[Extension, ...] = ()
    pauses: tuple[Pause, ...] = ()
    live: dict[Clock, LiveClock] = field(default_factory=dict)


@dataclass
class Tally:
    """Counts over clocks: how many ran, were warned, were late, reached each level."""

    clocks: int = 0
    warned: int = 0
    late: int = 0
    escalated: Counter[Level] = field(default_factory=Counter)

    def add(self, warned: bool, late: bool, levels: Iterable[Level]) -> None:
        self.clocks += 1
        self.warned += warned
        self.late += late
        self.escalated.update(set(levels))

    def merge(self, other: Tally) -> None:
        self.clocks += other.clocks
        self.warned += other.warned
        self.late += other.late
        self.escalated.update(other.escalated)


@dataclass
class Pair:
    """The same assignments under the backtested policy and as the live policy ran them."""

    assignments: int = 0
    backtest: Tally = field(default_factory=Tally)
    live: Tally = field(default_factory=Tally)


@dataclass
class Backtest:
    by_clock: dict[Clock, Pair]
    by_department: dict[str, Pair]
    department_names: dict[str, str | None]
    by_week: dict[date, Pair]  # the Monday (Beijing time) of the week of dispatch

    @property
    def assignments(self) -> int:
        return sum(p.assignments for p in self.by_week.values())


def check_period(start: date, end: date) -> None:
    """``from`` ≤ ``to``, at most a year."""
    if start > end:
        raise invalid("from", "开始日期不能晚于结束日期", "from must not be after to")
    if end - start > MAX_PERIOD:
        raise invalid("to", "回测期间最长一年", "a backtest period is at most a year")


def _ran_past(stop: datetime | None, now: datetime, at: datetime) -> bool:
    return (stop or now) > at


def _simulate(
    h: History, version: PolicyVersion, calendar: WorkingCalendar, now: datetime
) -> dict[Clock, tuple[bool, bool, list[Level]]]:
    _, policy = policy_for(version, h.category, h.priority)
    plans = plan_clocks(
        policy,
        calendar,
        h.dispatched_at,
        extensions=h.extensions,
        pauses=h.pauses,
        now=now,
        escalations=len(policy.ladder.steps),
    )
    out = {}
    for clock, plan in plans.items():
        stop = h.stops.get(clock)
        levels = [e.level for e in plan.escalations if _ran_past(stop, now, e.at)]
        out[clock] = (
            _ran_past(stop, now, plan.warn_at),
            _ran_past(stop, now, plan.due_at),
            levels,
        )
    return out


def _live(h: History, now: datetime) -> dict[Clock, tuple[bool, bool, list[Level]]]:
    out = {}
    for clock, c in h.live.items():
        warned = c.warn_at is not None and _ran_past(c.stopped_at, now, c.warn_at)
        out[clock] = (warned, _ran_past(c.stopped_at, now, c.due_at), list(c.escalated))
    return out


def week_of(at: datetime) -> date:
    day = at.astimezone(CN).date()
    return day - timedelta(days=day.weekday())


def backtest(
    histories: Sequence[History],
    version: PolicyVersion,
    calendar: WorkingCalendar,
    now: datetime,
) -> Backtest:
    """The period's assignments under ``version`` (each by its category × priority rule, as a
    dispatch would pin it) next to what their live policies produced."""
    result = Backtest({}, {}, {}, {})
    for h in histories:
        pairs = [
            result.by_department.setdefault(h.department_id, Pair()),
            result.by_week.setdefault(week_of(h.dispatched_at), Pair()),
        ]
        result.department_names[h.department_id] = h.department_name or result.department_names.get(
            h.department_id
        )
        for p in pairs:
            p.assignments += 1
        for clock, (warned, late, levels) in _simulate(h, version, calendar, now).items():
            pair = result.by_clock.setdefault(clock, Pair())
            pair.backtest.add(warned, late, levels)
            for p in pairs:
                p.backtest.add(warned, late, levels)
        for clock, (warned, late, levels) in _live(h, now).items():
            pair = result.by_clock.setdefault(clock, Pair())
            pair.live.add(warned, late, levels)
            for p in pairs:
                p.live.add(warned, late, levels)
    for pair in result.by_clock.values():
        pair.assignments = len(histories)
    return result


def stops(
    *,
    signed_for: datetime | None,
    progressed: datetime | None,
    resolved: datetime | None,
    ended: datetime | None,
) -> dict[Clock, datetime | None]:
    """When each clock of an assignment stopped (``cases.CLOCKS_STOPPED_BY``): sign-for at
    the sign-for, on-site at the first progress note, every clock at the resolution or at the
    end (退单, 转办, the case closed or merged) — whichever came first; None: still running."""
    everything = [t for t in (resolved, ended) if t is not None]
    own = {Clock.SIGN_FOR: signed_for, Clock.ON_SITE: progressed, Clock.RESOLVE: None}
    return {
        clock: min([t for t in (at, *everything) if t is not None], default=None)
        for clock, at in own.items()
    }
