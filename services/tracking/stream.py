"""The boards' live stream (Server-Sent Events): every change a supervisor's board shows, in
the order it committed, each message's ``id:`` the position to resume after.

Why the positions can be trusted (nothing skipped, nothing repeated on resume) is told in
handlers.boards. This module is the long-lived part: one generator per open stream, reading
the feed when there is something new, and ``BoardStreams``, a background worker that watches
the feed's tip for all of them and whose ``stop()`` (the app's shutdown) ends every open stream
cleanly — the browser then reconnects (to another replica) with its ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import asyncpg
import structlog
from sse_starlette import ServerSentEvent

from services.tracking import handlers
from services.tracking.domain.board import Position
from services.tracking.repository.boards import BoardFilter

log = structlog.get_logger()

# What a browser waits before reconnecting after the stream ends (ms).
RETRY_MS = 2000


def _change(r: asyncpg.Record) -> dict[str, Any]:
    detail = r["detail"] or {}
    return {
        "change": r["change"],
        "occurred_at": r["occurred_at"].isoformat(),
        "case_id": str(r["case_id"]),
        "case_no": r["case_no"],
        "area_path": r["area_path"],
        "category": r["category"],
        "priority": r["priority"],
        "status": r["status"],
        "assignment_id": str(r["assignment_id"]),
        "department_id": r["department_id"],
        "department_name": r["department_name"],
        "clock": r["clock"],
        "clock_state": r["clock_state"],
        "warn_at": r["warn_at"].isoformat() if r["warn_at"] else None,
        "due_at": r["due_at"].isoformat() if r["due_at"] else None,
        "urge_count": r["urge_count"],
        "event_id": str(r["event_id"]) if r["event_id"] else None,
        **detail,
    }


class BoardStreams:
    """The open streams of this replica: a background worker, so that shutting the app down
    ends them (each sends what it has and returns) instead of leaving them hanging.

    Bound to the pool (``bind``), it watches the feed's tip — the newest committed change —
    with one query per ``poll_interval`` for the whole replica, and an open stream that has
    caught up queries again only when the tip moves past it (or every ``IDLE_REREAD`` seconds,
    should the watch fail): an idle stream costs no query. It also forgets feed rows older
    than ``retention`` once per ``purge_interval`` (every replica may; deleting what another
    already deleted is a no-op). Unbound, each stream polls every ``poll_interval``."""

    IDLE_REREAD = 30.0

    def __init__(
        self,
        *,
        poll_interval: float,
        retention: timedelta = timedelta(days=7),
        purge_interval: float = 3600.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._poll_interval = poll_interval
        self._retention = retention
        self._purge_interval = purge_interval
        self._stop_timeout = stop_timeout
        self._stopping = asyncio.Event()
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._pool: Callable[[], asyncpg.Pool] | None = None
        self._tasks: list[asyncio.Task] = []
        self._tip: Position | None = None  # the newest committed change, while watching
        self._tip_moved = asyncio.Event()  # set (and replaced) whenever the tip moves

    def bind(self, pool: Callable[[], asyncpg.Pool]) -> BoardStreams:
        self._pool = pool
        return self

    def start(self) -> None:
        self._stopping.clear()
        if self._pool is not None:
            self._tasks = [
                asyncio.create_task(self._watch_tip(), name="board-feed-tip"),
                asyncio.create_task(self._purge_now_and_then(), name="board-feed-purge"),
            ]

    async def stop(self) -> None:
        self._stopping.set()
        self._wake_streams()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._stop_timeout):
                await self._idle.wait()
        log.info("board_streams_stopped", still_open=self._open)

    def _wake_streams(self) -> None:
        moved, self._tip_moved = self._tip_moved, asyncio.Event()
        moved.set()

    async def _watch_tip(self) -> None:
        assert self._pool is not None
        while not self._stopping.is_set():
            try:
                tip = await handlers.feed_tip(self._pool())
                if tip != self._tip:
                    self._tip = tip
                    self._wake_streams()
            except Exception as exc:  # streams re-read on their own meanwhile
                log.warning("board_feed_watch_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._stopping.wait()

    async def _until_something_new(self, position: Position, shutdown: anyio.Event | None) -> None:
        """Wait until the tip moves past ``position`` (without a watch: one poll interval),
        the worker stops or the server shuts down."""
        if not self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._stopping.wait()
            return
        loop = asyncio.get_running_loop()
        reread_at = loop.time() + self.IDLE_REREAD
        while loop.time() < reread_at and not self._stopping.is_set():
            if (self._tip is not None and self._tip > position) or (shutdown and shutdown.is_set()):
                return
            moved = self._tip_moved
            with contextlib.suppress(TimeoutError):  # re-checks the shutdown flag each poll
                async with asyncio.timeout(self._poll_interval):
                    await moved.wait()

    async def _purge_now_and_then(self) -> None:
        assert self._pool is not None
        while not self._stopping.is_set():
            try:
                purged = await handlers.purge_feed(
                    self._pool(), datetime.now(UTC) - self._retention
                )
                if purged:
                    log.info("board_feed_purged", rows=purged)
            except Exception as exc:  # the next round tries again
                log.warning("board_feed_purge_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._purge_interval):
                    await self._stopping.wait()

    @property
    def open_streams(self) -> int:
        return self._open

    async def follow(
        self,
        pool: asyncpg.Pool,
        f: BoardFilter,
        after: Position,
        *,
        follow: bool = True,
        shutdown: anyio.Event | None = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """``ready`` (with the starting position), then every change the filter lets
        through; with ``follow`` false it ends once it has caught up. It also ends — normally,
        so the response is complete — when this worker stops (the app's shutdown) or when
        ``shutdown`` is set (sse-starlette sets it when the server, e.g. uvicorn on SIGTERM,
        begins to shut down, and waits a grace period before cutting the stream off)."""
        self._open += 1
        self._idle.clear()
        try:
            yield ServerSentEvent(
                event="ready",
                id=str(after),
                retry=RETRY_MS,
                data=json.dumps({"position": str(after), "as_of": datetime.now(UTC).isoformat()}),
            )
            position = after
            while not self._stopping.is_set() and not (shutdown and shutdown.is_set()):
                batch = await handlers.feed_changes(pool, f, position)
                for r in batch.changes:
                    yield ServerSentEvent(
                        event=r["change"],
                        id=f"{r['txid']}-{r['seq']}",
                        data=json.dumps(_change(r), ensure_ascii=False),
                    )
                position = batch.position
                if batch.more:
                    continue
                if not follow:
                    return
                await self._until_something_new(position, shutdown)
        finally:
            self._open -= 1
            if self._open == 0:
                self._idle.set()
