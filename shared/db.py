"""The asyncpg pool, connected with bounded, logged retries (tenacity)."""

from __future__ import annotations

import json

import asyncpg
import structlog
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = structlog.get_logger()

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


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ, encoder=lambda v: json.dumps(v, ensure_ascii=False, default=str),
            decoder=json.loads, schema="pg_catalog",
        )


async def connect_once(dsn: str) -> asyncpg.Connection:
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
        before_sleep=before_sleep_log(structlog.stdlib.get_logger("db"), 30),
        reraise=True,
    ):
        with attempt:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, init=_init_connection
            )
    log.info("db_pool_ready", min_size=min_size, max_size=max_size)
    return pool
