"""Consumed: tracking's resolution forecast (预计办结时间) of a case, kept for the reporter's
view and Open311's ``expected_datetime`` — in the consumer's transaction, after the inbox
claim. Tracking owns the forecast; intake keeps the newest it heard."""

from __future__ import annotations

import structlog

from services.intake.repository import forecast as repo
from shared.contract import CaseResolutionForecast, Envelope
from shared.db import Conn

log = structlog.get_logger()


async def on_resolution_forecast(conn: Conn, event: Envelope[CaseResolutionForecast]) -> None:
    p = event.payload
    kept = await repo.keep_forecast(
        conn,
        event.case_id,
        p.expected_at,
        p.earliest,
        p.latest,
        p.basis.value if p.basis else None,
        event.occurred_at,
    )
    if not kept:
        log.info("forecast_not_kept", case_id=str(event.case_id), as_of=str(event.occurred_at))
