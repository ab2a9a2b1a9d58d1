"""The composition root of the console's gateway: sign-in, the proxy to the four services
and the console's static files, on one origin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import RequestResponseEndpoint

from shared import api_docs, db
from shared.auth import PUBLIC
from shared.http import (
    BodySizeLimit,
    error_response,
    install_error_handlers,
    install_observability,
)
from shared.logging import configure_logging
from shared.service import Runtime
from web import proxy
from web.config import Settings
from web.identity import api as identity_api

log = structlog.get_logger()
STATIC = Path(__file__).parent / "static"

# Content Security Policy: everything from this origin (the console works offline, nothing
# comes from a CDN); images may be blobs (photo previews) or data URLs (map markers).
_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_SECURITY_HEADERS = {
    "content-security-policy": _CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "permissions-policy": "geolocation=(self), camera=(self)",
}
# Paths the console's router handles in the browser (deep links land on index.html).
_NOT_CONSOLE = (
    "api/",
    "static/",
    "livez",
    "healthz",
    "readyz",
    "metrics",
    "docs",
    "redoc",
    "openapi.json",
)


def create_app(settings: Settings) -> FastAPI:
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    rt = Runtime(settings=settings, broker=None)  # type: ignore[arg-type]  # no broker here

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt.pool = await db.create_pool(
            settings.database_url.get_secret_value(),
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            attempts=settings.db_connect_attempts,
        )
        app.state.http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout_seconds, connect=5.0),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=50),
            follow_redirects=False,
        )
        log.info("service_started", port=settings.http_port)
        try:
            yield
        finally:
            await app.state.http.aclose()
            await rt.pool.close()
            log.info("service_stopped")

    docs = settings.docs_enabled
    app = FastAPI(
        title="Whistle console gateway 网页工作台网关",
        version="0.1.0",
        description="Sign-in, the console, and one origin for the four services' APIs "
        "under /api/intake, /api/dispatch, /api/tracking, /api/notify.",
        lifespan=lifespan,
        docs_url=None,  # served by api_docs from local assets (no CDN, fits the CSP)
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.runtime = rt
    app.state.token_keys = settings.token_keys()
    app.state.upstreams = settings.upstreams()
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # A grid worker's phone on a weak signal: the console's scripts and the APIs' JSON go out
    # compressed (Starlette leaves live streams, text/event-stream, alone).
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    install_error_handlers(app)

    async def check_db() -> None:
        async with asyncio.timeout(2):
            await rt.get_pool().fetchval("SELECT 1")

    install_observability(app, {"database": check_db})
    if docs:
        api_docs.install(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.include_router(identity_api.router)
    app.include_router(proxy.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/ratings/{token}", include_in_schema=False, dependencies=[Depends(PUBLIC)])
    async def rating_page(token: str) -> Response:
        """The resident's one-time rating link (群众评单): a small page, no sign-in."""
        return FileResponse(STATIC / "rate.html", headers={"cache-control": "no-store"})

    @app.get("/{path:path}", include_in_schema=False, dependencies=[Depends(PUBLIC)])
    async def console(path: str) -> Response:
        if path.startswith(_NOT_CONSOLE):  # an API or asset address that does not exist
            return error_response(404, "not_found", f"没有这个地址：/{path}")
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    return app
