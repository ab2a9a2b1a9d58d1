"""Load the demo recipients: each department's duty desk and the supervisors (idempotent;
no webhooks — configure those over the API)."""

from __future__ import annotations

from services.notify import repository
from services.notify.domain import Recipient, RecipientKind
from shared import db, demo
from shared.settings import BaseServiceSettings


async def seed_demo(settings: BaseServiceSettings) -> None:
    rows = [
        Recipient(id=rid, name=name, kind=RecipientKind(kind), department_id=dept, area_path=area)
        for rid, name, kind, dept, area in demo.RECIPIENTS
    ]
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        async with conn.transaction():
            await repository.upsert_recipients(conn, rows)
    finally:
        await conn.close()
