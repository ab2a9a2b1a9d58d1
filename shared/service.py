"""The composition every service shares: a FastAPI app whose lifespan opens the asyncpg
pool, starts the FastStream Kafka broker (a plain ``KafkaBroker``), the outbox relay and
the service's own background workers — and stops them in reverse: stop consuming, finish
in-flight work, flush the outbox, close the pool."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol, Union

import asyncpg
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from shared import api_docs, db, migrations
from shared.broker import EventConsumer, Route, make_broker, publisher_for, start_broker
from shared.contract import Envelope, EventPayload
from shared.faults import RetryPolicy
from shared.http import (
    BodySizeLimit,
    ReadinessCheck,
    install_error_handlers,
    install_observability,
)
from shared.logging import configure_logging
from shared.outbox import OutboxRelay, Publish
from shared.settings import BaseServiceSettings
from shared.text_input import reject_nul

log = structlog.get_logger()


class BackgroundWorker(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Runtime:
    """What a running service holds; reachable from requests as ``request.app.state.runtime``."""

    settings: BaseServiceSettings
    broker: KafkaBroker
    pool: asyncpg.Pool | None = None
    relay: OutboxRelay | None = None
    workers: list[BackgroundWorker] = field(default_factory=list)

    def get_pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("the pool is opened by the app's lifespan")
        return self.pool

    def consume(
        self, name: str, *topics: str, routes: Iterable[Route], description: str
    ) -> EventConsumer:
        """A consumer group of this service (``<service>.<name>``) hearing ``topics``: each
        event class to its route, with the retry policy of the service's settings."""
        consumer = EventConsumer(
            service=self.settings.service_name,
            name=name,
            pool=self.get_pool,
            broker=self.broker,
            policy=RetryPolicy.from_settings(self.settings),
            routes=routes,
        )
        consumer.subscribe(*topics, description=description)
        return consumer


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def pool(request: Request) -> asyncpg.Pool:
    """FastAPI dependency: the service's connection pool. A coroutine on purpose, like every
    dependency here: FastAPI runs a plain function in a worker thread (a thread hop per
    request, ~5 % of intake's CPU under load, issue 14)."""
    return request.app.state.runtime.pool


# A route's connection pool: ``async def route(pool: Pool, ...)``.
Pool = Annotated[asyncpg.Pool, Depends(pool)]


def migration_sources(service_migrations: Path) -> list[tuple[str, Path]]:
    return [
        ("shared", migrations.SHARED_MIGRATIONS),
        (service_migrations.parent.name, service_migrations),
    ]


async def migrate(settings: BaseServiceSettings, service_migrations: Path) -> list[str]:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        return await migrations.apply(conn, migration_sources(service_migrations))
    finally:
        await conn.close()


def document_publications(broker: KafkaBroker, events: Iterable[type[EventPayload]]) -> None:
    """Register one publisher per topic so the AsyncAPI document shows what we emit."""
    by_topic: dict[str, list[type[EventPayload]]] = {}
    for cls in events:
        by_topic.setdefault(cls.TOPIC, []).append(cls)
    for topic, classes in by_topic.items():
        schema: Any = Envelope[Union[tuple(classes)]]  # type: ignore[misc]  # noqa: UP007
        broker.publisher(
            topic,
            title=topic,
            description="Events: "
            + ", ".join(f"{c.TYPE} v{c.VERSION}" for c in classes)
            + ". Key: case_id.",
            schema=schema,
        )


def outbox_relay(
    settings: BaseServiceSettings, pool: asyncpg.Pool, publish: Publish
) -> OutboxRelay:
    """The service's outbox relay, every knob from its settings (OUTBOX_*)."""
    return OutboxRelay(
        pool,
        settings.database_url.get_secret_value(),
        publish,
        service=settings.service_name,
        batch_size=settings.outbox_batch_size,
        poll_interval=settings.outbox_poll_interval_seconds,
        outbox_retention=timedelta(hours=settings.outbox_retention_hours),
        inbox_retention=timedelta(days=settings.inbox_retention_days),
        lease=timedelta(seconds=settings.outbox_lease_seconds),
        publish_timeout=settings.outbox_publish_timeout_seconds,
        max_attempts=settings.outbox_max_attempts,
        retry_base=settings.outbox_retry_base_seconds,
        retry_cap=settings.outbox_retry_cap_seconds,
    )


def create_service_app(
    settings: BaseServiceSettings,
    *,
    title: str,
    description: str,
    routers: Iterable[APIRouter],
    publishes: Iterable[type[EventPayload]] = (),
    consumers: Callable[[Runtime], None] | None = None,
    workers: Callable[[Runtime], list[BackgroundWorker]] | None = None,
    readiness: Callable[[Runtime], dict[str, ReadinessCheck]] | None = None,
) -> FastAPI:
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    broker = make_broker(settings)
    rt = Runtime(settings=settings, broker=broker)
    document_publications(broker, publishes)
    if consumers is not None:
        consumers(rt)  # subscribers exist before start, so AsyncAPI documents them

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dsn = settings.database_url.get_secret_value()
        rt.pool = await db.create_pool(
            dsn,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            attempts=settings.db_connect_attempts,
        )
        await start_broker(broker, settings.kafka_connect_attempts)
        rt.relay = outbox_relay(settings, rt.pool, publisher_for(broker))
        rt.relay.start()
        rt.workers = workers(rt) if workers is not None else []
        for worker in rt.workers:
            worker.start()
        log.info("service_started", port=settings.http_port)
        try:
            yield
        finally:
            log.info("service_stopping")
            # Stop consuming first (in-flight handlers finish), then the workers, then
            # flush what the outbox still holds while the producer is alive.
            for subscriber in broker.subscribers:
                with contextlib.suppress(Exception):
                    await subscriber.stop()
            for worker in reversed(rt.workers):
                with contextlib.suppress(Exception):
                    await worker.stop()
            await rt.relay.stop()
            with contextlib.suppress(Exception):
                await broker.stop()
            await rt.pool.close()
            log.info("service_stopped")

    docs = settings.docs_enabled
    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by api_docs from local assets (no CDN)
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        # Every route: NUL in any text input is 422, before it can reach PostgreSQL.
        dependencies=[Depends(reject_nul)],
    )
    app.state.runtime = rt
    app.state.token_keys = settings.token_keys()
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)

    async def check_db() -> None:
        if rt.pool is None:
            raise RuntimeError("pool not open")
        async with asyncio.timeout(2):
            await rt.pool.fetchval("SELECT 1")

    async def check_broker() -> None:
        if not await broker.ping(timeout=2):
            raise RuntimeError("broker not reachable")

    checks: dict[str, ReadinessCheck] = {"database": check_db, "broker": check_broker}
    if readiness is not None:
        checks.update(readiness(rt))
    install_observability(app, checks)
    if docs:
        api_docs.install(
            app,
            lambda: api_docs.complete_asyncapi(
                AsyncAPI(
                    broker,
                    title=f"Whistle {settings.service_name}",
                    version="0.1.0",
                    description=description,
                ).to_specification(),
                broker,
            ),
        )
    for router in routers:
        app.include_router(router)
    return app
