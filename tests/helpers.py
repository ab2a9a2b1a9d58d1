"""Test helpers: run a service app in-process on real PostgreSQL and the real broker, poll
with a deadline, read a topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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
