"""Composition root of the tracking service."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from services.tracking import api, consumers
from services.tracking.config import Settings
from services.tracking.handlers.forecast import ForecastSweeper
from services.tracking.scheduler import TimerScheduler
from services.tracking.stream import BoardStreams
from shared.contract import Topics, events_on
from shared.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    streams = BoardStreams(
        poll_interval=settings.board_stream_poll_seconds,
        retention=timedelta(hours=settings.board_feed_retention_hours),
    )
    app = create_service_app(
        settings,
        title="Whistle tracking 督办跟踪",
        description="Follows every case event into a timeline, runs the clocks of the SLA "
        "policy pinned at dispatch (签收、到场、办结时限, in working time by the working "
        "calendar) as durable timers, raises warnings (预警), overdue alerts (超时) and "
        "escalations (逐级上报), and serves the supervisors' overdue and near-overdue boards "
        "with their live stream, urging (督办), case histories and the SLA reference data.",
        routers=[api.router],
        publishes=events_on(Topics.TRACKING),
        consumers=lambda rt: consumers.register(rt, settings),
        workers=lambda rt: [
            TimerScheduler(
                rt.get_pool,
                poll_interval=settings.timer_poll_interval_seconds,
                batch_size=settings.timer_batch_size,
                parallel=settings.timer_parallel_batches,
                listen_dsn=settings.database_url.get_secret_value(),
            ),
            ForecastSweeper(rt.get_pool, interval=settings.forecast_sweep_seconds),
            streams.bind(rt.get_pool),  # after the scheduler: open streams end cleanly
        ],
    )
    app.state.board_streams = streams
    return app
