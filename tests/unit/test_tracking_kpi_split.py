"""Where a KPI period is answered from (issue 14): whole months and whole days (Beijing time)
from the kept sums, the part-days at its edges from the facts — together exactly the period,
nothing twice."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.tracking.domain.kpi import Period
from services.tracking.handlers.kpi import split_period

CN = ZoneInfo("Asia/Shanghai")


def _days(a: date, b: date) -> list[date]:
    return [a + timedelta(days=n) for n in range((b - a).days)]


def coverage(period: Period, today: date | None = None) -> tuple[dict[date, int], list]:
    """How often each day is counted by the sums (months and days, signed), and the
    part-days read from the facts."""
    cut = split_period(period, today)
    count: dict[date, int] = {}
    for a, b, sign in (*cut.months, *cut.days):
        for d in _days(a, b):
            count[d] = count.get(d, 0) + sign
    return {d: n for d, n in count.items() if n}, list(cut.edges)


def test_a_month_given_as_dates_is_one_month_of_sums():
    cut = split_period(Period(datetime(2026, 3, 1, tzinfo=CN), datetime(2026, 4, 1, tzinfo=CN)))
    assert cut.months == ((date(2026, 3, 1), date(2026, 4, 1), 1),)
    assert cut.days == () and cut.edges == ()


def test_half_a_year_from_mid_month_is_days_months_days():
    cut = split_period(Period(datetime(2026, 1, 25, tzinfo=CN), datetime(2026, 7, 10, tzinfo=CN)))
    assert cut.months == tuple((date(2026, m, 1), date(2026, m + 1, 1), 1) for m in range(2, 7))
    assert cut.days == (
        (date(2026, 1, 25), date(2026, 2, 1), 1),
        (date(2026, 7, 1), date(2026, 7, 10), 1),
    )
    assert cut.edges == ()


def test_most_of_a_month_is_the_month_less_its_other_days():
    cut = split_period(Period(datetime(2026, 1, 4, tzinfo=CN), datetime(2026, 3, 1, tzinfo=CN)))
    assert cut.months == (
        (date(2026, 1, 1), date(2026, 2, 1), 1),
        (date(2026, 2, 1), date(2026, 3, 1), 1),
    )
    assert cut.days == ((date(2026, 1, 1), date(2026, 1, 4), -1),)


def test_this_month_so_far_is_this_months_sum():
    today = date(2026, 12, 5)
    cut = split_period(
        Period(datetime(2026, 11, 20, tzinfo=CN), datetime(2026, 12, 6, tzinfo=CN)), today
    )
    assert (date(2026, 12, 1), date(2027, 1, 1), 1) in cut.months
    assert (date(2026, 12, 6), date(2027, 1, 1), -1) in cut.days  # nothing there yet


def test_a_period_inside_one_day_is_all_facts():
    p = Period(datetime(2026, 3, 3, 9, tzinfo=CN), datetime(2026, 3, 3, 17, tzinfo=CN))
    cut = split_period(p)
    assert cut.whole is None and cut.edges == ((p.start, p.end),)


def test_random_periods_are_covered_exactly_once():
    rnd = random.Random(14)
    zones = [CN, UTC, ZoneInfo("America/New_York")]
    for _ in range(2000):
        start = datetime(2025, 12, 1, tzinfo=UTC) + timedelta(
            minutes=rnd.randrange(0, 60 * 24 * 200)
        )
        start = start.astimezone(rnd.choice(zones))
        if rnd.random() < 0.3:  # often a Beijing midnight
            local = start.astimezone(CN)
            start = datetime(local.year, local.month, local.day, tzinfo=CN)
        end = start + timedelta(
            minutes=rnd.choice([1, 90, 60 * 24, 60 * 24 * 31]) * rnd.randint(1, 12)
        )
        today = rnd.choice([None, (start + (end - start) * rnd.random()).astimezone(CN).date()])
        counted, edges = coverage(Period(start, end), today)
        cut = split_period(Period(start, end), today)
        pieces = sorted([*edges, *([cut.whole] if cut.whole else [])])
        assert pieces[0][0] == start and pieces[-1][1] == end, (start, end, pieces)
        for (_, b), (c, _) in itertools.pairwise(pieces):
            assert b == c, (start, end, pieces)  # adjacent: no gap, no overlap
        if cut.whole:  # every whole day once, nothing else
            first, last = (t.astimezone(CN).date() for t in cut.whole)
            assert counted == dict.fromkeys(_days(first, last), 1), (start, end, today)
        else:
            assert counted == {}
