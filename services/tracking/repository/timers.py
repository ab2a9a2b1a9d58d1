"""SQL for the durable timers (one row per stage of a clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from uuid import UUID


from services.tracking.domain import (
    AssignmentState,
    CaseView,
    Clock,
    TimerKind,
    TimerState,
)
from services.tracking.domain.policy import Ladder
from services.tracking.domain.policy_data import pinned_from_data
from services.tracking.repository.cases import case_view
from shared.db import Conn
from shared.dto import from_row

# A timer armed due within WAKE_HORIZON wakes the schedulers: a NOTIFY on TIMERS_ARMED, which
# PostgreSQL delivers when the arming transaction commits (one per transaction, however many
# timers it arms). A sleeping scheduler would otherwise see it only at its next poll, up to a
# poll interval after it was due. A timer due later is found by a poll before it is due: the
# poll interval is at most the horizon. Dispatches arm deadlines minutes to days ahead, so the
# NOTIFY (which serialises the commits that send one) is rare: short demo clocks, replans,
# events replayed after an outage.
TIMERS_ARMED = "tracking_timers_armed"
WAKE_HORIZON = timedelta(seconds=60)


@dataclass(frozen=True)
class Arm:
    """One timer to arm: a stage of an assignment's clock."""

    case_id: UUID
    assignment_id: UUID
    clock: Clock
    due_at: datetime
    correlation_id: str | None
    causation_id: UUID | None
    kind: TimerKind = TimerKind.DEADLINE
    step: int = 0
    level: str | None = None
    revision: int = 0


async def schedule_timers(conn: Conn, arms: list[Arm]) -> int:
    """Arm timers in one statement; one per (assignment, clock, stage, revision): a replay
    does not add a second. Returns how many were armed."""
    if not arms:
        return 0
    return int(
        await conn.fetchval(
            "WITH armed AS (INSERT INTO timers (case_id, assignment_id, clock, due_at,"
            " correlation_id, causation_id, kind, step, level, revision)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[],"
            " $5::text[], $6::uuid[], $7::text[], $8::int[], $9::text[], $10::int[])"
            " ON CONFLICT (assignment_id, clock, kind, step, revision) DO NOTHING RETURNING due_at),"
            " woke AS (SELECT pg_notify($12, '') FROM (SELECT 1 FROM armed"
            " WHERE due_at <= now() + $11::interval LIMIT 1) soon)"
            " SELECT (SELECT count(*) FROM armed) + 0 * (SELECT count(*) FROM woke)",
            [a.case_id for a in arms],
            [a.assignment_id for a in arms],
            [a.clock.value for a in arms],
            [a.due_at for a in arms],
            [a.correlation_id for a in arms],
            [a.causation_id for a in arms],
            [a.kind.value for a in arms],
            [a.step for a in arms],
            [a.level for a in arms],
            [a.revision for a in arms],
            WAKE_HORIZON,
            TIMERS_ARMED,
        )
    )


async def schedule_timer(
    conn: Conn,
    *,
    case_id: UUID,
    assignment_id: UUID,
    clock: Clock,
    due_at: datetime,
    correlation_id: str | None,
    causation_id: UUID | None,
    kind: TimerKind = TimerKind.DEADLINE,
    step: int = 0,
    level: str | None = None,
    revision: int = 0,
) -> bool:
    """One timer (``schedule_timers``); False when it was armed before."""
    return (
        await schedule_timers(
            conn,
            [
                Arm(
                    case_id,
                    assignment_id,
                    clock,
                    due_at,
                    correlation_id,
                    causation_id,
                    kind,
                    step,
                    level,
                    revision,
                )
            ],
        )
        == 1
    )


async def cancel_assignment_timers(
    conn: Conn, assignment_id: UUID, clocks: list[Clock], at: datetime
) -> int:
    """Cancel the pending timers of those clocks. A timer the scheduler holds is waited for
    (its row lock), then left as fired."""
    ids = await _lock_pending(
        conn,
        "assignment_id = $1 AND clock = ANY($2::text[])",
        assignment_id,
        [c.value for c in clocks],
    )
    return await _cancel(conn, ids, at)


async def cancel_case_timers(conn: Conn, case_id: UUID, at: datetime) -> None:
    await _cancel(conn, await _lock_pending(conn, "case_id = $1", case_id), at)


# Pending timers are locked — all of them, in the order the scheduler claims them — before any
# is changed. An UPDATE alone changes rows in no fixed order: it could hold a changed row (an
# uncommitted new version) that a scheduler firing a later timer of the clock waits for when
# it schedules a stage that already exists (ON CONFLICT waits on an uncommitted version),
# while the UPDATE waits for that scheduler's claimed row — a deadlock, one of them killed. A
# row only locked does not hold the scheduler up. (Handlers lock cases and assignments FOR NO
# KEY UPDATE for the same reason: the scheduler's new timers reference them, FOR KEY SHARE.)
async def _lock_pending(conn: Conn, where: str, *args: object) -> list[int]:
    rows = await conn.fetch(
        f"SELECT id FROM timers WHERE {where} AND state = 'pending' ORDER BY due_at, id FOR UPDATE",
        *args,
    )
    return [r["id"] for r in rows]


async def _cancel(conn: Conn, ids: list[int], at: datetime) -> int:
    if not ids:
        return 0
    status = await conn.execute(
        "UPDATE timers SET state = 'cancelled', cancelled_at = $2"
        " WHERE id = ANY($1::bigint[]) AND state = 'pending'",
        ids,
        at,
    )
    return int(status.split()[-1])


@dataclass(frozen=True)
class DueTimer:
    """A claimed due timer with what its alert needs to say."""

    id: int
    case_id: UUID
    assignment_id: UUID
    clock: Clock
    due_at: datetime
    correlation_id: str | None
    causation_id: UUID | None
    department_id: str
    department_name: str | None
    assignment_state: AssignmentState
    case: CaseView
    kind: TimerKind = TimerKind.DEADLINE
    step: int = 0
    level: str | None = None
    revision: int = 0
    clock_running: bool = True
    clock_revision: int = 0
    clock_due_at: datetime | None = None  # the clock's deadline (None: no clock row)
    ended: bool = False
    # the assignment's pinned policy snapshot, read for escalations only (its ladder)
    policy: dict[str, Any] | None = None

    @cached_property
    def ladder(self) -> Ladder | None:
        """The pinned policy's escalation ladder, parsed once (the alert and the next
        repetition both need it)."""
        return None if self.policy is None else pinned_from_data(self.policy).policy.ladder


# Rows stay locked until the caller's transaction ends; another replica skips them.
_CLAIM_DUE = """
SELECT t.id, t.case_id, t.assignment_id, t.clock, t.due_at, t.correlation_id, t.causation_id,
       t.kind, t.step, t.level, t.revision,
       a.department_id, a.department_name, a.state AS assignment_state,
       a.ended_at IS NOT NULL AS ended,
       CASE WHEN t.kind = 'escalation' THEN a.policy END AS policy,
       coalesce(k.state = 'running', true) AS clock_running,
       coalesce(k.revision, 0) AS clock_revision, k.due_at AS clock_due_at,
       c.case_no, c.area_path, c.category, c.priority, c.status, c.updated_at
FROM timers t
JOIN assignments a ON a.assignment_id = t.assignment_id
JOIN cases c ON c.case_id = t.case_id
LEFT JOIN clocks k ON k.assignment_id = t.assignment_id AND k.clock = t.clock
WHERE t.state = 'pending' AND t.due_at <= $1
ORDER BY t.due_at, t.id
LIMIT $2
FOR UPDATE OF t SKIP LOCKED
"""


async def claim_due_timers(conn: Conn, now: datetime, limit: int) -> list[DueTimer]:
    if not conn.is_in_transaction():
        raise RuntimeError("claim due timers inside the transaction that settles them")
    rows = await conn.fetch(_CLAIM_DUE, now, limit)
    return [
        from_row(
            DueTimer,
            {**dict(r), "case": case_view(r)},  # the case's columns, as its read model
            clock=Clock,
            assignment_state=AssignmentState,
            kind=TimerKind,
        )
        for r in rows
    ]


async def settle_timers(conn: Conn, ids: list[int], state: TimerState, at: datetime) -> None:
    if not ids:
        return
    column = "fired_at" if state is TimerState.FIRED else "cancelled_at"
    await conn.execute(
        f"UPDATE timers SET state = $2, {column} = $3 WHERE id = ANY($1::bigint[])",
        ids,
        state.value,
        at,
    )


async def timers_due(conn: Conn, now: datetime) -> tuple[int, datetime | None, dict[str, int]]:
    """(pending timers already due, the next due time, running clocks past their deadline per
    clock) in one statement, each served by a partial index: it costs what is due and late,
    not what is open."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM timers WHERE state = 'pending' AND due_at <= $1) AS due,"
        " (SELECT min(due_at) FROM timers WHERE state = 'pending') AS next_due,"
        " (SELECT coalesce(jsonb_object_agg(clock, n), '{}') FROM (SELECT clock, count(*) AS n"
        "   FROM clocks WHERE state = 'running' AND due_at <= $1 GROUP BY clock) late) AS overdue",
        now,
    )
    assert row is not None  # a row of subqueries always comes back
    return row["due"], row["next_due"], row["overdue"]
