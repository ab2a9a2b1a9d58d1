"""A clock's time basis: working time (a ``WorkingCalendar``) or calendar time (自然时间, every
instant counts) — the same three operations either way, so a policy chooses per clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from services.tracking.domain.calendar import DAY, ZERO, WorkingCalendar


class Timeline(Protocol):
    """What a clock needs from its time basis: working time or calendar time."""

    @property
    def day_length(self) -> timedelta: ...

    def add(self, start: datetime, duration: timedelta) -> datetime: ...

    def between(self, a: datetime, b: datetime) -> timedelta: ...

    def next_working_instant(self, t: datetime) -> datetime: ...


class CalendarTime:
    """Calendar (natural) time: every instant counts; a day is 24 hours."""

    day_length = DAY

    def add(self, start: datetime, duration: timedelta) -> datetime:
        if duration < ZERO:
            raise ValueError("a duration to add must not be negative")
        return start + duration

    def between(self, a: datetime, b: datetime) -> timedelta:
        return b - a

    def next_working_instant(self, t: datetime) -> datetime:
        return t


CALENDAR_TIME = CalendarTime()


def timeline(calendar: WorkingCalendar, working: bool) -> Timeline:
    """The basis a clock counts in: the working calendar, or plain calendar time."""
    return calendar if working else CALENDAR_TIME
