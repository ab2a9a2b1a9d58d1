"""SQL for the supervisors' boards, the board feed (the live stream's source) and urging."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.tracking.domain import AssignmentState, CaseStatus, Clock
from services.tracking.domain.board import Board, BoardItem, Position, UrgeTarget
from shared.db import Conn
from shared.dto import from_row


@dataclass(frozen=True)
class BoardFilter:
    """Cases under any of ``area_roots`` (None: anywhere; empty: nowhere), and optionally one
    department, a category (a 大类 code matches its 小类), a priority, a clock."""

    area_roots: tuple[str, ...] | None
    department_id: str | None = None
    category: str | None = None
    priority: str | None = None
    clock: str | None = None

    def args(self) -> list[object]:
        roots = None if self.area_roots is None else list(self.area_roots)
        return [roots, self.department_id, self.category, self.priority, self.clock]


# $1..$5: the filter; the caller's parameters follow. Categories are prefixed codes (E01 ⊃
# E0101), area paths are matched by whole segments.
_FILTERS = """
  AND ($1::text[] IS NULL OR EXISTS (
        SELECT 1 FROM unnest($1::text[]) AS root
        WHERE c.area_path = root OR starts_with(c.area_path, root || '/')))
  AND ($2::text IS NULL OR a.department_id = $2)
  AND ($3::text IS NULL OR starts_with(c.category, $3))
  AND ($4::text IS NULL OR c.priority = $4)
"""

# A running clock of an assignment still in hand, of an open case. (Stopping a clock is what
# handling does; the rest guards events that arrived out of order.)
_BOARD = (
    """
SELECT c.case_id, c.case_no, c.area_path, c.category, c.priority, c.status,
       a.assignment_id, a.department_id, a.department_name, a.urge_count, a.last_urged_at,
       k.clock, k.started_at, k.warn_at, k.due_at,
       d.fired_at AS overdue_alerted_at, e.level AS escalation_level, e.step AS escalation_step,
       f.expected_at, f.earliest AS expected_earliest, f.latest AS expected_latest,
       coalesce(f.breach_likely, false) AS breach_likely, f.breach_probability,
       f.reason_zh AS breach_reason_zh, f.reason_en AS breach_reason_en
FROM clocks k
JOIN assignments a ON a.assignment_id = k.assignment_id
JOIN cases c ON c.case_id = k.case_id
LEFT JOIN forecasts f ON f.assignment_id = k.assignment_id AND k.clock = 'resolve'
LEFT JOIN LATERAL (  -- the level reached stays through a pause (a new revision)
    SELECT t.level, t.step FROM timers t
    WHERE t.assignment_id = k.assignment_id AND t.clock = k.clock
      AND t.kind = 'escalation' AND t.state = 'fired'
    ORDER BY t.fired_at DESC, t.step DESC LIMIT 1) e ON true
LEFT JOIN LATERAL (
    SELECT t.fired_at FROM timers t
    WHERE t.assignment_id = k.assignment_id AND t.clock = k.clock AND t.revision = k.revision
      AND t.kind = 'deadline' AND t.state = 'fired'
    LIMIT 1) d ON true
WHERE k.state = 'running' AND {window}
  AND ($5::text IS NULL OR k.clock = $5)
  AND a.ended_at IS NULL AND a.state <> 'resolved'
  AND NOT (k.clock = 'sign_for' AND a.state <> 'dispatched')
  AND c.status <> 'closed'
"""
    + _FILTERS
    + """
ORDER BY k.due_at, array_position(ARRAY['urgent', 'normal', 'minor'], c.priority),
         a.assignment_id, array_position(ARRAY['sign_for', 'on_site', 'resolve'], k.clock)
LIMIT $7 OFFSET $8
"""
)

_WINDOWS = {
    # most late first = earliest deadline first
    Board.OVERDUE: "k.due_at <= $6",
    # least time left first = earliest deadline first, too
    # warned, or (before the warning) likely to miss the deadline by its forecast (预计超期)
    Board.NEAR_OVERDUE: "(k.warn_at IS NOT NULL AND k.warn_at <= $6 OR f.breach_likely)"
    " AND k.due_at > $6",
}
_QUERIES = {board: _BOARD.format(window=window) for board, window in _WINDOWS.items()}


def _item(r: asyncpg.Record) -> BoardItem:
    return from_row(BoardItem, r, status=CaseStatus, clock=Clock)


async def board(
    conn: Conn,
    which: Board,
    f: BoardFilter,
    *,
    now: datetime,
    limit: int,
    offset: int,
) -> list[BoardItem]:
    rows = await conn.fetch(_QUERIES[which], *f.args(), now, limit, offset)
    return [_item(r) for r in rows]


# --- the board feed ------------------------------------------------------------------------


async def feed_horizon(conn: Conn) -> Position:
    """The position just before the oldest transaction still running: every change below it
    is committed (or never will be), every later one is still to be served."""
    txid = await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    return Position(txid, 0)


# Only changes of transactions older than the oldest one still running: those have all
# committed or rolled back, so no change can appear behind the position served.
_FEED = (
    """
SELECT f.seq, f.txid::text::bigint AS txid, f.change, f.case_id, f.assignment_id, f.clock,
       f.event_id, f.occurred_at, f.detail,
       c.case_no, c.area_path, c.category, c.priority, c.status,
       a.department_id, a.department_name, a.urge_count,
       k.state AS clock_state, k.warn_at, k.due_at
FROM board_feed f
JOIN cases c ON c.case_id = f.case_id
JOIN assignments a ON a.assignment_id = f.assignment_id
LEFT JOIN clocks k ON k.assignment_id = f.assignment_id AND k.clock = f.clock
WHERE (f.txid, f.seq) > ($6::text::xid8, $7)
  AND f.txid < pg_snapshot_xmin(pg_current_snapshot())
  AND ($5::text IS NULL OR f.clock IS NULL OR f.clock = $5)
"""
    + _FILTERS
    + """
ORDER BY f.txid, f.seq
LIMIT $8
"""
)

_FEED_END = """
SELECT f.txid::text::bigint AS txid, f.seq FROM board_feed f
WHERE (f.txid, f.seq) > ($1::text::xid8, $2)
  AND f.txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY f.txid DESC, f.seq DESC LIMIT 1
"""


async def feed_tip(conn: Conn) -> Position:
    """The newest change a reader may be served now (the horizon when there is none): one
    backward step on the position index."""
    row = await conn.fetchrow(
        "SELECT txid::text::bigint AS txid, seq FROM board_feed"
        " WHERE txid < pg_snapshot_xmin(pg_current_snapshot())"
        " ORDER BY txid DESC, seq DESC LIMIT 1"
    )
    return Position(row["txid"], row["seq"]) if row else await feed_horizon(conn)


async def feed_after(
    conn: Conn, after: Position, f: BoardFilter, limit: int
) -> list[asyncpg.Record]:
    """The changes after ``after`` that ``f`` lets through, oldest first."""
    return await conn.fetch(_FEED, *f.args(), str(after.txid), after.seq, limit)


async def feed_end(conn: Conn, after: Position) -> Position | None:
    """The last servable change after ``after`` (whatever the filter), None if there is none:
    a reader whose filter let nothing through still moves on to it."""
    row = await conn.fetchrow(_FEED_END, str(after.txid), after.seq)
    return None if row is None else Position(row["txid"], row["seq"])


async def purge_feed(conn: Conn, before: datetime, batch: int) -> int:
    """Forget up to ``batch`` feed rows recorded before ``before``; how many went."""
    status = await conn.execute(
        "DELETE FROM board_feed WHERE seq IN (SELECT seq FROM board_feed"
        " WHERE recorded_at < $1 ORDER BY seq LIMIT $2)",
        before,
        batch,
    )
    return int(status.split()[-1])


# --- urging (督办) -------------------------------------------------------------------------------


async def lock_case_assignments(conn: Conn, case_id: UUID) -> list[UrgeTarget]:
    """The case's assignments (the lead first among those dispatched together), locked:
    concurrent urgings count one after the other; each says whether a pause holds it."""
    rows = await conn.fetch(
        "SELECT assignment_id, department_id, department_name, state, ended_at IS NOT NULL"
        " AS ended, EXISTS (SELECT 1 FROM pauses p WHERE p.assignment_id = a.assignment_id"
        " AND p.started_at IS NOT NULL AND p.ended_at IS NULL) AS paused"
        " FROM assignments a WHERE case_id = $1"
        " ORDER BY dispatched_at NULLS LAST, role IS DISTINCT FROM 'lead', assignment_id"
        " FOR NO KEY UPDATE",
        case_id,
    )
    return [UrgeTarget(**{**dict(r), "state": AssignmentState(r["state"])}) for r in rows]


async def count_urging(conn: Conn, assignment_id: UUID, at: datetime) -> int:
    """One more urging of the assignment; returns which one it is (1, 2, …)."""
    return await conn.fetchval(
        "UPDATE assignments SET urge_count = urge_count + 1, last_urged_at = $2"
        " WHERE assignment_id = $1 RETURNING urge_count",
        assignment_id,
        at,
    )


async def earlier_urging(conn: Conn, subject: str, key: str) -> asyncpg.Record | None:
    """The urging ``subject`` made before with Idempotency-Key ``key``, if any."""
    return await conn.fetchrow(
        "SELECT request_hash, event_ids FROM urge_requests WHERE subject = $1 AND key = $2",
        subject,
        key,
    )


async def remember_urging(
    conn: Conn,
    subject: str,
    key: str,
    request_hash: str,
    case_id: UUID,
    event_ids: list[UUID],
) -> bool:
    """Keep what an Idempotency-Key bought; False if another request took the key first."""
    return bool(
        await conn.fetchval(
            "INSERT INTO urge_requests (subject, key, request_hash, case_id, event_ids)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            subject,
            key,
            request_hash,
            case_id,
            event_ids,
        )
    )


async def urged_events(conn: Conn, event_ids: list[UUID]) -> list[asyncpg.Record]:
    """Those case.urged events as the timeline holds them, in the order they were written."""
    return await conn.fetch(
        "SELECT event_id, type, version, case_id, occurred_at, producer, correlation_id,"
        " causation_id, actor, payload FROM case_events WHERE event_id = ANY($1::uuid[])"
        " ORDER BY seq",
        event_ids,
    )
