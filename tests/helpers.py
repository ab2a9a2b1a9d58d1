"""Test helpers: run a service app in-process on real PostgreSQL and the real broker, poll
with a deadline, read a topic."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from shared.contract import Envelope

T = TypeVar("T")


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str = "condition not met",
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{message} (after {timeout}s; last value {last!r})")


async def fetch(dsn: str, sql: str, *args: Any) -> list[Any]:
    """Rows of one query on a fresh connection (tests look into a service's database)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def fetchval(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def truncate(dsn: str, *tables: str) -> None:
    """Empty these tables (CASCADE) while the service's consumers and relay may be working.
    TRUNCATE locks the tables one by one, so a consumer's transaction that already holds
    one of them and waits for another deadlocks with it; PostgreSQL then aborts one side.
    When that is us, nothing was emptied, so try again."""
    sql = f"TRUNCATE {', '.join(tables)} CASCADE"
    conn = await asyncpg.connect(dsn)
    try:
        for attempt in range(10):
            try:
                await conn.execute(sql)
                return
            except asyncpg.DeadlockDetectedError:
                if attempt == 9:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
    finally:
        await conn.close()


def table_digest_sql(table: str) -> str:
    """SQL for one md5 over a table's rows, for "nothing changed" checks. The outbox is
    digested by the events written (id, topic, key, type, payload), not by the relay's
    bookkeeping (sent_at, attempts, claims), which moves in the background."""
    rows = "(x.event_id, x.topic, x.key, x.type, x.payload)" if table == "outbox" else "x"
    return (
        f"SELECT md5(coalesce(string_agg({rows}::text, ',' ORDER BY {rows}::text), ''))"
        f' FROM "{table}" x'
    )


async def snapshot(dsn: str) -> dict[str, str]:
    """Everything in one service's database, as a digest per table."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        return {t: await conn.fetchval(table_digest_sql(t)) for t in tables}
    finally:
        await conn.close()


async def settled(dsns: Iterable[str]) -> None:
    """Wait until nothing is moving between the services whose databases these are
    (outboxes sent, every table still for 0.3 s)."""
    dsns = list(dsns)

    async def quiet() -> bool:
        first = [await snapshot(d) for d in dsns]
        for d in dsns:
            if await fetchval(d, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
                return False
        await asyncio.sleep(0.3)
        return first == [await snapshot(d) for d in dsns]

    await eventually(quiet, timeout=30, interval=0.1, message="the services settled")


async def publish_raw(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def publish_event(bootstrap: str, event: Envelope) -> None:
    await publish_raw(bootstrap, event.topic, event.to_bytes(), str(event.case_id).encode())


async def read_topic(bootstrap: str, topic: str, *, timeout: float = 5.0) -> list[Any]:
    """Every record currently on ``topic`` (from the beginning), without joining a group."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            if not batch and records:
                break
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records


# --- identities -----------------------------------------------------------------------------

from shared.auth import Principal, Role, TokenKeys, mint  # noqa: E402
from shared.demo import USERS  # noqa: E402
from shared.settings import DEV_AUTH_SECRET  # noqa: E402

TEST_KEYS = TokenKeys("HS256", DEV_AUTH_SECRET, DEV_AUTH_SECRET, "whistle", "whistle")


def token(
    role: Role | str,
    area: str = "YA",
    *,
    department_id: str | None = None,
    grids: tuple[str, ...] = (),
    subject: str | None = None,
    name: str | None = None,
    keys: TokenKeys = TEST_KEYS,
    ttl: int = 3600,
) -> str:
    role = Role(role)
    principal = Principal(
        subject=subject or f"test-{role.value}",
        name=name or f"测试{role.value}",
        role=role,
        area=area,
        department_id=department_id,
        grids=grids,
    )
    return mint(keys, principal, ttl_seconds=ttl)


def bearer(role: Role | str, area: str = "YA", **kwargs: Any) -> dict[str, str]:
    """Authorization header for a made-up user of ``role`` acting for ``area``."""
    return {"Authorization": f"Bearer {token(role, area, **kwargs)}"}


def as_user(subject: str, keys: TokenKeys = TEST_KEYS) -> dict[str, str]:
    """Authorization header for one of the demo users (shared/demo.py USERS)."""
    user = next(u for u in USERS if u.subject == subject)
    principal = Principal(
        subject=user.subject,
        name=user.name,
        role=Role(user.role),
        area=user.area,
        department_id=user.department_id,
        grids=user.grids,
    )
    return {"Authorization": f"Bearer {mint(keys, principal)}"}


@asynccontextmanager
async def serving(
    module: str,
    env: dict[str, str],
    *,
    seed: bool = False,
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[list[bytes]]:
    """``python -m <module> migrate`` (and ``seed-demo``; then ``prepare()``), then ``serve``
    as a real process with ``env`` (HTTP_HOST/HTTP_PORT included) until it answers /livez;
    yields a list that holds the process's output once it has stopped."""
    from tests.conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}

    async def start(command: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            command,
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    for command in ("migrate", "seed-demo") if seed else ("migrate",):
        step = await start(command)
        out, _ = await asyncio.wait_for(step.communicate(), timeout=120)
        assert step.returncode == 0, f"{module} {command}: {out.decode()[-2000:]}"
    if prepare is not None:
        await prepare()
    proc = await start("serve")
    output: list[bytes] = []
    livez = f"http://{env['HTTP_HOST']}:{env['HTTP_PORT']}/livez"
    try:
        async with httpx.AsyncClient(timeout=5) as client:

            async def up() -> bool:
                if proc.returncode is not None:
                    raise AssertionError(f"{module} serve exited with {proc.returncode}")
                try:
                    return (await client.get(livez)).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=60, message=f"{module} is up")
        yield output
    finally:
        if proc.returncode is None:
            proc.terminate()
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
        output.append(out)
