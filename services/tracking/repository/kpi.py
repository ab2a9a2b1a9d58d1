"""SQL for the KPIs (考核): the facts of every assignment dispatched in a period, and the
red/black list's thresholds (newest revision in use)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from services.tracking.domain.kpi import AssignmentFacts
from shared.db import Conn

# A clock that never started (no policy in force, or its assignment's later events came first)
# or stands still in a pause sets no deadline: nothing is late against it.
NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)


class DepartmentFacts(NamedTuple):
    facts: AssignmentFacts
    department_name: str | None


# One row per assignment dispatched in [$1, $2), as of $3: its deadlines as they stand (an
# approved extension or a pause that ended moved them; a clock paused now (挂账/缓办) has none
# while it stands still), its approved extensions, whether its result was
# sent back (a later 返工 naming its department, or naming none, before the department resolved
# the case again), whether it ended otherwise (转办; its case closed or merged) and the case's
# latest rating.
_SELECT = """
SELECT a.assignment_id, a.department_id, a.department_name, c.area_path, c.category,
       a.dispatched_at, a.signed_for_at, a.resolved_at, a.ended_by = 'case.rejected'
       AND a.ended_at <= $3 AS rejected,
       CASE WHEN sf.state = 'paused' THEN NULL ELSE sf.due_at END AS sign_for_due,
       CASE WHEN rs.state = 'paused' THEN NULL ELSE rs.due_at END AS resolve_due,
       (SELECT count(*) FROM extensions x
        WHERE x.assignment_id = a.assignment_id AND x.decided_at <= $3) AS extensions,
       (a.ended_by = 'case.transferred' AND a.ended_at <= $3) OR EXISTS (
           SELECT 1 FROM clocks k WHERE k.assignment_id = a.assignment_id
           AND k.stopped_by IN ('case.closed', 'case.merged') AND k.stopped_at <= $3) AS ended,
       a.resolved_at IS NOT NULL AND EXISTS (
           SELECT 1 FROM case_events e
           WHERE e.case_id = a.case_id AND e.type = 'case.rework_requested'
             AND e.occurred_at > a.resolved_at AND e.occurred_at <= $3
             AND (jsonb_array_length(coalesce(e.payload->'departments', '[]')) = 0
                  OR e.payload->'departments' ? a.department_id)
             AND NOT EXISTS (
                 SELECT 1 FROM assignments b
                 WHERE b.case_id = a.case_id AND b.department_id = a.department_id
                   AND b.resolved_at > a.resolved_at AND b.resolved_at < e.occurred_at)
       ) AS reworked,
       (SELECT (e.payload->>'score')::int FROM case_events e
        WHERE e.case_id = a.case_id AND e.type = 'case.rated' AND e.occurred_at <= $3
        ORDER BY e.occurred_at DESC, e.seq DESC LIMIT 1) AS score
"""
_JOINS = """
JOIN cases c ON c.case_id = a.case_id
LEFT JOIN clocks sf ON sf.assignment_id = a.assignment_id AND sf.clock = 'sign_for'
LEFT JOIN clocks rs ON rs.assignment_id = a.assignment_id AND rs.clock = 'resolve'
"""
_SCOPE = """
  AND ($4::text[] IS NULL OR EXISTS (
        SELECT 1 FROM unnest($4::text[]) AS root
        WHERE c.area_path = root OR starts_with(c.area_path, root || '/')))
  AND ($5::text IS NULL OR a.department_id = $5)
"""
_FACTS = (
    _SELECT
    + "FROM assignments a"
    + _JOINS
    + """
WHERE a.dispatched_at >= $1 AND a.dispatched_at < $2 AND a.dispatched_at <= $3
"""
    + _SCOPE
)
# The same facts of the assignments that can still be overdue (kpi_assignments.open, kept
# by kpi_refresh): what "overdue now" needs beyond the sums.
_OPEN_FACTS = (
    _SELECT
    + """FROM kpi_assignments o
JOIN assignments a ON a.assignment_id = o.assignment_id"""
    + _JOINS
    + """
WHERE o.open AND o.dispatched_at >= $1 AND o.dispatched_at < $2 AND a.dispatched_at <= $3
"""
    + _SCOPE
)


def _facts(r: asyncpg.Record) -> DepartmentFacts:
    """The case's rating counts for the assignments whose result it rates: resolved ones whose
    result was not sent back (a reworked result was judged by the community already)."""
    rated = r["score"] if r["resolved_at"] is not None and not r["reworked"] else None
    return DepartmentFacts(
        AssignmentFacts(
            assignment_id=str(r["assignment_id"]),
            department_id=r["department_id"],
            area_path=r["area_path"],
            category=r["category"],
            dispatched_at=r["dispatched_at"],
            sign_for_due=r["sign_for_due"] or NO_DEADLINE,
            resolve_due=r["resolve_due"] or NO_DEADLINE,
            signed_for_at=r["signed_for_at"],
            resolved_at=r["resolved_at"],
            reworked=r["reworked"],
            rejected=bool(r["rejected"]),
            ended=bool(r["ended"]),
            extensions=r["extensions"],
            rating=rated,
        ),
        r["department_name"],
    )


async def assignment_facts(
    conn: Conn,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    area_roots: tuple[str, ...] | None,
    department_id: str | None,
) -> list[DepartmentFacts]:
    """Every assignment dispatched in ``[start, end)`` (and by ``now``) on a case under any of
    ``area_roots`` (None: anywhere), of ``department_id`` if given."""
    rows = await conn.fetch(
        _FACTS, start, end, now, None if area_roots is None else list(area_roots), department_id
    )
    return [_facts(r) for r in rows]


async def open_assignment_facts(
    conn: Conn,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    area_roots: tuple[str, ...] | None,
    department_id: str | None,
) -> list[DepartmentFacts]:
    """Like ``assignment_facts``, only of the assignments that may still be overdue (not
    rejected nor ended otherwise, a step not done): the only ones "overdue now" can count."""
    rows = await conn.fetch(
        _OPEN_FACTS,
        start,
        end,
        now,
        None if area_roots is None else list(area_roots),
        department_id,
    )
    return [_facts(r) for r in rows]


# --- the sums (migration 0008) ----------------------------------------------------------------

SUMS = (
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
)

_SUM_COLUMNS = ", ".join(f"sum({c} * sign)::bigint AS {c}" for c in SUMS)
_COLUMNS = f"s.department_id, s.area_path, s.department_name, {', '.join(SUMS)}, s.handling"
_ROLLUP_SCOPE = """
  AND ($7::text[] IS NULL OR EXISTS (
        SELECT 1 FROM unnest($7::text[]) AS root
        WHERE s.area_path = root OR starts_with(s.area_path, root || '/')))
  AND ($8::text IS NULL OR s.department_id = $8)
"""
# The months [$1[i], $2[i]) and the days [$4[i], $5[i]), each added ($3[i], $6[i] = 1) or taken
# away (-1), summed per department and grid: the folded sums and the deltas not folded yet.
_ROLLUP = f"""
WITH m AS (SELECT * FROM unnest($1::date[], $2::date[], $3::int[]) AS r (f, t, sign)),
     d AS (SELECT * FROM unnest($4::date[], $5::date[], $6::int[]) AS r (f, t, sign))
SELECT department_id, max(department_name) AS department_name, area_path, {_SUM_COLUMNS},
       sum(handling * sign) AS handling
FROM (SELECT {_COLUMNS}, m.sign FROM m JOIN kpi_monthly s ON s.month >= m.f AND s.month < m.t
      WHERE true {_ROLLUP_SCOPE}
      UNION ALL
      SELECT {_COLUMNS}, d.sign FROM d JOIN kpi_daily s ON s.day >= d.f AND s.day < d.t
      WHERE true {_ROLLUP_SCOPE}
      UNION ALL
      SELECT {_COLUMNS}, r.sign FROM (SELECT * FROM m UNION ALL SELECT * FROM d) r
      JOIN kpi_deltas s ON s.day >= r.f AND s.day < r.t
      WHERE true {_ROLLUP_SCOPE}) s
GROUP BY department_id, area_path
HAVING sum(received * sign) > 0
"""

Range = tuple[date, date, int]


async def summed(
    conn: Conn,
    *,
    months: tuple[Range, ...],
    days: tuple[Range, ...],
    area_roots: tuple[str, ...] | None,
    department_id: str | None,
) -> list[asyncpg.Record]:
    """The kept sums per (department, grid) of the ``months`` (firsts of months) and ``days``
    ranges ``(from, to, sign)``: ``[from, to)`` added (sign 1) or taken away (-1)."""
    return await conn.fetch(
        _ROLLUP,
        *_columns(months),
        *_columns(days),
        None if area_roots is None else list(area_roots),
        department_id,
    )


def _columns(ranges: tuple[Range, ...]) -> list[list[object]]:
    """[(from, to, sign), ...] -> [[from, ...], [to, ...], [sign, ...]]"""
    return [list(col) for col in zip(*ranges, strict=True)] if ranges else [[], [], []]


async def refresh(conn: Conn, case_ids: list[UUID]) -> None:
    """Bring the KPI sums up to date with the cases' facts (in the caller's transaction,
    after it changed them); each case once, in one order (the same locks in the same order
    in every transaction)."""
    await conn.execute("SELECT kpi_refresh($1::uuid[])", sorted(set(case_ids)))


async def fold(conn: Conn) -> None:
    """Fold the deltas committed so far into the sums now (the event handlers do it every
    128 deltas or so)."""
    await conn.execute("SELECT kpi_fold()")


async def rebuild(conn: Conn) -> None:
    """Every KPI sum afresh from the facts."""
    await conn.execute("SELECT kpi_rebuild()")


async def area_known(conn: Conn, area: str) -> bool:
    """Whether any case tracking knows lies in the subtree ``area``."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM cases WHERE area_path = $1"
            " OR starts_with(area_path, $1 || '/'))",
            area,
        )
    )


# --- the red/black list's thresholds -----------------------------------------------------------


async def current_thresholds(conn: Conn) -> asyncpg.Record | None:
    """(revision, data, created_at, created_by) of the thresholds in use, or None."""
    return await conn.fetchrow(
        "SELECT revision, data, created_at, created_by FROM kpi_thresholds"
        " ORDER BY revision DESC LIMIT 1"
    )


async def lock_thresholds(conn: Conn) -> None:
    """Order concurrent first-time seeds (in the caller's transaction)."""
    await conn.execute("LOCK TABLE kpi_thresholds IN EXCLUSIVE MODE")


async def add_thresholds(conn: Conn, data: dict[str, Any], by: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO kpi_thresholds (data, created_by) VALUES ($1, $2)"
        " RETURNING revision, data, created_at, created_by",
        data,
        by,
    )
    assert row is not None  # RETURNING the row just written
    return row
