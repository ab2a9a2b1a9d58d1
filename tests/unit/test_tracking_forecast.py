"""The resolution forecast's rules (预计办结时间, 预计超期), pure: calendar time for easy sums."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.tracking.domain import forecast as f
from services.tracking.domain.timeline import CALENDAR_TIME
from shared.contract import ForecastBasis

T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def clock(allowance: timedelta = 3 * DAY, pauses=()) -> f.ResolveClock:
    return f.ResolveClock(CALENDAR_TIME, False, T0, allowance, T0 + allowance, tuple(pauses))


def days(*n: float) -> list[timedelta]:
    return [DAY * x for x in n]


def test_the_departments_history_gives_median_and_range():
    got = f.forecast(clock(), f.History(days(1, 2, 2, 2, 3)), T0)
    assert got.basis is ForecastBasis.HISTORY and got.sample_size == 5
    assert got.expected_at == T0 + 2 * DAY
    assert (got.earliest, got.latest) == (T0 + 1.8 * DAY, T0 + 2.2 * DAY)
    assert not got.breach_likely and got.breach_probability == 0


def test_thin_history_falls_back_to_the_category_then_to_the_deadline():
    thin = days(5, 5)
    category = f.forecast(clock(), f.History(thin, days(1, 1, 1, 1, 1, 5)), T0)
    assert category.basis is ForecastBasis.CATEGORY and category.expected_at == T0 + DAY
    deadline = f.forecast(clock(), f.History(thin, thin), T0)
    assert deadline.basis is ForecastBasis.DEADLINE and deadline.expected_at == T0 + 3 * DAY
    assert deadline.earliest == T0 + 1.5 * DAY and not deadline.breach_likely


def test_a_slow_history_predicts_a_breach_with_its_reason():
    got = f.forecast(clock(), f.History(days(4, 4, 4.5, 5, 6)), T0)
    assert got.breach_likely and got.breach_probability == 1.0
    assert got.reason_zh == (
        "按该部门近30天同类案件办理时长（中位数4.5天），预计超期约2天（超期可能性100%）"
    )
    assert got.reason_en is not None and "median 4.5 days" in got.reason_en
    # once past the deadline it is late, not predicted
    late = f.forecast(clock(), f.History(days(4, 4, 4.5, 5, 6)), T0 + 3.5 * DAY)
    assert not late.breach_likely and late.expected_at == T0 + 4.5 * DAY


def test_never_in_the_past_conditional_on_not_yet_resolved():
    history = f.History(days(1, 1, 1, 1, 1, 2))
    now = T0 + 1.5 * DAY  # outlived nearly all of its history: the deadline rule
    got = f.forecast(clock(), history, now)
    assert got.basis is ForecastBasis.DEADLINE and got.expected_at == T0 + 3 * DAY
    overdue = T0 + 4 * DAY
    got = f.forecast(clock(), history, overdue)
    assert got.expected_at == overdue + 0.6 * DAY and got.earliest == overdue
    assert got.latest == overdue + 1.5 * DAY


def test_pauses_are_not_counted():
    paused = clock(pauses=[(T0 + DAY, T0 + 2 * DAY)])
    got = f.forecast(paused, f.History(days(2, 2, 2, 2, 2)), T0 + 2 * DAY)
    assert got.expected_at == T0 + 3 * DAY  # two days of work, one standing still
    assert paused.used(T0 + 2 * DAY) == DAY
    assert f.pause_spans([(T0, None), (T0 + DAY, T0 + 3 * DAY)], T0 + 2 * DAY) == (
        (T0, T0 + 3 * DAY),
    )


def test_the_case_is_expected_when_its_last_assignment_is():
    a = f.forecast(clock(), f.History(days(1, 1, 1, 1, 1)), T0)
    b = f.forecast(clock(), f.History(days(4, 4, 4, 4, 4)), T0)
    done = f.resolved(T0 + DAY, T0 + 3 * DAY)
    assert f.case_forecast([a, b, done]) == b
    assert f.case_forecast([done]) == done and f.case_forecast([]) is None
    assert f.quantile(days(1, 3), 0.5) == 2 * DAY


def test_short_durations_read_in_minutes_and_one_is_singular():
    """A one-minute policy's median of 66 s reads 1分钟, not 1小时 (as it did)."""
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    got = f.forecast(
        clock(minute), f.History([timedelta(seconds=s) for s in (60, 66, 66, 70, 80)]), T0
    )
    assert got.reason_zh is not None and "中位数1分钟" in got.reason_zh
    assert got.reason_en is not None and "median 1 minute)" in got.reason_en
    amount = f._amount
    assert amount(45 * minute, clock(), precise=True) == ("45分钟", "45 minutes")
    assert amount(59 * minute + 40 * timedelta(seconds=1), clock(), precise=True) == (
        "1小时",
        "1 hour",
    )
    assert amount(5 * hour, clock(), precise=True) == ("5小时", "5 hours")
    assert amount(DAY, clock(), precise=False) == ("1天", "1 day")
    assert amount(2 * DAY, clock(), precise=True) == ("2.0天", "2.0 days")
