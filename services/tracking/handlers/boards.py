"""The supervisors' boards (超时 / 临期督办), the feed behind their live stream, and urging
(督办): each one transaction.

**Why the live stream reads a feed below the oldest running transaction.** Every change a
board shows — a clock started, moved, stopped, paused or resumed, a warning, an overdue alert,
an escalation, an urging — is written to ``board_feed`` by triggers (migration 0004) in the
transaction that makes it, whichever handler that is, so no code path can forget it and a
rolled-back change leaves no row. A ``bigserial`` alone cannot be a resume point: its values
are handed out when rows are inserted, not when they commit, so a reader that served seq 11
(committed) may later see seq 10 commit — a reader resuming "after 11" would miss it. Each feed
row therefore also records its transaction id (``pg_current_xact_id()``), and a reader serves
only rows of transactions older than ``pg_snapshot_xmin(pg_current_snapshot())`` — the oldest
transaction still running — in (txid, seq) order. Every such transaction has ended, so
nothing can ever appear behind a position served; the position ``<txid>-<seq>`` is each SSE
message's ``id:``, and a browser reconnecting with ``Last-Event-ID`` resumes exactly after it.
The price: a change shows once every transaction that started before it has ended (a long
transaction anywhere in the cluster holds the stream back — late, never lost). A dedicated
single writer, or locking the feed table, would order commits too, but serialise every event
handler of every replica behind it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from services.tracking import repository
from services.tracking.domain.board import Board, BoardItem, Position, UrgeProblem, urge_targets
from services.tracking.handlers.events import PRODUCER
from services.tracking.handlers.queries import board_scope
from services.tracking.repository import boards as boards_repo
from services.tracking.repository.boards import BoardFilter
from shared import outbox
from shared.auth import Principal
from shared.contract import CaseUrged, Envelope, Priority, new_event
from shared.errors import Conflict, DomainError, NotFound
from shared.db import Conn


class BoardQuery(NamedTuple):
    """The filters a reader asks for (each optional); the scope narrows them further."""

    area: str | None = None
    department_id: str | None = None
    category: str | None = None
    priority: str | None = None
    clock: str | None = None


def board_filter(who: Principal, q: BoardQuery) -> BoardFilter:
    """The caller's scope narrowed by the requested filters (403 for a filter outside it)."""
    scope = board_scope(who, area=q.area, department_id=q.department_id)
    return BoardFilter(scope.area_roots, scope.department_id, q.category, q.priority, q.clock)


async def read_board(
    pool: asyncpg.Pool,
    who: Principal,
    which: Board,
    q: BoardQuery,
    *,
    now: datetime,
    limit: int,
    offset: int,
) -> list[BoardItem]:
    """The overdue (超时) or near-overdue (临期) board as ``who`` may see it, at ``now``."""
    f = board_filter(who, q)
    async with pool.acquire() as conn:
        return await boards_repo.board(conn, which, f, now=now, limit=limit, offset=offset)


# --- the feed behind the live stream --------------------------------------------------------


async def feed_start(pool: asyncpg.Pool) -> Position:
    """Where a reader without a ``Last-Event-ID`` starts: every change not yet committed."""
    async with pool.acquire() as conn:
        return await boards_repo.feed_horizon(conn)


async def feed_tip(pool: asyncpg.Pool) -> Position:
    """The newest committed change: a reader standing before it has something to read."""
    async with pool.acquire() as conn:
        return await boards_repo.feed_tip(conn)


class FeedBatch(NamedTuple):
    changes: list[asyncpg.Record]  # those the reader's filter lets through, oldest first
    position: Position  # where the reader stands after this batch
    more: bool  # the batch was full: more is ready at once


async def feed_changes(
    pool: asyncpg.Pool, f: BoardFilter, after: Position, limit: int = 200
) -> FeedBatch:
    """The next committed changes after ``after``. Read in one snapshot, so the position the
    reader moves to (past changes its filter skipped) is below the same horizon."""
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        rows = await boards_repo.feed_after(conn, after, f, limit)
        if len(rows) == limit:
            return FeedBatch(rows, Position(rows[-1]["txid"], rows[-1]["seq"]), more=True)
        end = await boards_repo.feed_end(conn, after)
        return FeedBatch(rows, end or after, more=False)


async def purge_feed(pool: asyncpg.Pool, before: datetime, batch: int = 5000) -> int:
    """Forget the feed's changes recorded before ``before`` (each batch its own transaction);
    a reader resuming from an older position simply goes on from there."""
    purged = 0
    while True:
        async with pool.acquire() as conn:
            n = await boards_repo.purge_feed(conn, before, batch)
        purged += n
        if n < batch:
            return purged


# --- urging (督办) ------------------------------------------------------------------------------

_PROBLEMS: dict[UrgeProblem, tuple[type[DomainError], str, str]] = {
    UrgeProblem.CASE_CLOSED: (Conflict, "案件已结案，不能再督办", "the case is closed"),
    UrgeProblem.NOT_ON_CASE: (
        NotFound,
        "该部门在此案件上没有派单",
        "the department has no assignment on this case",
    ),
    UrgeProblem.NOTHING_OPEN: (
        Conflict,
        "没有正在办理的派单可督办（均已办结、退单或转办）",
        "no open assignment to urge (all resolved, rejected or transferred)",
    ),
    UrgeProblem.PAUSED: (
        Conflict,
        "派单已批准挂账/缓办，计时暂停中，恢复办理前不能督办",
        "the assignment is paused (挂账/缓办 approved): its clock stands "
        "still, so it cannot be urged until it resumes",
    ),
}


async def urge_case(
    pool: asyncpg.Pool,
    case_id: UUID,
    who: Principal,
    *,
    note: str,
    department_id: str | None,
    now: datetime,
    idempotency_key: str | None = None,
) -> list[Envelope[Any]]:
    """督办: one ``case.urged`` per open assignment of the case (or of the named department),
    each numbered (the n-th urging of that assignment), written to the outbox and the
    timeline in one transaction. The case row is locked, so urgings of one case count in
    turn. With an ``idempotency_key`` the caller used before for the same request, the
    urgings made then are returned and nothing is urged again (their ``occurred_at`` is not
    ``now``); used for a different request, 409 (as intake's reports)."""
    async with pool.acquire() as conn, conn.transaction():
        case = await repository.get_case(conn, case_id, lock=True)
        if case is None:
            raise NotFound(
                f"案件 {case_id} 不存在或尚未同步到督办系统",
                f"case {case_id} not found (or not yet known to tracking)",
                code="case_not_found",
            )
        who.require_area(case.area_path)
        fingerprint = _urge_fingerprint(case_id, note, department_id)
        if idempotency_key is not None:
            earlier = await boards_repo.earlier_urging(conn, who.subject, idempotency_key)
            if earlier is not None:
                return await _replayed(conn, earlier, fingerprint)
        targets = urge_targets(
            case.status, await boards_repo.lock_case_assignments(conn, case_id), department_id
        )
        if isinstance(targets, UrgeProblem):
            error, zh, en = _PROBLEMS[targets]
            suffix = f"（{department_id}）" if department_id else ""
            raise error(
                zh + suffix,
                en + (f" ({department_id})" if department_id else ""),
                code=targets.value,
            )
        events = []
        for a in targets:
            count = await boards_repo.count_urging(conn, a.assignment_id, now)
            payload = CaseUrged(
                case_no=case.case_no,
                area_path=case.area_path,
                category=case.category,
                priority=Priority(case.priority),
                assignment_id=a.assignment_id,
                department_id=a.department_id,
                department_name=a.department_name or a.department_id,
                note=note,
                count=count,
            )
            events.append(
                new_event(
                    payload, case_id=case_id, producer=PRODUCER, occurred_at=now, actor=who.actor
                )
            )
        await outbox.add(conn, *events)
        for event in events:
            await repository.append_event(conn, event)
        if idempotency_key is not None and not await boards_repo.remember_urging(
            conn, who.subject, idempotency_key, fingerprint, case_id, [e.event_id for e in events]
        ):
            raise _key_reused()  # taken meanwhile by a request for another case: roll back
    return events


def _urge_fingerprint(case_id: UUID, note: str, department_id: str | None) -> str:
    raw = json.dumps([str(case_id), note, department_id], ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def _key_reused() -> Conflict:
    return Conflict(
        "该 Idempotency-Key 已用于另一次不同的督办",
        "this Idempotency-Key was already used for a different urging",
        code="idempotency_key_reused",
    )


async def _replayed(conn: Conn, earlier: asyncpg.Record, fingerprint: str) -> list[Envelope[Any]]:
    if earlier["request_hash"] != fingerprint:
        raise _key_reused()
    rows = await boards_repo.urged_events(conn, earlier["event_ids"])
    return [Envelope[CaseUrged](**{**dict(r), "payload": CaseUrged(**r["payload"])}) for r in rows]
