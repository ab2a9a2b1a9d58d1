"""A working calendar as data (JSON-shaped), and back: what an admin API stores and serves.

    {"timezone": "Asia/Shanghai",
     "hours": {"mon": [["08:30", "12:00"], ["13:30", "17:30"]], ..., "sat": [], "sun": []},
     "holidays": ["2026-01-01", "2026-02-15/2026-02-23"],   # dates or inclusive intervals
     "makeup_days": ["2026-02-14"],                         # 调休上班 (weekend dates)
     "makeup_hours": [["08:30", "12:00"], ["13:30", "17:30"]]}   # optional

A weekday left out of ``hours`` has no working hours; unknown keys are refused (a typo such
as ``holiday`` must not silently mean "no holidays"). Every error is ``Invalid`` naming the
field, in Chinese first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from services.tracking.domain.calendar import (
    WEEKDAYS,
    Period,
    WorkingCalendar,
    clock_label,
    invalid,
)

FIELDS = {"timezone", "hours", "holidays", "makeup_days", "makeup_hours"}
MAX_INTERVAL_DAYS = 366


def parse_clock(text: Any, field_name: str) -> timedelta:
    """``"08:30"`` → 8 h 30 min after midnight; ``"24:00"`` is the end of the day."""
    try:
        hours, minutes = (int(part) for part in str(text).split(":"))
        ok = (
            len(str(text)) == 5
            and 0 <= minutes < 60
            and (0 <= hours < 24 or (hours == 24 and minutes == 0))
        )
    except ValueError:
        ok = False
    if not ok:
        raise invalid(
            field_name,
            f"“{text}”不是有效时间（HH:MM，00:00–24:00）",
            f"'{text}' is not a time (HH:MM, 00:00-24:00)",
        )
    return timedelta(hours=hours, minutes=minutes)


def parse_periods(raw: Any, field_name: str) -> tuple[Period, ...]:
    if not isinstance(raw, list | tuple):
        raise invalid(
            field_name,
            '须为时段列表，如 [["08:30", "12:00"]]',
            'must be a list of periods, e.g. [["08:30", "12:00"]]',
        )
    periods = []
    for i, item in enumerate(raw):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise invalid(f"{field_name}[{i}]", "时段须为 [开始, 结束]", "a period is [start, end]")
        periods.append(
            Period(
                parse_clock(item[0], f"{field_name}[{i}]"),
                parse_clock(item[1], f"{field_name}[{i}]"),
            )
        )
    return tuple(periods)


def _parse_date(text: str, field_name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise invalid(
            field_name,
            f"“{text}”不是有效日期（YYYY-MM-DD）",
            f"'{text}' is not a date (YYYY-MM-DD)",
        ) from None


def parse_dates(raw: Any, field_name: str) -> frozenset[date]:
    """Dates and inclusive intervals ``first/last`` (ISO 8601) → the set of dates."""
    if not isinstance(raw, list | tuple):
        raise invalid(field_name, "须为日期列表", "must be a list of dates")
    out: set[date] = set()
    for i, item in enumerate(raw):
        where = f"{field_name}[{i}]"
        if not isinstance(item, str):
            raise invalid(where, f"“{item}”不是日期", f"'{item}' is not a date")
        first_text, _, last_text = item.partition("/")
        first = _parse_date(first_text, where)
        last = _parse_date(last_text, where) if last_text else first
        if last < first:
            raise invalid(
                where,
                f"区间 {item} 的结束日期早于开始日期",
                f"the interval {item} ends before it starts",
            )
        if (last - first).days >= MAX_INTERVAL_DAYS:
            raise invalid(
                where,
                f"区间 {item} 超过 {MAX_INTERVAL_DAYS} 天",
                f"the interval {item} is longer than {MAX_INTERVAL_DAYS} days",
            )
        out.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return frozenset(out)


def calendar_from_data(data: Mapping[str, Any]) -> WorkingCalendar:
    if not isinstance(data, Mapping):
        raise invalid("calendar", "须为对象", "must be an object")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise invalid(
            unknown[0],
            f"未知字段（可用：{'、'.join(sorted(FIELDS))}）",
            f"unknown field (known: {', '.join(sorted(FIELDS))})",
        )
    if not isinstance(data.get("timezone"), str):
        raise invalid("timezone", "必填，如 Asia/Shanghai", "required, e.g. Asia/Shanghai")
    hours = data.get("hours", {})
    if not isinstance(hours, Mapping):
        raise invalid("hours", "须为以 mon…sun 为键的对象", "must be an object keyed mon..sun")
    bad_days = sorted(set(hours) - set(WEEKDAYS))
    if bad_days:
        raise invalid(
            f"hours.{bad_days[0]}",
            "未知星期（mon、tue、wed、thu、fri、sat、sun）",
            "unknown weekday (mon, tue, wed, thu, fri, sat, sun)",
        )
    return WorkingCalendar(
        timezone=data["timezone"],
        week=tuple(parse_periods(hours.get(name, []), f"hours.{name}") for name in WEEKDAYS),
        holidays=parse_dates(data.get("holidays", []), "holidays"),
        makeup_days=parse_dates(data.get("makeup_days", []), "makeup_days"),
        makeup_periods=parse_periods(data.get("makeup_hours", []), "makeup_hours"),
    )


def _periods_data(periods: tuple[Period, ...]) -> list[list[str]]:
    return [[clock_label(p.start), clock_label(p.end)] for p in periods]


def calendar_to_data(calendar: WorkingCalendar) -> dict[str, Any]:
    """The inverse of ``calendar_from_data`` (dates listed one by one, sorted)."""
    return {
        "timezone": calendar.timezone,
        "hours": {
            name: _periods_data(day) for name, day in zip(WEEKDAYS, calendar.week, strict=True)
        },
        "holidays": sorted(d.isoformat() for d in calendar.holidays),
        "makeup_days": sorted(d.isoformat() for d in calendar.makeup_days),
        "makeup_hours": _periods_data(calendar.makeup_periods),
    }
