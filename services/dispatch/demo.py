"""Load the demo departments, category catalogue and routing rules (idempotent)."""

from __future__ import annotations

from services.dispatch import repository
from shared import db, demo
from shared.settings import BaseServiceSettings


async def seed_demo(settings: BaseServiceSettings) -> None:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        async with conn.transaction():
            await repository.upsert_departments(conn, list(demo.DEPARTMENTS))
            await repository.upsert_categories(conn, list(demo.CATEGORIES))
            await repository.upsert_rules(conn, list(demo.ROUTING_RULES))
    finally:
        await conn.close()
