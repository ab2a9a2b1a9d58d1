"""Fixtures on real servers: an embedded PostgreSQL and the Tansu broker, started once per
test session on free loopback ports, in a temporary folder."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from shared import db, migrations
from shared.broker import ensure_topics
from shared.service import migration_sources
from stack.kafka import EmbeddedKafka
from stack.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    base = tmp_path_factory.mktemp("pg")
    server = EmbeddedPostgres(base / "data", free_port(), base / "postgres.log")
    server.init()
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedKafka]:
    server = EmbeddedKafka(free_port(), tmp_path_factory.mktemp("kafka") / "broker.log")
    server.start()
    asyncio.run(ensure_topics(server.bootstrap))
    yield server
    server.stop()


async def create_database(server: EmbeddedPostgres, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.dsn(name)


async def migrated_database(server: EmbeddedPostgres, service: str) -> str:
    dsn = await create_database(server, service)
    conn = await db.connect_once(dsn)
    try:
        await migrations.apply(conn, migration_sources(ROOT / "services" / service / "migrations"))
    finally:
        await conn.close()
    return dsn


@pytest.fixture
async def empty_db(pg_server: EmbeddedPostgres) -> str:
    return await create_database(pg_server)


@pytest.fixture
async def shared_migrated_db(empty_db: str) -> str:
    """A fresh database with only the shared migrations (outbox, inbox, parking)."""
    conn = await db.connect_once(empty_db)
    try:
        await migrations.apply(conn, [("shared", migrations.SHARED_MIGRATIONS)])
    finally:
        await conn.close()
    return empty_db


@pytest.fixture
async def pool_factory() -> AsyncIterator:
    pools: list[asyncpg.Pool] = []

    async def make(dsn: str) -> asyncpg.Pool:
        pool = await db.create_pool(dsn, min_size=1, max_size=5, attempts=3)
        pools.append(pool)
        return pool

    yield make
    for p in pools:
        await p.close()


def running_stack(config) -> Iterator:
    """Start a whole embedded stack for a fixture to yield; stop it afterwards and print the
    tail of each service's log (on a failure, the first thing to read)."""
    from stack.stack import SERVICES, Stack

    stack = Stack(config)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        for s in SERVICES:
            log = config.log_dir / f"{s}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print(f"--- {s}.log (tail) ---", *tail, sep="\n")
