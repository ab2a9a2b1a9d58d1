"""Load tracking's demo reference data: the working calendar and the SLA policy versions of
``sla.demo``, the red/black list's thresholds (idempotent: a calendar and thresholds only if
none are set, versions only if not there yet)."""

from __future__ import annotations

from services.tracking.handlers import kpi, sla
from services.tracking.sla.demo import demo_calendar, demo_policy_versions
from shared import db
from shared.settings import BaseServiceSettings

# 红黑榜: red when on time and liked, black when slow to answer, often pushing cases back or
# disliked — judged only with at least 5 assignments in the period.
DEMO_THRESHOLDS = {
    "min_received": 5,
    "red": [
        ["response_rate", ">=", 0.9],
        ["resolution_rate", ">=", 0.8],
        ["satisfaction_rate", ">=", 0.9],
    ],
    "black": [
        ["response_rate", "<", 0.6],
        ["rejections", ">=", 3],
        ["satisfaction_rate", "<", 0.6],
    ],
}


async def seed_demo(settings: BaseServiceSettings) -> None:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        await sla.seed(conn, demo_calendar(), demo_policy_versions(), by="demo")
        await kpi.seed_thresholds(conn, DEMO_THRESHOLDS, by="demo")
    finally:
        await conn.close()
