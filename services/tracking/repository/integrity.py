"""SQL for the 督办 integrity checks (``domain.integrity``, ``domain.churn``): a period's
resolutions and what sent them back, hand-offs, sign-fors with their clocks, and ratings —
all from tracking's own tables, on cases under the caller's roots."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.tracking.domain.churn import Posting
from services.tracking.domain.integrity import Rating, Resolved, SentBack
from services.tracking.repository.grid_work import under
from shared.db import Conn

Roots = tuple[str, ...] | None


def _roots(roots: Roots) -> list[str] | None:
    return None if roots is None else list(roots)


async def resolutions(
    conn: Conn, *, start: datetime, end: datetime, now: datetime, roots: Roots
) -> list[Resolved]:
    rows = await conn.fetch(
        "SELECT a.case_id, c.case_no, a.department_id, a.resolved_at"
        " FROM assignments a JOIN cases c ON c.case_id = a.case_id"
        " WHERE a.resolved_at >= $1 AND a.resolved_at < $2 AND a.resolved_at <= $3 AND " + under(4),
        start,
        end,
        now,
        _roots(roots),
    )
    return [
        Resolved(str(r["case_id"]), r["case_no"], r["department_id"], r["resolved_at"])
        for r in rows
    ]


async def sent_back(conn: Conn, case_ids: list[str], *, now: datetime) -> list[SentBack]:
    """The rework requests (返工) and reopenings (重开) of those cases, by ``now``."""
    rows = await conn.fetch(
        "SELECT case_id, type, occurred_at, payload->'departments' AS departments,"
        " payload->>'reason' AS reason FROM case_events"
        " WHERE case_id = ANY($1::uuid[]) AND occurred_at <= $2"
        " AND type IN ('case.rework_requested', 'case.reopened')",
        case_ids,
        now,
    )
    return [
        SentBack(
            str(r["case_id"]),
            r["type"],
            r["occurred_at"],
            tuple(r["departments"] or ()),
            r["reason"],
        )
        for r in rows
    ]


async def postings(
    conn: Conn, *, start: datetime, end: datetime, now: datetime, roots: Roots
) -> list[Posting]:
    """Every assignment of the cases handed on (退单/转办) in the period."""
    rows = await conn.fetch(
        "WITH moved AS (SELECT DISTINCT a.case_id FROM assignments a"
        " JOIN cases c ON c.case_id = a.case_id"
        " WHERE a.ended_by IN ('case.rejected', 'case.transferred')"
        " AND a.ended_at >= $1 AND a.ended_at < $2 AND a.ended_at <= $3 AND "
        + under(4)
        + ") SELECT a.case_id, c.case_no, a.department_id, a.dispatched_at, a.ended_by,"
        " a.ended_at FROM assignments a JOIN cases c ON c.case_id = a.case_id"
        " WHERE a.case_id IN (SELECT case_id FROM moved) AND a.dispatched_at IS NOT NULL",
        start,
        end,
        now,
        _roots(roots),
    )
    return [
        Posting(
            str(r["case_id"]),
            r["case_no"],
            r["department_id"],
            r["dispatched_at"],
            r["ended_by"],
            r["ended_at"],
        )
        for r in rows
    ]


async def sign_fors(
    conn: Conn, *, start: datetime, end: datetime, now: datetime, roots: Roots
) -> list[asyncpg.Record]:
    """The assignments dispatched in the period and signed for by ``now``, with their
    sign-for and resolution clocks, pinned policy and first progress note (进展) after it."""
    return await conn.fetch(
        "SELECT a.case_id, c.case_no, a.department_id, a.dispatched_at, a.signed_for_at,"
        " a.resolved_at, a.policy, sf.started_at AS sf_start, sf.due_at AS sf_due,"
        " sf.state AS sf_state, rs.started_at AS rs_start, rs.due_at AS rs_due,"
        " rs.state AS rs_state,"
        " (SELECT min(e.occurred_at) FROM case_events e WHERE e.case_id = a.case_id"
        "  AND e.type = 'case.progressed' AND e.payload->>'assignment_id' = a.assignment_id::text"
        "  AND e.occurred_at >= a.signed_for_at AND e.occurred_at <= $3) AS progressed_at"
        " FROM assignments a JOIN cases c ON c.case_id = a.case_id"
        " LEFT JOIN clocks sf ON sf.assignment_id = a.assignment_id AND sf.clock = 'sign_for'"
        " LEFT JOIN clocks rs ON rs.assignment_id = a.assignment_id AND rs.clock = 'resolve'"
        " WHERE a.dispatched_at >= $1 AND a.dispatched_at < $2 AND a.dispatched_at <= $3"
        " AND a.signed_for_at <= $3 AND " + under(4),
        start,
        end,
        now,
        _roots(roots),
    )


async def ratings(
    conn: Conn, *, start: datetime, end: datetime, now: datetime, roots: Roots
) -> list[Rating]:
    """The ratings (群众评单) entered in the period, each with the departments whose result it
    judges: resolved before it and not sent back (返工 naming them, or none) in between."""
    rows = await conn.fetch(
        "SELECT e.case_id, c.case_no, c.area_path, e.occurred_at,"
        " (e.payload->>'score')::int AS score, e.payload->>'channel' AS channel,"
        " e.actor->>'name' AS entered_by,"
        " ARRAY(SELECT DISTINCT b.department_id FROM assignments b"
        "  WHERE b.case_id = e.case_id AND b.resolved_at <= e.occurred_at AND NOT EXISTS ("
        "   SELECT 1 FROM case_events w WHERE w.case_id = b.case_id"
        "   AND w.type = 'case.rework_requested' AND w.occurred_at > b.resolved_at"
        "   AND w.occurred_at <= e.occurred_at"
        "   AND (jsonb_array_length(coalesce(w.payload->'departments', '[]')) = 0"
        "        OR w.payload->'departments' ? b.department_id))"
        "  ORDER BY 1) AS departments"
        " FROM case_events e JOIN cases c ON c.case_id = e.case_id"
        " WHERE e.type = 'case.rated' AND e.occurred_at >= $1 AND e.occurred_at < $2"
        " AND e.occurred_at <= $3 AND " + under(4),
        start,
        end,
        now,
        _roots(roots),
    )
    return [
        Rating(
            str(r["case_id"]),
            r["case_no"],
            "/".join(r["area_path"].split("/")[:3]),
            tuple(r["departments"]),
            r["occurred_at"],
            r["score"],
            r["channel"] == "grid_worker",
            r["entered_by"],
        )
        for r in rows
    ]


async def department_names(conn: Conn, ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT department_id, max(department_name) AS name FROM assignments"
        " WHERE department_id = ANY($1::text[]) AND department_name IS NOT NULL"
        " GROUP BY department_id",
        ids,
    )
    return {r["department_id"]: r["name"] for r in rows}
