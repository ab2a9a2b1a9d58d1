"""Composition root of the intake service."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake import consumers
from services.intake.api import cases, casework, hotspots, jurisdiction, photos, sources
from services.intake.api.open311 import routes as open311
from services.intake.catalogue import CatalogueSync, catalogue_loaded
from services.intake.config import Settings
from shared.contract import Topics, events_on
from shared.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Whistle intake 网格上报",
        description="Grid workers report cases (网格发现); communities whistle them to the "
        "departments (社区吹哨), verify and close them (核查结案).",
        routers=[
            cases.router,
            cases.areas_router,
            casework.router,
            photos.router,
            jurisdiction.router,
            open311.router,
            hotspots.router,
            sources.router,
        ],
        publishes=events_on(Topics.INTAKE),
        consumers=consumers.register,
        workers=lambda rt: [
            CatalogueSync(rt, settings.dispatch_url, settings.catalogue_refresh_seconds)
        ],
        readiness=lambda rt: {"catalogue": lambda: catalogue_loaded(rt)},
    )
