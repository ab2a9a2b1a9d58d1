"""The live stream (Server-Sent Events): a recipient's in-app messages as they arrive.

Each message is sent with ``id:`` = its number in the recipient's stream (``seq``). A browser
that loses the connection reconnects with ``Last-Event-ID`` = the last number it saw, and
the stream goes on with every message numbered after it: nothing skipped, nothing repeated.

Why the numbers can be trusted — commit order vs sequence order. Message ids (a bigserial)
are handed out when a row is inserted, not when it commits: the consumer writing message 11
may commit before the one writing message 10, so a reader that saw 11 and moved its cursor
past 10 would never send 10. The stream's numbers are taken differently (migration 0005):
the inserting transaction takes the next number from the recipient's row in
``inbox_sequences`` and keeps that row locked until it commits. So number n+1 cannot be
handed out before the transaction holding n has ended; if it rolled back, n is handed out
again. Hence, once a reader sees number m committed, every number below m is committed (or
was never used) — a cursor can move past m safely. Numbers may skip (an insert that met its
unique key used one), never go back. The price is that two consumers writing to the same
recipient at the same moment take turns for the length of a short transaction.

How it stays live without polling hard: the database announces each insert
(``pg_notify('inbox_messages', recipient_id)``, sent at commit); one connection per replica
LISTENs and wakes the streams of that recipient. A stream also looks again every
``poll_interval`` seconds, in case a notification was missed (the listening connection was
being re-established). sse-starlette sends heartbeat comments (``: ping``) in between.

Shutdown: ``InboxStreams`` is one of the app's background workers; ``stop()`` ends every
open stream (each one returns after what it has sent; the response ends cleanly) so that
the server is not held up, and browsers reconnect — to another replica — with their
``Last-Event-ID``. Under uvicorn, sse-starlette also ends streams when the server is asked
to exit, before the app's shutdown runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator

import anyio
import asyncpg
import structlog
from sse_starlette import ServerSentEvent

from services.notify import handlers
from services.notify.repository import InboxMessage
from shared import db

log = structlog.get_logger()

CHANNEL = "inbox_messages"
RETRY_MS = 2000  # what a browser waits before reconnecting after the stream ends


def message_data(m: InboxMessage) -> str:
    return json.dumps(
        {
            "id": m.id,
            "seq": m.seq,
            "recipient_id": m.recipient_id,
            "event_id": str(m.event_id),
            "case_id": str(m.case_id),
            "type": m.type,
            "title": m.title,
            "body": m.body,
            "title_en": m.title_en,
            "body_en": m.body_en,
            "link": m.link,
            "created_at": m.created_at.isoformat(),
            "read_at": m.read_at.isoformat() if m.read_at else None,
        },
        ensure_ascii=False,
    )


class InboxStreams:
    """This replica's open streams, woken by the database's notifications."""

    def __init__(
        self, dsn: str, *, poll_interval: float, batch_size: int, stop_timeout: float = 5.0
    ) -> None:
        self._dsn = dsn
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._stop_timeout = stop_timeout
        self._stopping = asyncio.Event()
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._listener: asyncio.Task | None = None
        self.listening = asyncio.Event()

    # -- lifecycle (a background worker) --------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._listener = asyncio.create_task(self._listen(), name="inbox-stream-listener")

    async def stop(self) -> None:
        """End every open stream (each returns cleanly), then stop listening."""
        self._stopping.set()
        self._wake_all()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._stop_timeout):
                await self._idle.wait()
        if self._listener:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        log.info("inbox_streams_stopped", still_open=self._open)

    @property
    def open_streams(self) -> int:
        return self._open

    # -- waking ------------------------------------------------------------------------------------

    def _wake(self, recipient_id: str) -> None:
        for ev in self._waiting.get(recipient_id, ()):
            ev.set()

    def _wake_all(self) -> None:
        for events in self._waiting.values():
            for ev in events:
                ev.set()

    @staticmethod
    async def _relay(shutdown: anyio.Event, wake: asyncio.Event) -> None:
        await shutdown.wait()
        wake.set()

    def _connected(self) -> None:
        self.listening.set()
        self._wake_all()  # catch up on anything written while we were away

    async def _listen(self) -> None:
        """A dedicated connection LISTENing for new messages; reconnects when it drops."""
        await db.listen(
            self._dsn,
            CHANNEL,
            self._wake,
            stopping=self._stopping,
            retry_interval=self._poll_interval,
            connected=self._connected,
            disconnected=self.listening.clear,
        )

    # -- one stream ----------------------------------------------------------------------------

    async def follow(
        self,
        pool: asyncpg.Pool,
        recipient_id: str,
        after: int,
        *,
        follow: bool = True,
        shutdown: anyio.Event | None = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """``ready`` (its id the position the stream starts after), then every message
        numbered after ``after``, in order; with ``follow`` false it ends once caught up.
        It also ends — cleanly, after what it has sent — when ``shutdown`` is set (by
        sse-starlette when the server is asked to exit) or this worker stops."""
        wake = asyncio.Event()
        self._waiting[recipient_id].add(wake)
        self._open += 1
        self._idle.clear()
        relay = asyncio.create_task(self._relay(shutdown, wake)) if shutdown else None
        try:
            yield ServerSentEvent(
                event="ready",
                id=str(after),
                retry=RETRY_MS,
                data=json.dumps({"recipient_id": recipient_id, "after": after}),
            )
            position = after
            while not (self._stopping.is_set() or (shutdown and shutdown.is_set())):
                wake.clear()  # before reading: a message committed after this wakes us
                batch = await handlers.stream_batch(pool, recipient_id, position, self._batch_size)
                for m in batch:
                    yield ServerSentEvent(event="message", id=str(m.seq), data=message_data(m))
                    position = m.seq
                if len(batch) == self._batch_size:
                    continue
                if not follow:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await wake.wait()
        finally:
            if relay:
                relay.cancel()
            self._waiting[recipient_id].discard(wake)
            if not self._waiting[recipient_id]:
                del self._waiting[recipient_id]
            self._open -= 1
            if self._open == 0:
                self._idle.set()
