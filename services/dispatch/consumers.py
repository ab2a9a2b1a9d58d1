"""Dispatch consumes the community's whistles (社区吹哨) and routes them."""

from __future__ import annotations

from services.dispatch import handlers
from shared.broker import EventConsumer
from shared.events import CasePhotoAdded, CaseReworkRequested, CaseWhistled, Topics
from shared.service import Runtime


def register(rt: Runtime) -> None:
    whistles = EventConsumer(
        service="dispatch", name="whistles", pool=rt.get_pool, broker=rt.broker,
        max_attempts=rt.settings.consumer_max_attempts,
        handlers={CaseWhistled.TYPE: handlers.route_whistle,
                  CaseReworkRequested.TYPE: handlers.send_back_for_rework,
                  CasePhotoAdded.TYPE: handlers.record_photo},
    )
    whistles.subscribe(
        Topics.INTAKE,
        description="Whistled cases (社区吹哨) → assignments (派单) or the manual-dispatch queue; "
        "failed checks (返工) → the same departments again; photos (for 办结's after-photos)",
    )
