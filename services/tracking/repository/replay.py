"""Which of tracking's tables are a projection of the event log (``python -m
services.tracking replay``, shared/replay): the case read model, its timeline of intake's and
dispatch's events, the assignments, clocks, extensions and pauses, and the KPI sums — all
written by the timeline consumer from the events it hears, the event's own ``occurred_at``
being the only time they record.

Known limit: a clock's deadlines are computed with the working calendar in use when its event
was handled (the newest revision then); the replay uses the newest revision now. A calendar
replaced since shows as differing deadlines of the clocks started before.
"""

from __future__ import annotations

from shared.replay import Projection, Table

_SUMS = (
    "received",
    "signed_for_on_time",
    "resolved",
    "resolved_on_time",
    "reworked",
    "rejections",
    "extensions",
    "rated",
    "satisfied",
    "score_total",
    "handling",
)


def _sums(table: str, period: str) -> str:
    """A period's KPI sums as folded plus the deltas not yet folded (folding happens now and
    then, at other moments in live and in a replay); rows summing to nothing left out."""
    sums = ", ".join(f"sum({c}) AS {c}" for c in _SUMS)
    cols = ", ".join(_SUMS)
    bucket = "day" if period == "day" else "date_trunc('month', day)::date"
    nonzero = " OR ".join(
        f"sum({c}) <> {'interval ' + repr('0') if c == 'handling' else '0'}" for c in _SUMS
    )
    return (
        f"SELECT {period}, department_id, area_path, {sums} FROM ("
        f" SELECT {period}, department_id, area_path, {cols} FROM {table}"
        f" UNION ALL SELECT {bucket} AS {period}, department_id, area_path, {cols}"
        f" FROM kpi_deltas) s GROUP BY {period}, department_id, area_path HAVING {nonzero}"
    )


PROJECTION = Projection(
    tables=(
        Table("cases", key=("case_id",)),
        # tracking's own alerts and urgings are written there by the scheduler and by HTTP
        Table(
            "case_events",
            key=("event_id",),
            ignore=("seq", "recorded_at"),
            where="producer IN ('intake', 'dispatch')",
        ),
        Table("assignments", key=("assignment_id",), ignore=("urge_count", "last_urged_at")),
        Table("clocks", key=("assignment_id", "clock")),
        Table("extensions", key=("request_id",)),
        Table("pauses", key=("request_id",)),
        Table("kpi_assignments", key=("assignment_id",)),
        Table(
            "kpi_daily", key=("day", "department_id", "area_path"), query=_sums("kpi_daily", "day")
        ),
        Table(
            "kpi_monthly",
            key=("month", "department_id", "area_path"),
            query=_sums("kpi_monthly", "month"),
        ),
    ),
    # written by HTTP commands (SLA policies, the working calendar, the red/black list's
    # thresholds), read by the handlers: copied from live first
    reference=("sla_calendars", "sla_policy_versions", "kpi_thresholds"),
    not_compared=(
        (
            "timers",
            "the scheduler's working state: which fired or were found moot, and the escalation "
            "repetitions it scheduled, depend on when it ran; no scheduler runs in a replay",
        ),
        ("board_feed", "a week's feed of changes for the live stream, stamped when written"),
        (
            "case_events (producer tracking)",
            "alerts written by the scheduler and urgings (督办) made over HTTP, not heard "
            "from the log",
        ),
        ("assignments.urge_count, last_urged_at", "urging (督办) is an HTTP command"),
        ("urge_requests, inbox, outbox", "idempotency and delivery bookkeeping"),
    ),
)
