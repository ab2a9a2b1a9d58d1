"""The asyncpg pool, connected with bounded, logged retries (tenacity)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

import asyncpg
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = structlog.get_logger()

# A connection as queries take it: one of our own (``connect_once``, ``listen``) or one on
# loan from a pool (asyncpg hands out a proxy that behaves like it; the stubs type it apart).
if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# Errors that mean "the database is not reachable right now" rather than "this is wrong".
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)


async def _init_connection(conn: Conn) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ,
            encoder=lambda v: json.dumps(v, ensure_ascii=False, default=str),
            decoder=json.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: Conn) -> None:
    """The pool's reset on release. asyncpg's default sends ``SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL`` on every release: one more round trip and four
    statements per checkout, 22 per case end to end (issue 14). Our pooled connections hold
    no session state — locks are ``pg_advisory_xact_lock``, LISTEN runs on dedicated
    connections (``listen``), nothing SETs outside a transaction (a unit test keeps it so) —
    so there is nothing to undo. asyncpg still rolls back a transaction left open and drops
    the connection's listeners before calling this."""


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "db_connect_retry",
        attempt=state.attempt_number,
        sleep_s=round(state.upcoming_sleep, 2),
        error=repr(exc),
    )


async def connect_once(dsn: str) -> Conn:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, attempts: int = 20
) -> asyncpg.Pool:
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=0.2, max=5, jitter=0.2),
        retry=retry_if_exception_type(TRANSIENT_DB_ERRORS),
        before_sleep=_log_retry,
        reraise=True,
    ):
        with attempt:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                init=_init_connection,
                reset=_keep_session,
            )
    log.info("db_pool_ready", min_size=min_size, max_size=max_size)
    return pool


async def listen(
    dsn: str,
    channel: str,
    on_notify: Callable[[str], None],
    *,
    stopping: asyncio.Event,
    retry_interval: float,
    setup: Callable[[Conn], Awaitable[None]] | None = None,
    connected: Callable[[], None] = lambda: None,
    disconnected: Callable[[], None] = lambda: None,
) -> None:
    """LISTEN on ``channel`` over a dedicated connection (``session``) until ``stopping`` is
    set, calling ``on_notify(payload)`` for each notification. ``setup`` runs on each new
    connection once listening (e.g. to take a session lock); ``connected`` then (callers
    catch up there on what was written while no one listened)."""

    async def listening(conn: Conn) -> None:
        await conn.add_listener(channel, lambda _c, _pid, _ch, payload: on_notify(payload))
        if setup is not None:
            await setup(conn)

    await session(
        dsn,
        listening,
        name="listen",
        fields={"channel": channel},
        stopping=stopping,
        retry_interval=retry_interval,
        connected=connected,
        disconnected=disconnected,
    )


async def session(
    dsn: str,
    setup: Callable[[Conn], Awaitable[None]],
    *,
    name: str,
    fields: dict[str, str] | None = None,
    stopping: asyncio.Event,
    retry_interval: float,
    connected: Callable[[], None] = lambda: None,
    disconnected: Callable[[], None] = lambda: None,
) -> None:
    """Keep a dedicated connection (for session state: LISTEN, a session lock) until
    ``stopping`` is set: ``setup`` runs on each new one, then ``connected``; reconnects after
    ``retry_interval`` when it drops, calling ``disconnected`` when it is gone. Failures are
    logged as ``<name>_error`` with ``fields``."""
    while not stopping.is_set():
        conn: Conn | None = None
        try:
            conn = await asyncpg.connect(dsn)
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _, ev=closed: ev.set())
            await setup(conn)
            connected()
            await closed.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(f"{name}_error", error=repr(exc), **(fields or {}))
            await asyncio.sleep(retry_interval)
        finally:
            disconnected()
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
