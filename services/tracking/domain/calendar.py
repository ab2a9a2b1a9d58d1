"""The working calendar (工作日历): working hours per weekday, public holidays (法定节假日) and
make-up working days (调休上班), in one time zone — and the working-time arithmetic clocks
need: add working time to an instant, working time between two instants, the next working
instant. (``timeline.CALENDAR_TIME`` offers the same operations in plain calendar time.)

Working time is counted on the local wall clock of the calendar's zone: a period 08:30–12:00
is three and a half hours of working time. In a zone without daylight saving time (Asia/
Shanghai) that is exact; in a zone with it, a period that contains a transition counts its wall
length. Long spans cost O(log n): whole weeks are counted arithmetically and holidays and
make-up days are corrections found by bisection, never walked day by day.

Pure: standard library only, no clock reads; every instant must be timezone-aware.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate, pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import Invalid

ZERO = timedelta(0)
DAY = timedelta(days=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def invalid(field_name: str, zh: str, en: str) -> Invalid:
    return Invalid(f"{field_name}：{zh}", f"{field_name}: {en}", code="invalid_calendar")


def clock_label(offset: timedelta) -> str:
    """``08:30`` for an offset from midnight (``24:00`` for the end of the day)."""
    minutes = int(offset.total_seconds() // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, order=True)
class Period:
    """One working period of a day, ``[start, end)`` as offsets from local midnight
    (``end`` may be 24:00; an overnight shift is two periods on consecutive days)."""

    start: timedelta
    end: timedelta

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def __str__(self) -> str:
        return f"{clock_label(self.start)}–{clock_label(self.end)}"


def _check_periods(field_name: str, periods: tuple[Period, ...]) -> None:
    for i, p in enumerate(periods):
        if not ZERO <= p.start < DAY or not ZERO < p.end <= DAY:
            raise invalid(
                f"{field_name}[{i}]",
                f"时间 {p} 超出 00:00–24:00",
                f"the period {p} is outside 00:00-24:00",
            )
        if p.end <= p.start:
            raise invalid(
                f"{field_name}[{i}]",
                f"时段 {p} 的结束时间须晚于开始时间",
                f"the period {p} must end after it starts",
            )
    ordered = sorted(periods)
    for before, after in pairwise(ordered):
        if after.start < before.end:
            raise invalid(
                field_name,
                f"工作时段 {before} 与 {after} 重叠",
                f"the working periods {before} and {after} overlap",
            )


@dataclass(frozen=True)
class WorkingCalendar:
    """Working hours per weekday (Monday first), days off and make-up working days.

    ``makeup_periods`` are the hours of a make-up working day; empty means the hours of the
    first weekday (from Monday) that has any — the *standard working day*, whose length is
    what a "working day" of a limit or an extension means (``day_length``).
    Construction validates everything and raises ``Invalid`` naming the field.
    """

    timezone: str
    week: tuple[tuple[Period, ...], ...]
    holidays: frozenset[date] = frozenset()
    makeup_days: frozenset[date] = frozenset()
    makeup_periods: tuple[Period, ...] = ()
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _nominal: tuple[timedelta, ...] = field(init=False, repr=False, compare=False)
    _special: tuple[date, ...] = field(init=False, repr=False, compare=False)
    _prefix: tuple[timedelta, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise invalid(
                "timezone",
                f"未知时区“{self.timezone}”（如 Asia/Shanghai）",
                f"unknown time zone '{self.timezone}' (e.g. Asia/Shanghai)",
            ) from None
        if len(self.week) != 7:
            raise invalid(
                "hours",
                "须给出周一到周日七天的工作时段",
                "working periods must be given for the seven weekdays",
            )
        week = tuple(tuple(sorted(day)) for day in self.week)
        for name, periods in zip(WEEKDAYS, week, strict=True):
            _check_periods(f"hours.{name}", periods)
        if not any(week):
            raise invalid(
                "hours", "每周至少要有一个工作时段", "a week needs at least one working period"
            )
        standard = tuple(sorted(self.makeup_periods)) or next(day for day in week if day)
        _check_periods("makeup_hours", standard)
        self._check_days(week)
        object.__setattr__(self, "week", week)
        object.__setattr__(self, "makeup_periods", standard)
        object.__setattr__(self, "_tz", tz)
        nominal = tuple(sum((p.length for p in day), ZERO) for day in week)
        object.__setattr__(self, "_nominal", nominal)
        special = tuple(sorted(self.holidays | self.makeup_days))
        deltas = (self._day_length(d) - nominal[d.weekday()] for d in special)
        object.__setattr__(self, "_special", special)
        object.__setattr__(self, "_prefix", tuple(accumulate(deltas, initial=ZERO)))

    def _check_days(self, week: tuple[tuple[Period, ...], ...]) -> None:
        for name, days in (("holidays", self.holidays), ("makeup_days", self.makeup_days)):
            for d in days:
                if not isinstance(d, date) or isinstance(d, datetime):
                    raise invalid(name, f"“{d}”不是日期", f"'{d}' is not a date")
        both = sorted(self.holidays & self.makeup_days)
        if both:
            raise invalid(
                "makeup_days",
                f"{both[0]} 不能既是节假日又是调休上班日",
                f"{both[0]} cannot be both a holiday and a make-up working day",
            )
        worked = sorted(d for d in self.makeup_days if week[d.weekday()])
        if worked:
            d = worked[0]
            raise invalid(
                "makeup_days",
                f"{d}（{WEEKDAY_ZH[d.weekday()]}）本来就是工作日",
                f"{d} ({WEEKDAYS[d.weekday()]}) is a working day anyway",
            )

    # --- the shape of days ------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def day_length(self) -> timedelta:
        """The length of a standard working day: one "working day" of a limit."""
        return sum((p.length for p in self.makeup_periods), ZERO)

    def periods_on(self, day: date) -> tuple[Period, ...]:
        if day in self.holidays:
            return ()
        if day in self.makeup_days:
            return self.makeup_periods
        return self.week[day.weekday()]

    def is_working_day(self, day: date) -> bool:
        return bool(self.periods_on(day))

    def _day_length(self, day: date) -> timedelta:
        return sum((p.length for p in self.periods_on(day)), ZERO)

    def working_time_on_days(self, first: date, stop: date) -> timedelta:
        """Working time of the whole days ``first`` ≤ day < ``stop``, in O(log n)."""
        if stop <= first:
            return ZERO
        weeks, rest = divmod((stop - first).days, 7)
        start_wd = first.weekday()
        total = sum(self._nominal, ZERO) * weeks
        total += sum((self._nominal[(start_wd + i) % 7] for i in range(rest)), ZERO)
        lo, hi = bisect_left(self._special, first), bisect_left(self._special, stop)
        return total + self._prefix[hi] - self._prefix[lo]

    def _within(self, day: date, lo: timedelta, hi: timedelta) -> timedelta:
        return sum(
            (max(ZERO, min(p.end, hi) - max(p.start, lo)) for p in self.periods_on(day)), ZERO
        )

    # --- instants ----------------------------------------------------------------------

    def _local(self, t: datetime) -> tuple[date, timedelta]:
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"an aware datetime is required, got {t!r}")
        wall = t.astimezone(self._tz).replace(tzinfo=None)
        day = wall.date()
        return day, wall - datetime.combine(day, datetime.min.time())

    def _instant(self, day: date, offset: timedelta, like: datetime) -> datetime:
        wall = datetime.combine(day, datetime.min.time()) + offset
        return wall.replace(tzinfo=self._tz).astimezone(like.tzinfo)

    def is_working(self, t: datetime) -> bool:
        day, offset = self._local(t)
        return any(p.start <= offset < p.end for p in self.periods_on(day))

    def next_working_instant(self, t: datetime) -> datetime:
        """``t`` itself when it lies in a working period, else the start of the next one."""
        day, offset = self._local(t)
        for p in self.periods_on(day):
            if offset < p.end:
                return t if offset >= p.start else self._instant(day, p.start, t)
        day += DAY
        while not self.periods_on(day):  # ends: the week has working periods, holidays end
            day += DAY
        return self._instant(day, self.periods_on(day)[0].start, t)

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Working time from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        if b < a:
            return -self.between(b, a)
        (da, oa), (db, ob) = self._local(a), self._local(b)
        if da == db:
            return self._within(da, oa, ob)
        return (
            self._within(da, oa, DAY)
            + self.working_time_on_days(da + DAY, db)
            + self._within(db, ZERO, ob)
        )

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which ``duration`` of working time has passed since
        ``start`` (a start outside working hours begins at the next working period; a result
        that uses up a period exactly is that period's end, e.g. 12:00, not 13:30)."""
        if duration < ZERO:
            raise ValueError("a duration to add must not be negative")
        day, offset = self._local(start)
        if duration == ZERO:
            return start
        at, remaining = self._consume(day, offset, duration)
        if at is not None:
            return self._instant(day, at, start)
        first = day + DAY
        # the largest n with working_time_on_days(first, first + n) < remaining: gallop, bisect
        lo, hi = 0, 1
        while self.working_time_on_days(first, first + hi * DAY) < remaining:
            lo, hi = hi, hi * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.working_time_on_days(first, first + mid * DAY) < remaining:
                lo = mid
            else:
                hi = mid
        remaining -= self.working_time_on_days(first, first + lo * DAY)
        day = first + lo * DAY
        at, _ = self._consume(day, ZERO, remaining)
        assert at is not None  # the day after lo reaches remaining by construction
        return self._instant(day, at, start)

    def _consume(
        self, day: date, offset: timedelta, remaining: timedelta
    ) -> tuple[timedelta | None, timedelta]:
        """Spend ``remaining`` on ``day`` from ``offset``: (where it ran out, or None; the rest)."""
        for p in self.periods_on(day):
            lo = max(p.start, offset)
            if lo >= p.end:
                continue
            if remaining <= p.end - lo:
                return lo + remaining, ZERO
            remaining -= p.end - lo
        return None, remaining
