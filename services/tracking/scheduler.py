"""The durable timer scheduler: a background worker that fires due timers.

Timers are rows (see handlers.fire_due_timers for what firing does). Every replica runs a
scheduler; they share due rows with ``FOR UPDATE SKIP LOCKED``. Each round fires one batch,
goes straight on while batches come back full, and otherwise sleeps until the next timer is
due — never longer than the poll interval, so timers the consumers create meanwhile are seen.
The clock is injectable (``now``) so tests can drive time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import structlog

from services.tracking import domain, handlers

log = structlog.get_logger()

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class TimerScheduler:
    def __init__(
        self, pool: Callable[[], asyncpg.Pool], *, poll_interval: float, batch_size: int,
        now: Clock = utc_now, stop_timeout: float = 10.0,
    ) -> None:
        self._pool = pool
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._now = now
        self._stop_timeout = stop_timeout
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def tick(self) -> handlers.Tick:
        """Fire one batch of due timers (one transaction)."""
        async with self._pool().acquire() as conn:
            return await handlers.fire_due_timers(conn, now=self._now(), limit=self._batch_size)

    async def run_once(self) -> float:
        """Fire what is due (batch after batch); return how long to sleep before the next round."""
        while True:
            tick = await self.tick()
            if tick.claimed < self._batch_size or self._stopping.is_set():
                break
        now = self._now()
        _, next_due = await handlers.timers_due(self._pool(), now)
        return domain.seconds_until_next_tick(now, next_due, self._poll_interval)

    async def _run(self) -> None:
        log.info("timer_scheduler_started", poll_interval=self._poll_interval)
        while not self._stopping.is_set():
            try:
                delay = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("timer_tick_failed", error=repr(exc))
                delay = self._poll_interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="timer-scheduler")

    async def stop(self) -> None:
        """Let the tick in flight commit, then stop (cancel after a bounded wait; an interrupted
        tick rolls back and its timers stay pending for the next scheduler)."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(self._stop_timeout):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        log.info("timer_scheduler_stopped")
