"""The four services in-process on real PostgreSQL (one migrated database each, demo data)
and the real broker, for tests that walk every service's API the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from services.dispatch.config import Settings as DispatchSettings
from services.dispatch.demo import seed_demo as seed_dispatch
from services.dispatch.main import create_app as create_dispatch
from services.intake.config import Settings as IntakeSettings
from services.intake.demo import seed_demo as seed_intake
from services.intake.main import create_app as create_intake
from services.notify.config import Settings as NotifySettings
from services.notify.demo import seed_demo as seed_notify
from services.notify.main import create_app as create_notify
from services.tracking.config import Settings as TrackingSettings
from services.tracking.main import create_app as create_tracking
from shared import demo
from tests.conftest import migrated_database
from tests.helpers import running_app

SERVICES = ("intake", "dispatch", "tracking", "notify")


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    dsn: str

    async def row_counts(self) -> dict[str, int]:
        """Rows in each table of the service's database: a request that changed nothing
        leaves them all as they were."""
        conn = await asyncpg.connect(self.dsn)
        try:
            tables = await conn.fetch(
                "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS t"
                " FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
                " AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
            )
            return {r["t"]: await conn.fetchval(f"SELECT count(*) FROM {r['t']}") for r in tables}
        finally:
            await conn.close()


@asynccontextmanager
async def four_services(
    pg_server: Any, kafka_server: Any, **overrides: Any
) -> AsyncIterator[dict[str, Service]]:
    common = {
        "kafka_bootstrap_servers": kafka_server.bootstrap,
        "environment": "test",
        "kafka_idempotent_producer": False,
        "log_json": False,
        "outbox_poll_interval_seconds": 0.3,
        **overrides,
    }
    dsns = {s: await migrated_database(pg_server, s) for s in SERVICES}
    settings = {
        "intake": IntakeSettings(
            database_url=dsns["intake"], dispatch_url="http://127.0.0.1:9", **common
        ),
        "dispatch": DispatchSettings(database_url=dsns["dispatch"], **common),
        "tracking": TrackingSettings(database_url=dsns["tracking"], **common),
        "notify": NotifySettings(database_url=dsns["notify"], **common),
    }
    await seed_intake(settings["intake"])
    await seed_dispatch(settings["dispatch"])
    await seed_notify(settings["notify"])
    conn = await asyncpg.connect(dsns["intake"])
    await conn.executemany(
        "INSERT INTO categories (code, name, parent_code) VALUES ($1, $2, $3)", demo.CATEGORIES
    )
    await conn.close()
    makers = {
        "intake": create_intake,
        "dispatch": create_dispatch,
        "tracking": create_tracking,
        "notify": create_notify,
    }
    async with AsyncExitStack() as stack:
        services = {}
        for name in SERVICES:
            app = makers[name](settings[name])
            client = await stack.enter_async_context(running_app(app))
            services[name] = Service(app, client, dsns[name])
        yield services
