"""One way to run the intake service in-process for component tests: a migrated database,
the demo tree, the catalogue replica (normally synced from dispatch), the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from services.intake.config import Settings
from services.intake.demo import seed_demo
from services.intake.main import create_app
from shared import demo
from tests.conftest import migrated_database
from tests.helpers import running_app


@asynccontextmanager
async def running_intake(
    pg_server, kafka_server, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, str, Settings]]:
    dsn = await migrated_database(pg_server, "intake")
    settings = Settings(
        **{
            "database_url": dsn,
            "kafka_bootstrap_servers": kafka_server.bootstrap,
            "kafka_idempotent_producer": False,
            "dispatch_url": "http://127.0.0.1:9",
            "log_json": False,
            "outbox_poll_interval_seconds": 0.5,
            "environment": "test",
            **overrides,
        }
    )
    await seed_demo(settings)
    conn = await asyncpg.connect(dsn)
    await conn.executemany(
        "INSERT INTO categories (code, name, parent_code) VALUES ($1, $2, $3)", demo.CATEGORIES
    )
    await conn.close()
    async with running_app(create_app(settings)) as client:
        yield client, dsn, settings
