"""Composition root of the dispatch service."""

from __future__ import annotations

from fastapi import FastAPI

from services.dispatch import api, consumers
from services.dispatch.config import Settings
from shared.contract import Topics, events_on
from shared.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="Whistle dispatch 派单与部门报到",
        description="Routes whistled cases to the responsible departments (派单), which sign "
        "for them (部门报到) and report them resolved (办结); owns departments, the category "
        "catalogue and the routing rules.",
        routers=api.ROUTERS,
        publishes=events_on(Topics.DISPATCH),
        consumers=consumers.register,
    )
