"""The SLA backtest's pure part (domain.backtest), with hand-computed expectations.

Three assignments, calendar-time clocks (plain arithmetic), warning at half the allowance,
ladder: community at the deadline, street 2 h after it. Dispatch at 09:00 (Beijing):
A (cg): signed for +45 min, resolved +8 h; B (cg): signed +90 min, resolved +12 h;
C (zj, a week later): signed +20 min, never resolved (measured at ``NOW``, days later).

Tight policy (sign-for 30 min, resolve 6 h): sign-for warned at +15 min: A, B, C; late at
+30 min: A, B; community (+30 min): A, B; street (+2 h 30): none. Resolve warned at +3 h: all
three; late at +6 h: all three; community (+6 h): all; street (+8 h): B and C — A resolved at
+8 h exactly, which is not after it.
Loose policy (sign-for 2 h, resolve 24 h): sign-for warned at +1 h: B only; late: none.
Resolve warned at +12 h: C only (B resolved at +12 h exactly); late, community, street: C."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.tracking.domain.backtest import (
    History,
    LiveClock,
    backtest,
    check_period,
    stops,
)
from services.tracking.domain.calendar_data import calendar_from_data
from services.tracking.domain.deadlines import Extension
from services.tracking.domain.policy_data import version_from_data
from shared.contract.values import Clock, Level
from shared.errors import Invalid

CN = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, tzinfo=CN)  # a Monday
NOW = T0 + timedelta(days=10)
CALENDAR = calendar_from_data(
    {
        "timezone": "Asia/Shanghai",
        "hours": {d: [["08:30", "12:00"], ["13:30", "17:30"]] for d in ("mon", "tue", "wed")},
    }
)


def version(sign_for: str, resolve: str) -> object:
    policy = {
        "sign_for": sign_for,
        "resolve": resolve,
        "warning_ratio": 0.5,
        "ladder": {"steps": [["community", "0 minutes"], ["street", "120 minutes"]]},
    }
    return version_from_data(
        {
            "version": 9,
            "effective_from": "2026-01-01T00:00:00+08:00",
            "defaults": {p: policy for p in ("urgent", "normal", "minor")},
        }
    )


TIGHT = version("30 minutes", "6 hours")
LOOSE = version("120 minutes", "24 hours")


def history(name, dept, start, signed, resolved, **kw) -> History:
    return History(
        assignment_id=name,
        department_id=dept,
        department_name=None,
        category="E0101",
        priority="normal",
        dispatched_at=start,
        stops=stops(
            signed_for=start + signed,
            progressed=None,
            resolved=None if resolved is None else start + resolved,
            ended=None,
        ),
        **kw,
    )


H, M = timedelta(hours=1), timedelta(minutes=1)
A = history(
    "A",
    "cg",
    T0,
    45 * M,
    8 * H,
    live={Clock.SIGN_FOR: LiveClock(T0 + 30 * M, T0 + 60 * M, T0 + 45 * M)},
)
B = history(
    "B",
    "cg",
    T0,
    90 * M,
    12 * H,
    live={
        Clock.SIGN_FOR: LiveClock(
            T0 + 30 * M, T0 + 60 * M, T0 + 90 * M, escalated=(Level.COMMUNITY,)
        )
    },
)
C = history("C", "zj", T0 + timedelta(days=7), 20 * M, None)


def figures(tally) -> tuple:
    return (
        tally.clocks,
        tally.warned,
        tally.late,
        tally.escalated[Level.COMMUNITY],
        tally.escalated[Level.STREET],
    )


def test_a_tighter_policy_makes_more_late_and_warned():
    result = backtest([A, B, C], TIGHT, CALENDAR, NOW)
    assert figures(result.by_clock[Clock.SIGN_FOR].backtest) == (3, 3, 2, 2, 0)
    assert figures(result.by_clock[Clock.RESOLVE].backtest) == (3, 3, 3, 3, 2)
    assert Clock.ON_SITE not in result.by_clock  # no policy has it, no live clock had it
    assert result.assignments == 3


def test_a_looser_policy_makes_fewer():
    result = backtest([A, B, C], LOOSE, CALENDAR, NOW)
    assert figures(result.by_clock[Clock.SIGN_FOR].backtest) == (3, 1, 0, 0, 0)
    assert figures(result.by_clock[Clock.RESOLVE].backtest) == (3, 1, 1, 1, 1)


def test_the_live_side_is_what_the_pinned_policies_produced():
    result = backtest([A, B, C], LOOSE, CALENDAR, NOW)
    # A: due +60 min, stopped +45: warned (after +30), not late; B: late, escalated once
    assert figures(result.by_clock[Clock.SIGN_FOR].live) == (2, 2, 1, 1, 0)
    assert figures(result.by_clock[Clock.RESOLVE].live) == (0, 0, 0, 0, 0)


def test_per_department_and_per_week():
    result = backtest([A, B, C], TIGHT, CALENDAR, NOW)
    cg, zj = result.by_department["cg"], result.by_department["zj"]
    assert (cg.assignments, cg.backtest.late, cg.backtest.warned) == (2, 4, 4)
    assert (zj.assignments, zj.backtest.late, zj.backtest.warned) == (1, 1, 2)
    weeks = sorted(result.by_week)
    assert weeks == [date(2026, 3, 2), date(2026, 3, 9)]
    assert [result.by_week[w].assignments for w in weeks] == [2, 1]
    assert [result.by_week[w].backtest.late for w in weeks] == [4, 1]


def test_an_approved_extension_moves_the_resolution_deadline_as_live():
    extended = history("B", "cg", T0, 90 * M, 12 * H, extensions=(Extension(1),))
    result = backtest([extended], TIGHT, CALENDAR, NOW)
    # 6 h + 1 day × 24 h (calendar time): due +30 h, warned at +15 h: B resolved at +12 h
    assert figures(result.by_clock[Clock.RESOLVE].backtest) == (1, 0, 0, 0, 0)


def test_stops_follow_what_stops_each_clock():
    s = stops(signed_for=T0 + H, progressed=T0 + 2 * H, resolved=T0 + 30 * M, ended=None)
    assert s == {
        Clock.SIGN_FOR: T0 + 30 * M,
        Clock.ON_SITE: T0 + 30 * M,
        Clock.RESOLVE: T0 + 30 * M,
    }
    s = stops(signed_for=None, progressed=None, resolved=None, ended=T0 + H)
    assert set(s.values()) == {T0 + H}
    assert set(stops(signed_for=None, progressed=None, resolved=None, ended=None).values()) == {
        None
    }


@pytest.mark.parametrize(
    ("start", "end"),
    [(date(2026, 3, 2), date(2026, 3, 1)), (date(2025, 1, 1), date(2026, 3, 1))],
)
def test_a_bad_period_is_refused_in_both_languages(start, end):
    with pytest.raises(Invalid) as caught:
        check_period(start, end)
    assert caught.value.zh and caught.value.en and caught.value.status_code == 422
