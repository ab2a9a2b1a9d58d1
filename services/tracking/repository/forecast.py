"""SQL for the resolution forecasts (预计办结时间): the case's assignments with their resolution
clock, the history a forecast rests on, the forecasts kept and the sweep's due cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.tracking.domain.forecast import Forecast
from shared.db import Conn


@dataclass(frozen=True)
class OpenAssignment:
    """An assignment of the case not rejected or transferred away, with its resolution clock
    (None: it has none) and its pauses (start, end or None while it runs)."""

    assignment_id: UUID
    department_id: str
    state: str
    dispatched_at: datetime | None
    resolved_at: datetime | None
    policy: dict[str, Any] | None
    clock_state: str | None
    due_at: datetime | None
    extension_days: int
    pauses: list[tuple[datetime, datetime | None]]


async def case_assignments(conn: Conn, case_id: UUID) -> list[OpenAssignment]:
    rows = await conn.fetch(
        "SELECT a.assignment_id, a.department_id, a.state, a.dispatched_at, a.resolved_at,"
        " a.policy, k.state AS clock_state, k.due_at, coalesce(k.extension_days, 0)"
        " AS extension_days,"
        " coalesce((SELECT array_agg(array[p.started_at, p.ended_at] ORDER BY p.started_at)"
        "   FROM pauses p WHERE p.assignment_id = a.assignment_id"
        "   AND p.started_at IS NOT NULL), '{}') AS pauses"
        " FROM assignments a"
        " LEFT JOIN clocks k ON k.assignment_id = a.assignment_id AND k.clock = 'resolve'"
        " WHERE a.case_id = $1 AND a.ended_at IS NULL ORDER BY a.assignment_id",
        case_id,
    )
    return [
        OpenAssignment(**{**dict(r), "pauses": [(p[0], p[1]) for p in r["pauses"]]}) for r in rows
    ]


@dataclass(frozen=True)
class Resolved:
    """One resolved assignment of the history: whose, from when to when, its pauses."""

    own: bool
    dispatched_at: datetime
    resolved_at: datetime
    pauses: list[tuple[datetime, datetime | None]]


async def history(
    conn: Conn, department_id: str, category: str, since: datetime, until: datetime, limit: int
) -> list[Resolved]:
    """The category's resolved assignments (``own``: the department's) resolved in
    [since, until], newest first."""
    rows = await conn.fetch(
        "SELECT a.department_id = $1 AS own, a.dispatched_at, a.resolved_at,"
        " coalesce((SELECT array_agg(array[p.started_at, p.ended_at] ORDER BY p.started_at)"
        "   FROM pauses p WHERE p.assignment_id = a.assignment_id"
        "   AND p.started_at IS NOT NULL), '{}') AS pauses"
        " FROM assignments a JOIN cases c ON c.case_id = a.case_id"
        " WHERE a.state = 'resolved' AND a.ended_at IS NULL AND a.dispatched_at IS NOT NULL"
        "   AND a.resolved_at >= $3 AND a.resolved_at <= $4 AND c.category = $2"
        "   AND a.resolved_at > a.dispatched_at"
        " ORDER BY a.resolved_at DESC LIMIT $5",
        department_id,
        category,
        since,
        until,
        limit,
    )
    return [
        Resolved(
            r["own"], r["dispatched_at"], r["resolved_at"], [(p[0], p[1]) for p in r["pauses"]]
        )
        for r in rows
    ]


def _values(f: Forecast) -> list[object]:
    return [
        f.expected_at,
        f.earliest,
        f.latest,
        f.basis.value,
        f.due_at,
        f.sample_size,
        f.breach_probability,
        f.breach_likely,
        f.reason_zh,
        f.reason_en,
    ]


async def keep(conn: Conn, case_id: UUID, forecasts: dict[UUID, Forecast], at: datetime) -> None:
    """The case's assignment forecasts now: these, and no other."""
    await conn.execute(
        "DELETE FROM forecasts WHERE case_id = $1 AND NOT assignment_id = ANY($2::uuid[])",
        case_id,
        list(forecasts),
    )
    await conn.executemany(
        "INSERT INTO forecasts (assignment_id, case_id, expected_at, earliest, latest, basis,"
        " due_at, sample_size, breach_probability, breach_likely, reason_zh, reason_en,"
        " median_seconds, computed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        " ON CONFLICT (assignment_id) DO UPDATE SET expected_at = EXCLUDED.expected_at,"
        " earliest = EXCLUDED.earliest, latest = EXCLUDED.latest, basis = EXCLUDED.basis,"
        " due_at = EXCLUDED.due_at, sample_size = EXCLUDED.sample_size,"
        " breach_probability = EXCLUDED.breach_probability,"
        " breach_likely = EXCLUDED.breach_likely, reason_zh = EXCLUDED.reason_zh,"
        " reason_en = EXCLUDED.reason_en, median_seconds = EXCLUDED.median_seconds,"
        " computed_at = EXCLUDED.computed_at",
        [
            [
                aid,
                case_id,
                *_values(f),
                None if f.median is None else f.median.total_seconds(),
                at,
            ]
            for aid, f in forecasts.items()
        ],
    )


_CASE_COLUMNS = (
    "expected_at, earliest, latest, basis, due_at, sample_size, breach_probability,"
    " breach_likely, reason_zh, reason_en"
)


async def case_forecast(conn: Conn, case_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_CASE_COLUMNS}, computed_at FROM case_forecasts WHERE case_id = $1"
        + (" FOR UPDATE" if lock else ""),
        case_id,
    )


async def keep_case(conn: Conn, case_id: UUID, f: Forecast | None, at: datetime) -> bool:
    """Record the case's forecast; False when it is the one recorded already (or an older
    computation than the one recorded), or there is none and never was."""
    if f is None and await case_forecast(conn, case_id) is None:
        return False  # nothing forecast before, nothing to forecast now: nothing to say
    values: list[object] = [None] * 7 + [False, None, None] if f is None else _values(f)
    values[5] = values[5] or 0
    return bool(
        await conn.fetchval(
            f"INSERT INTO case_forecasts (case_id, {_CASE_COLUMNS}, computed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT (case_id) DO UPDATE SET expected_at = EXCLUDED.expected_at,"
            " earliest = EXCLUDED.earliest, latest = EXCLUDED.latest, basis = EXCLUDED.basis,"
            " due_at = EXCLUDED.due_at, sample_size = EXCLUDED.sample_size,"
            " breach_probability = EXCLUDED.breach_probability,"
            " breach_likely = EXCLUDED.breach_likely, reason_zh = EXCLUDED.reason_zh,"
            " reason_en = EXCLUDED.reason_en, computed_at = EXCLUDED.computed_at"
            " WHERE case_forecasts.computed_at <= EXCLUDED.computed_at"
            " AND (case_forecasts.expected_at, case_forecasts.earliest, case_forecasts.latest,"
            "  case_forecasts.basis, case_forecasts.due_at, case_forecasts.breach_likely,"
            "  case_forecasts.reason_zh)"
            " IS DISTINCT FROM (EXCLUDED.expected_at, EXCLUDED.earliest, EXCLUDED.latest,"
            "  EXCLUDED.basis, EXCLUDED.due_at, EXCLUDED.breach_likely, EXCLUDED.reason_zh)"
            " RETURNING true",
            case_id,
            *values,
            at,
        )
    )


async def stale_cases(conn: Conn, now: datetime, limit: int) -> list[UUID]:
    """Open cases whose expected resolution has come and gone, locked for this sweep."""
    rows = await conn.fetch(
        "SELECT f.case_id FROM case_forecasts f JOIN cases c ON c.case_id = f.case_id"
        " WHERE f.basis IS NOT NULL AND f.basis <> 'resolved' AND f.expected_at <= $1"
        "   AND c.status <> 'closed'"
        " ORDER BY f.expected_at LIMIT $2 FOR UPDATE OF f SKIP LOCKED",
        now,
        limit,
    )
    return [r["case_id"] for r in rows]
