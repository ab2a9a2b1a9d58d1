"""Load the demo jurisdiction tree, its grid boundaries and grid workers (idempotent)."""

from __future__ import annotations

from services.intake import repository
from services.intake.jurisdiction import demo as jurisdiction_demo
from shared import db, demo
from shared.settings import BaseServiceSettings


async def seed_demo(settings: BaseServiceSettings) -> None:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        async with conn.transaction():
            await repository.upsert_areas(
                conn, [(a.code, a.name, a.level, a.parent, a.path) for a in demo.areas()]
            )
            await jurisdiction_demo.seed(conn)
    finally:
        await conn.close()
