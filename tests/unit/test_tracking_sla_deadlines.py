"""An assignment's deadlines under its pinned policy: warnings, deadlines and the escalation
schedule, in working and calendar time, moved by approved extensions (延期) and pauses (挂账)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.tracking import demo
from services.tracking.domain.deadlines import Extension, Light, Pause, plan_clocks, run_clock
from services.tracking.domain.policy import pin_policy
from services.tracking.domain.policy_data import version_from_data
from shared.contract import Clock, Level
from shared.errors import Invalid

SH = ZoneInfo("Asia/Shanghai")
CAL = demo.demo_calendar()  # 08:30–12:00, 13:30–17:30 Mon–Fri; 2026 holidays, make-up days
VERSIONS = demo.demo_policy_versions()
SIGN, ON_SITE, RESOLVE = Clock.SIGN_FOR, Clock.ON_SITE, Clock.RESOLVE


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


def plan(category: str, priority: str, start: datetime, **kwargs):
    pinned = pin_policy(VERSIONS, category, priority, start)
    return plan_clocks(pinned.policy, CAL, start, **kwargs)


# An 楼道杂物 (E0103) case, normal priority: E01's rule — sign for in 2 working hours, resolve
# in 3 working days (22.5 working hours), warn at 80 %. Dispatched Friday 13 Feb 2026 at 16:00:
# 1.5 h left on Friday, Saturday 14 Feb is a make-up working day, 15–23 Feb is 春节.
START = at(2, 13, 16)


def test_normal_case_in_working_time_over_a_make_up_day_and_spring_festival():
    clocks = plan("E0103", "normal", START)
    assert set(clocks) == {SIGN, RESOLVE}
    sign = clocks[SIGN]
    # 2 h: 1.5 h on Friday, 0.5 h on the make-up Saturday from 08:30 → 09:00.
    assert sign.due_at == at(2, 14, 9)
    # 80 % of 2 h = 1.6 h: 1.5 h on Friday, 6 minutes on Saturday.
    assert sign.warn_at == at(2, 14, 8, 36)
    resolve = clocks[RESOLVE]
    # 22.5 h: Fri 1.5 + Sat 7.5 = 9; (春节) Tue 24 Feb 7.5 = 16.5; Wed 25: 3.5 by 12:00 = 20,
    # 2.5 more from 13:30 → 16:00.
    assert resolve.due_at == at(2, 25, 16)
    # 80 % = 18 h: 16.5 by Tue evening, 1.5 h on Wed → 10:00.
    assert resolve.warn_at == at(2, 25, 10)
    assert resolve.allowance == timedelta(hours=22.5) and not resolve.paused


def test_escalation_ladder_in_working_time_and_its_repeats():
    resolve = plan("E0103", "normal", START, escalations=5)[RESOLVE]
    # community at the deadline (Wed 25 Feb 16:00); street 4 working hours later: 1.5 h on
    # Wednesday, 2.5 h Thursday from 08:30 → 11:00; district 15 h after the deadline:
    # 1.5 + 7.5 (Thu) + 6 (Fri: 3.5 + 2.5) → Fri 27 Feb 16:00; then every working day (7.5 h):
    # 1.5 h on Friday + 6 h on Saturday 28 Feb, a make-up day → 16:00; then Monday 2 Mar 16:00.
    assert [(e.index, e.level, e.at, e.repeat) for e in resolve.escalations] == [
        (0, Level.COMMUNITY, at(2, 25, 16), 0),
        (1, Level.STREET, at(2, 26, 11), 0),
        (2, Level.DISTRICT, at(2, 27, 16), 0),
        (3, Level.DISTRICT, at(2, 28, 16), 1),
        (4, Level.DISTRICT, at(3, 2, 16), 2),
    ]
    assert plan("E0103", "normal", START, escalations=0)[RESOLVE].escalations == ()
    with pytest.raises(ValueError):
        plan("E0103", "normal", START, escalations=-1)


def test_urgent_case_runs_in_calendar_time_through_the_night():
    # 井盖缺失 (C0102), urgent, Saturday 7 Mar 22:10: sign for in 30 minutes, on site in 30
    # minutes (its own rule), resolve in 12 hours — calendar time, weekend or not.
    clocks = plan("C0102", "urgent", at(3, 7, 22, 10))
    assert clocks[SIGN].due_at == at(3, 7, 22, 40)
    assert clocks[SIGN].warn_at == at(3, 7, 22, 34)  # 80 % of 30 min = 24 min
    assert clocks[ON_SITE].due_at == at(3, 7, 22, 40)
    assert clocks[RESOLVE].due_at == at(3, 8, 10, 10)
    assert clocks[RESOLVE].warn_at == at(3, 8, 7, 46)  # 80 % of 12 h = 9 h 36 min
    # ladder 0 / 30 / 120 minutes after the deadline, then every hour at the district level
    assert [(e.level, e.at) for e in clocks[SIGN].escalations] == [
        (Level.COMMUNITY, at(3, 7, 22, 40)),
        (Level.STREET, at(3, 7, 23, 10)),
        (Level.DISTRICT, at(3, 8, 0, 40)),
    ]
    assert [
        e.at for e in plan("C0102", "urgent", at(3, 7, 22, 10), escalations=5)[SIGN].escalations
    ][3:] == [at(3, 8, 1, 40), at(3, 8, 2, 40)]


def test_the_light_turns_yellow_at_the_warning_and_red_after_the_deadline():
    sign = plan("E0103", "normal", START)[SIGN]
    assert sign.light(at(2, 13, 17)) is Light.GREEN
    assert sign.light(at(2, 14, 8, 36)) is Light.YELLOW
    assert sign.light(at(2, 14, 9)) is Light.YELLOW  # done at the deadline is still on time
    assert sign.light(at(2, 14, 9, 1)) is Light.RED


# --- extensions -----------------------------------------------------------------------------------


def test_an_approved_extension_moves_only_the_resolution_deadline():
    clocks = plan("E0103", "normal", START, extensions=[Extension(2)])
    assert clocks[SIGN].due_at == at(2, 14, 9)  # unchanged
    resolve = clocks[RESOLVE]
    # 22.5 h + 2 × 7.5 h = 37.5 h: 24 h by Wed 25 Feb evening, Thu 26 → 31.5, Fri 27: 6 h → 16:00
    assert resolve.due_at == at(2, 27, 16)
    assert resolve.extension_days == 2 and resolve.allowance == timedelta(hours=37.5)
    # the warning is at 80 % of the extended allowance: 30 h → 24 h by Wed evening, Thu 26
    # Feb 6 h in: 3.5 h by 12:00, 2.5 h from 13:30 → 16:00
    assert resolve.warn_at == at(2, 26, 16)
    two_extensions = plan("E0103", "normal", START, extensions=[Extension(1), Extension(1)])
    assert two_extensions[RESOLVE].due_at == resolve.due_at


def test_an_extension_of_a_calendar_time_clock_is_in_days_of_24_hours():
    clocks = plan("C0102", "urgent", at(3, 7, 22, 10), extensions=[Extension(1)])
    assert clocks[RESOLVE].due_at == at(3, 9, 10, 10)  # 12 h + 24 h
    assert clocks[SIGN].due_at == at(3, 7, 22, 40)


@pytest.mark.parametrize("days", [0, -1, True])
def test_an_extension_must_be_whole_positive_days(days):
    with pytest.raises(Invalid, match="extension days"):
        Extension(days)


# --- pauses (挂账/缓办) ----------------------------------------------------------------------------


def test_a_closed_pause_moves_the_deadline_by_the_working_time_it_covers():
    # Paused Tue 24 Feb 09:00 → Wed 25 Feb 09:00: 3 + 4 = 7 h on Tuesday and 0.5 h on Wednesday
    # = 7.5 working hours, so the deadline moves from Wed 25 16:00 to Thu 26 Feb 16:00.
    pause = Pause(at(2, 24, 9), at(2, 25, 9), "等待供水公司停水检修")
    resolve = plan("E0103", "normal", START, pauses=[pause])[RESOLVE]
    assert resolve.due_at == at(2, 26, 16)
    # the warning (18 h) falls after the pause: 9.5 h before it, 8.5 h from Wed 09:00 →
    # 3 (to 12:00) + 4 (to 17:30) + 1.5 on Thu → 10:00
    assert resolve.warn_at == at(2, 26, 10)
    assert resolve.escalations[0].at == resolve.due_at


def test_an_open_pause_counts_until_now_and_says_so():
    pause = Pause(at(2, 24, 9), None, "等待产权单位确认")
    resolve = plan("E0103", "normal", START, pauses=[pause], now=at(2, 25, 9))[RESOLVE]
    assert resolve.paused and resolve.due_at == at(2, 26, 16)  # as if it ended now
    with pytest.raises(ValueError, match="now"):
        plan("E0103", "normal", START, pauses=[pause])


def test_pauses_outside_the_clock_or_in_non_working_time_change_nothing():
    unpaused = plan("E0103", "normal", START)[RESOLVE].due_at
    after = Pause(at(3, 2, 9), at(3, 3, 9), "结案后")
    spring = Pause(at(2, 16, 9), at(2, 20, 17), "春节期间")  # no working time inside
    assert plan("E0103", "normal", START, pauses=[after, spring])[RESOLVE].due_at == unpaused


def test_overlapping_pauses_are_counted_once():
    a = Pause(at(2, 24, 9), at(2, 24, 15), "一")
    b = Pause(at(2, 24, 11), at(2, 25, 9), "二")
    merged = plan("E0103", "normal", START, pauses=[b, a])[RESOLVE]
    assert merged.due_at == at(2, 26, 16)  # same as one pause 24 Feb 09:00 → 25 Feb 09:00


def test_a_pause_in_calendar_time_moves_a_calendar_clock_by_its_length():
    pause = Pause(at(3, 8, 2), at(3, 8, 5, 30), "夜间无法施工")  # 3.5 h
    resolve = plan("C0102", "urgent", at(3, 7, 22, 10), pauses=[pause])[RESOLVE]
    assert resolve.due_at == at(3, 8, 13, 40)  # 10:10 + 3.5 h


def test_a_pause_that_began_before_the_dispatch_starts_the_clock_when_it_ends():
    pause = Pause(at(2, 13, 15), at(2, 13, 17), "待核实地址")
    sign = plan("E0103", "normal", START, pauses=[pause])[SIGN]
    # from 17:00: 0.5 h on Friday, 1.5 h on the make-up Saturday → 10:00
    assert sign.due_at == at(2, 14, 10)


@pytest.mark.parametrize(
    ("start", "end", "reason", "field"),
    [
        (at(2, 24, 9), at(2, 24, 9), "原因", "end"),
        (at(2, 24, 9), at(2, 23, 9), "原因", "end"),
        (at(2, 24, 9), None, "  ", "reason"),
    ],
)
def test_bad_pauses_are_refused(start, end, reason, field):
    with pytest.raises(Invalid) as err:
        Pause(start, end, reason)
    assert err.value.message("zh").startswith(f"{field}：")


def test_run_clock_at_a_pause_boundary():
    # the allowance runs out exactly as a pause begins: the deadline is the pause's start
    pauses = [(at(3, 2, 10), at(3, 2, 11))]
    assert run_clock(CAL, at(3, 2, 9), timedelta(hours=1), pauses) == at(3, 2, 10)
    assert run_clock(CAL, at(3, 2, 9), timedelta(hours=1, minutes=1), pauses) == at(3, 2, 11, 1)


# --- pinning protects old cases --------------------------------------------------------------------


def test_a_later_policy_version_does_not_move_an_earlier_dispatched_case():
    v2_data = {
        **demo.VERSION_1,
        "version": 2,
        "effective_from": "2026-02-20T00:00:00+08:00",
        "rules": {"E01": {"normal": demo.normal(resolve="1 working_day")}},
    }
    v2 = version_from_data(v2_data)
    old = pin_policy([*VERSIONS, v2], "E0103", "normal", START)
    new = pin_policy([*VERSIONS, v2], "E0103", "normal", at(2, 24, 9))
    assert old.version == 1 and new.version == 2
    assert plan_clocks(old.policy, CAL, START)[RESOLVE].due_at == at(2, 25, 16)
    # 1 working day (7.5 h) from Tue 24 Feb 09:00: 3 h + 4 h on Tuesday, 0.5 h on Wednesday
    assert plan_clocks(new.policy, CAL, at(2, 24, 9))[RESOLVE].due_at == at(2, 25, 9)
