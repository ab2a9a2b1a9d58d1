"""The durable timer scheduler: a background worker that fires due timers.

Timers are rows (see handlers.fire_due_timers for what firing does). Every replica runs a
scheduler; they share due rows with ``FOR UPDATE SKIP LOCKED``. Each round fires one batch,
goes on while batches come back full (``parallel`` of them at a time, as many replicas would),
and otherwise sleeps until the next timer is due — never longer than the poll interval, so
timers the consumers create meanwhile are seen. A timer armed due sooner than that
(``repository.timers.WAKE_HORIZON``) wakes it at once: given ``listen_dsn``, the scheduler
LISTENs (``shared.db.listen``, a dedicated connection, reconnected when lost) for the NOTIFY
the arming transaction sends. Without it, or while that connection is away, it polls.
The clock is injectable (``now``) so tests can drive time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import asyncpg
import structlog

from services.tracking import domain, handlers
from services.tracking.repository.timers import TIMERS_ARMED
from shared.clock import utcnow
from shared import db

log = structlog.get_logger()

Clock = Callable[[], datetime]


class TimerScheduler:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        poll_interval: float,
        batch_size: int,
        parallel: int = 1,
        now: Clock = utcnow,
        stop_timeout: float = 10.0,
        listen_dsn: str | None = None,
        listen_retry: float = 5.0,
    ) -> None:
        self._pool = pool
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._parallel = parallel
        self._now = now
        self._stop_timeout = stop_timeout
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()  # a stop, or a timer armed due soon
        self._listen_dsn = listen_dsn  # None: poll only
        self._listen_retry = listen_retry
        self._listener: asyncio.Task | None = None
        self._task: asyncio.Task | None = None

    async def tick(self) -> handlers.Tick:
        """Fire one batch of due timers (one transaction)."""
        async with self._pool().acquire() as conn:
            return await handlers.fire_due_timers(conn, now=self._now(), limit=self._batch_size)

    async def run_once(self) -> float:
        """Fire what is due; return how long to sleep before the next round. One batch first;
        while batches come back full, ``parallel`` at a time on as many connections (each
        claims its own rows, as replicas do), so a burst of due timers drains faster than one
        transaction after the other."""
        width = 1
        while not self._stopping.is_set():
            async with asyncio.TaskGroup() as group:
                ticks = [group.create_task(self.tick()) for _ in range(width)]
            if all(t.result().claimed < self._batch_size for t in ticks):
                break
            width = self._parallel
        now = self._now()
        _, next_due = await handlers.timers_due(self._pool(), now)
        return domain.seconds_until_next_tick(now, next_due, self._poll_interval)

    async def _run(self) -> None:
        log.info("timer_scheduler_started", poll_interval=self._poll_interval)
        while not self._stopping.is_set():
            self._wake.clear()  # before the round: a timer armed during it wakes the next
            try:
                delay = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("timer_tick_failed", error=repr(exc))
                delay = self._poll_interval
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def start(self) -> None:
        self._stopping.clear()
        self._wake.clear()
        if self._listen_dsn is not None:
            # A dedicated connection (shared.db.listen: reconnects when lost); once listening,
            # a round catches up on what was armed meanwhile.
            self._listener = asyncio.create_task(
                db.listen(
                    self._listen_dsn,
                    TIMERS_ARMED,
                    lambda _payload: self._wake.set(),
                    stopping=self._stopping,
                    retry_interval=self._listen_retry,
                    connected=self._wake.set,
                ),
                name="timer-scheduler-listen",
            )
        self._task = asyncio.create_task(self._run(), name="timer-scheduler")

    async def stop(self) -> None:
        """Let the tick in flight commit, then stop (cancel after a bounded wait; an interrupted
        tick rolls back and its timers stay pending for the next scheduler)."""
        self._stopping.set()
        self._wake.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(self._stop_timeout):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        log.info("timer_scheduler_stopped")
