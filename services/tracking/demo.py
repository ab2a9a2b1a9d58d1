"""Load tracking's demo reference data: the working calendar and the SLA policy versions of
``sla.demo`` (idempotent: a calendar only if none is set, versions only if not there yet)."""

from __future__ import annotations

from services.tracking.handlers import sla
from services.tracking.sla.demo import demo_calendar, demo_policy_versions
from shared import db
from shared.settings import BaseServiceSettings


async def seed_demo(settings: BaseServiceSettings) -> None:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        await sla.seed(conn, demo_calendar(), demo_policy_versions(), by="demo")
    finally:
        await conn.close()
