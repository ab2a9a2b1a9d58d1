"""When an assignment will actually be resolved (预计办结时间), and whether it will likely miss
its deadline (预计超期) — pure: callers pass ``now`` and the history.

The rules, in one place:
- Durations count from the dispatch in the resolution clock's basis (working or calendar
  time), approved pauses (挂账/缓办) not counted — the same measure as the deadline.
- The sample: the department's own resolved assignments of the category in the last
  ``HISTORY_DAYS`` days (basis ``history``); fewer than ``MIN_SAMPLE``: every department's of
  the category (``category``); fewer still: the pinned deadline itself (``deadline``).
- Conditional on not yet resolved: only the durations longer than the time already used
  count. Expected = their median, the range their 20th–80th percentile. When fewer than
  ``MIN_SAMPLE`` are that long (the case outlived its history), the deadline rule applies.
- The deadline rule: before the deadline, expected = the deadline, range from halfway through
  the allowance; past it, a fifth of the allowance from now (range: now … half of it).
- Never before ``now``; never a sign-for or on-site limit (only the resolution clock is
  forecast); once resolved, expected = earliest = latest = the resolution.
- Predicted breach: the share of the conditional durations longer than the allowance is the
  breach probability; at or above ``threshold`` while the deadline is still ahead, the
  assignment is likely to miss it, with a reason in Chinese and English.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.tracking.domain.deadlines import run_clock
from services.tracking.domain.timeline import Timeline
from shared.contract import ForecastBasis

HISTORY_DAYS = 30
MIN_SAMPLE = 5
BREACH_THRESHOLD = 0.5
LOW, HIGH = 0.2, 0.8
_ZERO = timedelta(0)


@dataclass(frozen=True)
class ResolveClock:
    """An assignment's resolution clock as it stands: its basis, when it started (the
    dispatch), its allowance (extensions included), its deadline and the pauses it stood
    still for (closed, sorted, merged; one still open ends at ``now``)."""

    basis: Timeline
    working: bool
    start: datetime
    allowance: timedelta
    due_at: datetime
    pauses: tuple[tuple[datetime, datetime], ...] = ()

    def used(self, now: datetime) -> timedelta:
        """How much of the allowance has run by ``now`` (pauses not counted)."""
        if now <= self.start:
            return _ZERO
        total = self.basis.between(self.start, now)
        for s, e in self.pauses:
            lo, hi = max(s, self.start), min(e, now)
            if hi > lo:
                total -= self.basis.between(lo, hi)
        return max(total, _ZERO)

    def instant(self, used: timedelta) -> datetime:
        """When ``used`` of basis time will have run since the dispatch."""
        return run_clock(self.basis, self.start, used, self.pauses)


@dataclass(frozen=True)
class History:
    """Resolved durations (in the clock's basis, pauses not counted) of the last
    ``HISTORY_DAYS`` days: the department's own for the category, and every department's."""

    department: Sequence[timedelta] = ()
    category: Sequence[timedelta] = ()


@dataclass(frozen=True)
class Forecast:
    expected_at: datetime
    earliest: datetime
    latest: datetime
    basis: ForecastBasis
    due_at: datetime | None
    sample_size: int = 0
    median: timedelta | None = None  # of the whole sample, from the dispatch
    breach_probability: float | None = None
    breach_likely: bool = False
    reason_zh: str | None = None
    reason_en: str | None = None


def quantile(values: Sequence[timedelta], q: float) -> timedelta:
    """The ``q`` quantile of sorted ``values`` (linear between neighbours)."""
    if not values:
        raise ValueError("no values")
    pos = (len(values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def resolved(at: datetime, due_at: datetime | None) -> Forecast:
    """Once resolved: the resolution itself."""
    return Forecast(at, at, at, ForecastBasis.RESOLVED, due_at)


def forecast(
    clock: ResolveClock, history: History, now: datetime, threshold: float = BREACH_THRESHOLD
) -> Forecast:
    """The forecast of an open assignment's resolution at ``now``."""
    if len(history.department) >= MIN_SAMPLE:
        basis, sample = ForecastBasis.HISTORY, sorted(history.department)
    elif len(history.category) >= MIN_SAMPLE:
        basis, sample = ForecastBasis.CATEGORY, sorted(history.category)
    else:
        return _by_deadline(clock, now, len(history.department))
    used = clock.used(now)
    longer = [d for d in sample if d > used]  # conditional on not yet resolved
    if len(longer) < MIN_SAMPLE:
        return _by_deadline(clock, now, len(sample))

    def at(q: float) -> datetime:
        return max(now, clock.instant(quantile(longer, q)))

    late = sum(1 for d in longer if d > clock.allowance) / len(longer)
    expected = quantile(longer, 0.5)
    likely = late >= threshold and now < clock.due_at and expected > clock.allowance
    median = quantile(sample, 0.5)
    zh, en = (
        _reason(clock, basis, median, expected - clock.allowance, late) if likely else (None, None)
    )
    return Forecast(
        at(0.5),
        at(LOW),
        at(HIGH),
        basis,
        clock.due_at,
        len(sample),
        median,
        round(late, 3),
        likely,
        zh,
        en,
    )


def _by_deadline(clock: ResolveClock, now: datetime, sample_size: int) -> Forecast:
    """Too little history: up to the deadline, the deadline; past it, a fifth of the
    allowance from now."""
    if now < clock.due_at:
        earliest = max(now, clock.instant(clock.allowance / 2))
        return Forecast(
            clock.due_at,
            min(earliest, clock.due_at),
            clock.due_at,
            ForecastBasis.DEADLINE,
            clock.due_at,
            sample_size,
        )
    ahead = clock.basis.add(now, clock.allowance / 5)
    latest = clock.basis.add(now, clock.allowance / 2)
    return Forecast(ahead, now, latest, ForecastBasis.DEADLINE, clock.due_at, sample_size)


def case_forecast(forecasts: Sequence[Forecast]) -> Forecast | None:
    """A case is resolved when its last assignment is: the open assignment expected last (the
    latest resolution when all are resolved); None without any."""
    open_ = [f for f in forecasts if f.basis is not ForecastBasis.RESOLVED]
    pool = open_ or list(forecasts)
    if not pool:
        return None
    last = max(pool, key=lambda f: f.expected_at)
    likely = next((f for f in open_ if f.breach_likely), None)
    if likely is None or likely is last:
        return last
    return replace(
        last,
        breach_likely=True,
        breach_probability=likely.breach_probability,
        reason_zh=likely.reason_zh,
        reason_en=likely.reason_en,
    )


def pause_spans(
    pauses: Sequence[tuple[datetime, datetime | None]], now: datetime
) -> tuple[tuple[datetime, datetime], ...]:
    """Pauses as closed spans (one still open ends at ``now``), sorted and merged."""
    spans = sorted((s, max(e or now, s)) for s, e in pauses)
    merged: list[tuple[datetime, datetime]] = []
    for s, e in spans:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return tuple(merged)


# --- the reason, for a person -----------------------------------------------------------------


def _amount(d: timedelta, clock: ResolveClock, *, precise: bool) -> tuple[str, str]:
    """A duration in days of the clock's basis (working days or days), hours under a day,
    minutes under an hour."""
    day = clock.basis.day_length
    unit_zh, unit_en = ("个工作日", "working days") if clock.working else ("天", "days")
    if d >= day:
        n = d / day
        text = f"{n:.1f}" if precise else f"{round(n)}"
        return f"{text}{unit_zh}", f"{text} {unit_en[:-1] if text == '1' else unit_en}"
    working_en = "working " if clock.working else ""
    if d < timedelta(minutes=59, seconds=30):  # would round to under an hour: minutes
        minutes = max(1, round(d / timedelta(minutes=1)))
        return f"{minutes}分钟", f"{minutes} {working_en}minute{'s' if minutes > 1 else ''}"
    hours = round(d / timedelta(hours=1))
    hour_zh = "个工作小时" if clock.working else "小时"
    return f"{hours}{hour_zh}", f"{hours} {working_en}hour{'s' if hours > 1 else ''}"


def _reason(
    clock: ResolveClock, basis: ForecastBasis, median: timedelta, late: timedelta, share: float
) -> tuple[str, str]:
    """按该部门近30天同类案件办理时长（中位数3.2天），预计超期约1天 / English."""
    m_zh, m_en = _amount(median, clock, precise=True)
    l_zh, l_en = _amount(late, clock, precise=False)
    pct = round(share * 100)
    if basis is ForecastBasis.HISTORY:
        who_zh, who_en = "该部门", "this department's"
    else:
        who_zh, who_en = "各部门", "all departments'"
    zh = (
        f"按{who_zh}近{HISTORY_DAYS}天同类案件办理时长（中位数{m_zh}），"
        f"预计超期约{l_zh}（超期可能性{pct}%）"
    )
    en = (
        f"by {who_en} similar cases of the last {HISTORY_DAYS} days (median {m_en}), "
        f"expected about {l_en} late ({pct}% likely to miss the deadline)"
    )
    return zh, en
