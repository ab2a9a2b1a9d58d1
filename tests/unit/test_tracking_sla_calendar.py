"""The working calendar (工作日历) and working-time arithmetic: nights, lunch breaks, weekends,
public holidays, make-up working days (调休上班), long spans, time zones; calendar validation
and the demo calendar of 2026 (State Council notice) and 2027 (provisional)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.tracking import demo
from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.calendar_data import calendar_from_data, calendar_to_data
from services.tracking.domain.timeline import CALENDAR_TIME, timeline
from shared.errors import Invalid

SH = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)
M = timedelta(minutes=1)
CAL = demo.demo_calendar()  # 08:30–12:00, 13:30–17:30 Mon–Fri; 2026 holidays


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def simple(**extra) -> dict:
    data = {
        "timezone": "Asia/Shanghai",
        "hours": {
            d: [["08:30", "12:00"], ["13:30", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")
        },
    }
    data.update(extra)
    return data


# --- adding working time --------------------------------------------------------------------


# 2026-03-02 is a Monday; March 2026 has no holidays.
@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (at(3, 2, 9), H, at(3, 2, 10)),  # inside a period
        (at(3, 2, 11, 30), H, at(3, 2, 14)),  # over the lunch break
        (at(3, 2, 17), H, at(3, 3, 9)),  # over the night
        (at(3, 2, 7), H, at(3, 2, 9, 30)),  # before hours: from 08:30
        (at(3, 2, 12, 30), 30 * M, at(3, 2, 14)),  # at lunch: from 13:30
        (at(3, 2, 20), H, at(3, 3, 9, 30)),  # in the evening: next morning
        (at(3, 6, 17), H, at(3, 9, 9)),  # Friday evening → Monday
        (at(3, 7, 10), 30 * M, at(3, 9, 9)),  # from a Saturday
        (at(3, 2, 8, 30), 3.5 * H, at(3, 2, 12)),  # uses up the morning: 12:00
        (at(3, 2, 8, 30), 7.5 * H, at(3, 2, 17, 30)),  # a whole day: 17:30, not 08:30
        (at(3, 2, 8, 30), 37.5 * H, at(3, 6, 17, 30)),  # a whole week
        (at(3, 2, 10), 5 * 7.5 * H, at(3, 9, 10)),  # five working days
        (at(4, 30, 17), H, at(5, 6, 9)),  # 劳动节 1–5 May off
        (at(5, 8, 17), H, at(5, 9, 9)),  # Sat 9 May is a make-up day
        (at(2, 13, 16), 2 * H, at(2, 14, 9)),  # Fri → make-up Sat 14 Feb
        (at(2, 13, 16), 10 * H, at(2, 24, 9, 30)),  # …then 春节 15–23 Feb off
        (at(12, 31, 17), H, at(1, 4, 9, year=2027)),  # 2027 元旦 (provisional), weekend
    ],
)
def test_add_working_time(start, duration, expected):
    assert CAL.add(start, duration) == expected
    assert CAL.between(start, expected) == duration


def test_adding_nothing_is_the_start_itself_even_outside_hours():
    saturday = at(3, 7, 10)
    assert CAL.add(saturday, timedelta(0)) == saturday


def test_a_negative_duration_or_a_naive_instant_is_a_programming_error():
    with pytest.raises(ValueError, match="negative"):
        CAL.add(at(3, 2, 9), -H)
    with pytest.raises(ValueError, match="aware"):
        CAL.add(datetime(2026, 3, 2, 9), H)


def test_instants_in_any_zone_are_read_in_the_calendar_zone_and_returned_in_theirs():
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    result = CAL.add(start, H)
    assert result.tzinfo is UTC
    assert result == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def test_between_counts_only_working_time_and_is_signed():
    assert CAL.between(at(3, 6, 16), at(3, 9, 10)) == 1.5 * H + 1.5 * H  # Fri 16–17:30, Mon
    assert CAL.between(at(3, 7, 9), at(3, 8, 18)) == timedelta(0)  # a weekend
    assert CAL.between(at(3, 9, 10), at(3, 6, 16)) == -3 * H
    assert CAL.between(at(3, 2, 12, 10), at(3, 2, 13, 20)) == timedelta(0)  # lunch


def test_a_whole_year_of_working_days_2026():
    # 365 days, 1 Jan is a Thursday → 52 weeks + 1 day: 104 weekend days, 261 weekdays.
    # Weekday holidays: 元旦 1–2 Jan (2), 春节 16–20, 23 Feb (6), 清明 6 Apr (1), 劳动节 1, 4, 5
    # May (3), 端午 19 Jun (1), 中秋 25 Sep (1), 国庆 1, 2, 5, 6, 7 Oct (5) = 19.
    # Make-up days: 4 Jan, 14 Feb, 28 Feb, 9 May, 20 Sep, 10 Oct = 6.
    # Working days: 261 − 19 + 6 = 248, of 7.5 hours each.
    year = CAL.working_time_on_days(date(2026, 1, 1), date(2027, 1, 1))
    assert year == 248 * 7.5 * H
    assert CAL.between(at(1, 1), at(1, 1, year=2027)) == year


def test_long_spans_are_fast_and_exact():
    calls = 0
    original = WorkingCalendar.working_time_on_days

    def counting(self, first, stop):
        nonlocal calls
        calls += 1
        return original(self, first, stop)

    start = at(3, 2, 10)
    WorkingCalendar.working_time_on_days = counting  # type: ignore[method-assign]
    try:
        end = CAL.add(start, 2000 * 7.5 * H)  # about eight years of working days
    finally:
        WorkingCalendar.working_time_on_days = original  # type: ignore[method-assign]
    assert calls < 40  # galloping + bisection, not day by day
    assert CAL.between(start, end) == 2000 * 7.5 * H
    # 2026's holidays and make-up days are inside the span; later years have none listed:
    # the result is a Monday-to-Friday count from the start.
    assert end.weekday() < 5 and (end.hour, end.minute) == (10, 0)


# --- against a minute-by-minute reference ---------------------------------------------------


def reference_between(cal: WorkingCalendar, a: datetime, b: datetime) -> timedelta:
    count, t = 0, a
    while t < b:
        count += cal.is_working(t)
        t += M
    return count * M


def reference_add(cal: WorkingCalendar, start: datetime, minutes: int) -> datetime:
    t, left = start, minutes
    while left:
        if cal.is_working(t):
            left -= 1
        t += M
    return t


def test_add_and_between_agree_with_a_minute_by_minute_reference():
    rng = random.Random(20260213)
    base = at(2, 10)  # around 春节 and its make-up days
    for _ in range(40):
        start = base + rng.randrange(0, 20 * 24 * 60) * M
        minutes = rng.randrange(1, 3 * 450)
        expected = reference_add(CAL, start, minutes)
        assert CAL.add(start, minutes * M) == expected, (start, minutes)
        end = start + rng.randrange(0, 6 * 24 * 60) * M
        assert CAL.between(start, end) == reference_between(CAL, start, end), (start, end)


# --- other shapes of calendar ---------------------------------------------------------------


def test_overnight_shift_split_at_midnight():
    night = calendar_from_data(
        {
            "timezone": "Asia/Shanghai",
            "hours": {
                d: [["00:00", "06:00"], ["22:00", "24:00"]]
                for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            },
        }
    )
    assert night.add(at(3, 2, 23), 2 * H) == at(3, 3, 1)
    assert night.add(at(3, 2, 22), 2 * H) == at(3, 3, 0)  # uses up the evening: midnight
    assert night.between(at(3, 2, 12), at(3, 3, 12)) == 8 * H


def test_a_utc_calendar_and_a_zone_without_daylight_saving():
    for zone in ("UTC", "Asia/Shanghai", "Asia/Tokyo"):
        cal = calendar_from_data(simple(timezone=zone))
        start = datetime(2026, 3, 6, 17, tzinfo=ZoneInfo(zone))  # a Friday
        assert cal.add(start, H) == datetime(2026, 3, 9, 9, tzinfo=ZoneInfo(zone))


def test_a_zone_with_daylight_saving_counts_wall_clock_working_time():
    berlin = ZoneInfo("Europe/Berlin")
    cal = calendar_from_data(simple(timezone="Europe/Berlin"))
    friday = datetime(2026, 3, 27, 17, tzinfo=berlin)  # summer time starts Sunday 29 March
    monday = cal.add(friday, H)
    assert monday == datetime(2026, 3, 30, 9, tzinfo=berlin)
    assert monday.utcoffset() == 2 * H and friday.utcoffset() == H
    assert cal.between(friday, monday) == H


def test_next_working_instant_and_is_working():
    assert CAL.next_working_instant(at(3, 2, 9)) == at(3, 2, 9)
    assert CAL.next_working_instant(at(3, 2, 12)) == at(3, 2, 13, 30)  # 12:00 is lunch
    assert CAL.next_working_instant(at(3, 6, 18)) == at(3, 9, 8, 30)
    assert CAL.next_working_instant(at(9, 30, 18)) == at(10, 8, 8, 30)  # 国庆 1–7 Oct
    assert CAL.next_working_instant(at(10, 9, 18)) == at(10, 10, 8, 30)  # make-up Saturday
    assert CAL.is_working(at(2, 28, 10))  # make-up Saturday
    assert not CAL.is_working(at(2, 16, 10))  # 春节 Monday
    assert not CAL.is_working(at(3, 2, 17, 30))  # a period's end is not in it


def test_calendar_time_mode_counts_every_instant():
    assert timeline(CAL, working=False) is CALENDAR_TIME
    assert timeline(CAL, working=True) is CAL
    saturday_night = at(3, 7, 23, 50)
    assert CALENDAR_TIME.add(saturday_night, 30 * M) == at(3, 8, 0, 20)
    assert CALENDAR_TIME.between(at(3, 7), at(3, 8)) == 24 * H
    assert CALENDAR_TIME.next_working_instant(saturday_night) == saturday_night
    assert CALENDAR_TIME.day_length == 24 * H and CAL.day_length == 7.5 * H


# --- validation of calendar data ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "zh"),
    [
        (simple(hours={"mon": [["08:30", "12:00"], ["11:00", "13:00"]]}), "hours.mon", "重叠"),
        (simple(hours={"tue": [["12:00", "08:30"]]}), "hours.tue[0]", "结束时间须晚于开始时间"),
        (simple(hours={"wed": [["09:00", "09:00"]]}), "hours.wed[0]", "结束时间须晚于开始时间"),
        (simple(hours={"mon": [["08:30", "25:00"]]}), "hours.mon[0]", "不是有效时间"),
        (simple(hours={"mon": [["8:30", "12:00"]]}), "hours.mon[0]", "不是有效时间"),
        (simple(hours={"mon": [["08:30"]]}), "hours.mon[0]", "[开始, 结束]"),
        (simple(hours={"mon": "08:30-12:00"}), "hours.mon", "时段列表"),
        (simple(hours={"monday": [["08:30", "12:00"]]}), "hours.monday", "未知星期"),
        (simple(hours={}), "hours", "至少要有一个工作时段"),
        (
            simple(holidays=["2026-10-10"], makeup_days=["2026-10-10"]),
            "makeup_days",
            "既是节假日又是调休上班日",
        ),
        (simple(makeup_days=["2026-10-09"]), "makeup_days", "本来就是工作日"),
        (simple(holidays=["2026-02-30"]), "holidays[0]", "不是有效日期"),
        (simple(holidays=["2026-10-07/2026-10-01"]), "holidays[0]", "结束日期早于开始日期"),
        (simple(holidays="2026-10-01"), "holidays", "日期列表"),
        (simple(timezone="Asia/Beijing"), "timezone", "未知时区"),
        (simple(timezone=None), "timezone", "必填"),
        (simple(holiday=["2026-10-01"]), "holiday", "未知字段"),
        (simple(makeup_hours=[["13:00", "12:00"]]), "makeup_hours[0]", "结束时间须晚于开始时间"),
    ],
)
def test_bad_calendar_data_is_refused_naming_the_field(data, field, zh):
    with pytest.raises(Invalid) as err:
        calendar_from_data(data)
    assert err.value.code == "invalid_calendar"
    assert err.value.message("zh").startswith(f"{field}：")
    assert zh in err.value.message("zh")
    assert err.value.message("en").startswith(f"{field}: ")


def test_calendar_data_round_trips():
    assert calendar_from_data(calendar_to_data(CAL)) == CAL
    data = calendar_to_data(CAL)
    assert data["hours"]["mon"] == [["08:30", "12:00"], ["13:30", "17:30"]]
    assert data["hours"]["sat"] == []


# --- the demo calendar ------------------------------------------------------------------------


def test_demo_calendar_follows_the_2026_notice():
    # 国务院办公厅关于2026年部分节假日安排的通知: the breaks and the make-up Saturdays/Sundays.
    off = [
        "2026-01-01",
        "2026-01-02",
        "2026-02-16",
        "2026-02-23",
        "2026-04-06",
        "2026-05-05",
        "2026-06-19",
        "2026-09-25",
        "2026-10-01",
        "2026-10-07",
    ]
    on = [
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
        "2026-02-24",
        "2026-10-08",
    ]
    assert not any(CAL.is_working_day(date.fromisoformat(d)) for d in off)
    assert all(CAL.is_working_day(date.fromisoformat(d)) for d in on)


def test_demo_calendar_2027_is_provisional_statutory_days_only():
    assert {2027} == demo.PROVISIONAL_YEARS
    assert not CAL.is_working_day(date(2027, 2, 8))  # 初三, a Monday
    assert not CAL.is_working_day(date(2027, 10, 1))
    assert not {d for d in CAL.makeup_days if d.year == 2027}


def test_demo_calendar_matches_chinesecalendar_for_2026():
    """Cross-check with PyPI chinesecalendar where it is installed (it is not a project
    dependency: `pip install chinesecalendar` to run this)."""
    chinese_calendar = pytest.importorskip("chinese_calendar")
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert CAL.is_working_day(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)
