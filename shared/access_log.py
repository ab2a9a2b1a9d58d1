"""The HTTP access log: one structured line per request (``http_request``), carrying the
correlation id of the request (read from the context variable ``CorrelationIdMiddleware``
sets, so this middleware must run inside it).

Fields: method, route (the template, e.g. ``/cases/{case_id}``; the raw path is ``path``),
status, duration_ms, bytes (response body), client, subject and role when the request was
authenticated. The query string is never logged (Open311 ``api_key`` travels in it).
Probes and scrapes (``/livez``, ``/healthz``, ``/readyz``, ``/metrics``) are not logged.
Uvicorn's own access log stays off.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import structlog
from asgi_correlation_id.context import correlation_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("whistle.access")

QUIET_PATHS = frozenset({"/metrics", "/livez", "/healthz", "/readyz"})


class AccessLog:
    def __init__(self, app: ASGIApp, quiet_paths: Iterable[str] = QUIET_PATHS) -> None:
        self.app = app
        self.quiet_paths = frozenset(quiet_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.quiet_paths:
            await self.app(scope, receive, send)
            return
        # The request state dict is shared with the routes (``request.state.principal``).
        scope.setdefault("state", {})
        started = time.perf_counter()
        status = 500  # an exception that escapes the app is answered 500 further out
        sent = 0

        async def logging_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            _log_request(scope, status, sent, time.perf_counter() - started)


def _route_template(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _log_request(scope: Scope, status: int, sent: int, seconds: float) -> None:
    fields: dict[str, Any] = {
        "method": scope.get("method"),
        "route": _route_template(scope),
        "path": scope.get("path"),
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "bytes": sent,
        "correlation_id": correlation_id.get(),
    }
    client = scope.get("client")
    if client:
        fields["client"] = client[0]
    principal = (scope.get("state") or {}).get("principal")
    if principal is not None:
        fields["subject"] = getattr(principal, "subject", None)
        role = getattr(principal, "role", None)
        fields["role"] = getattr(role, "value", role)
    if status >= 500:
        log.warning("http_request", **fields)
    else:
        log.info("http_request", **fields)
