"""Consumed from tracking: the deadlines it runs and the urgings (督办) it raises, kept so a
department's inbox shows — and sorts by — the deadline each assignment is up against."""

from __future__ import annotations


from services.dispatch import repository
from shared.contract import CaseClockStarted, CaseClockStopped, CaseUrged, Envelope
from shared.db import Conn


async def record_clock_started(conn: Conn, event: Envelope[CaseClockStarted]) -> None:
    p = event.payload
    await repository.deadlines.clock_announced(
        conn, p.assignment_id, p.clock, p.due_at, True, event.occurred_at
    )


async def record_clock_stopped(conn: Conn, event: Envelope[CaseClockStopped]) -> None:
    p = event.payload
    await repository.deadlines.clock_announced(
        conn, p.assignment_id, p.clock, None, False, event.occurred_at
    )


async def record_urging(conn: Conn, event: Envelope[CaseUrged]) -> None:
    p = event.payload
    by = event.actor.name or event.actor.subject if event.actor else None
    await repository.deadlines.urged(conn, p.assignment_id, p.count, event.occurred_at, p.note, by)
