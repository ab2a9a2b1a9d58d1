"""Load the demo jurisdiction tree (idempotent)."""

from __future__ import annotations

from services.intake import repository
from shared import db, demo
from shared.settings import BaseServiceSettings


async def seed_demo(settings: BaseServiceSettings) -> None:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        async with conn.transaction():
            await repository.upsert_areas(
                conn, [(a.code, a.name, a.level, a.parent, a.path) for a in demo.areas()]
            )
    finally:
        await conn.close()
