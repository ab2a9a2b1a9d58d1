"""What a backtest reads (read-only): the past assignments of a period with their real
history — dispatched, signed for, first progress note, resolved, ended, the case closed,
approved extensions and pauses — and the clocks the live policy ran, with the escalation
levels their fired timers reached."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from shared.db import Conn

_HISTORIES = """
SELECT a.assignment_id, a.department_id, a.department_name, c.category, c.priority,
       a.dispatched_at, a.signed_for_at, a.resolved_at,
       least(a.ended_at, (SELECT min(e.occurred_at) FROM case_events e
                          WHERE e.case_id = a.case_id AND e.type IN ('case.closed', 'case.merged')
                            AND e.occurred_at >= a.dispatched_at)) AS ended_at,
       (SELECT min(e.occurred_at) FROM case_events e
        WHERE e.case_id = a.case_id AND e.type = 'case.progressed'
          AND e.payload->>'assignment_id' = a.assignment_id::text) AS progressed_at,
       (SELECT coalesce(array_agg(x.days ORDER BY x.decided_at), '{}') FROM extensions x
        WHERE x.assignment_id = a.assignment_id) AS extension_days,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'start', p.started_at, 'end', p.ended_at, 'reason', p.reason)
                   ORDER BY p.started_at), '[]')
        FROM pauses p WHERE p.assignment_id = a.assignment_id AND p.started_at IS NOT NULL)
           AS pauses,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'clock', k.clock, 'warn_at', k.warn_at, 'due_at', k.due_at,
                   'stopped_at', k.stopped_at)), '[]')
        FROM clocks k WHERE k.assignment_id = a.assignment_id) AS clocks,
       (SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object('clock', t.clock, 'level', t.level)),
                        '[]')
        FROM timers t WHERE t.assignment_id = a.assignment_id AND t.kind = 'escalation'
          AND t.state = 'fired' AND t.level IS NOT NULL) AS escalations
FROM assignments a
JOIN cases c ON c.case_id = a.case_id
WHERE a.dispatched_at >= $1 AND a.dispatched_at < $2
  AND ($3::text[] IS NULL OR EXISTS (
        SELECT 1 FROM unnest($3::text[]) r(root)
        WHERE c.area_path = r.root OR c.area_path LIKE r.root || '/%'))
  AND ($4::text IS NULL OR c.category = $4 OR c.category LIKE $4 || '%')
ORDER BY a.dispatched_at, a.assignment_id
"""


async def histories(
    conn: Conn,
    start: datetime,
    end: datetime,
    areas: tuple[str, ...] | None,
    category: str | None,
) -> list[asyncpg.Record]:
    """The assignments dispatched in [start, end), in ``areas`` (None: anywhere), of
    ``category`` or its 小类 (None: any)."""
    return await conn.fetch(_HISTORIES, start, end, list(areas) if areas else None, category)
