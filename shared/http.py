"""HTTP helpers every service mounts: correlation ids, an access log, one error shape,
health, readiness and Prometheus metrics (the API docs pages are in shared/api_docs.py).

Errors always look like ``{"error": {"code": ..., "message": ...}}``; the message is in
Simplified Chinese unless the request's ``Accept-Language`` prefers English.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import tracing
from shared.access_log import AccessLog
from shared.auth import PUBLIC
from shared.errors import DomainError
from shared.faults import is_transient
from shared.validation_text import problem_text

log = structlog.get_logger()

ReadinessCheck = Callable[[], Awaitable[None]]

_HTTP_CODES = {
    400: ("bad_request", "请求无效", "Bad request"),
    401: ("unauthorized", "未认证", "Not authenticated"),
    403: ("forbidden", "无权限", "Forbidden"),
    404: ("not_found", "资源不存在", "Not found"),
    405: ("method_not_allowed", "不支持该请求方法", "Method not allowed"),
    409: ("conflict", "与当前状态冲突", "Conflict"),
    413: ("payload_too_large", "请求体过大", "Request body too large"),
    415: ("unsupported_media_type", "不支持的内容类型", "Unsupported media type"),
    422: ("invalid", "请求内容无效", "Invalid request"),
    429: ("too_many_requests", "请求过于频繁", "Too many requests"),
}


def request_lang(request: Request) -> str:
    accept = request.headers.get("accept-language", "").lower()
    first = accept.split(",")[0].strip()
    return "en" if first.startswith("en") else "zh"


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return JSONResponse({"error": body}, status_code=status)


def _validation_message(exc: RequestValidationError, lang: str) -> tuple[str, list[dict]]:
    details = []
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        details.append({"field": loc, "problem": err.get("msg", "")})
        parts.append(f"{loc}: {problem_text(err, lang)}")
    head = "Invalid request" if lang == "en" else "请求内容无效"
    return f"{head} — " + "; ".join(parts), details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        response = error_response(exc.status_code, exc.code, exc.message(request_lang(request)))
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _validation_message(exc, request_lang(request))
        return error_response(422, "validation_error", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, zh, en = _HTTP_CODES.get(exc.status_code, ("error", "请求失败", "Request failed"))
        lang = request_lang(request)
        message = (
            exc.detail
            if isinstance(exc.detail, str) and exc.detail not in (zh, en, "Not Found")
            else (en if lang == "en" else zh)
        )
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        lang = request_lang(request)
        if is_transient(exc):  # the database or broker is away for a moment (a restart)
            log.warning("dependency_unavailable", path=request.url.path, error=repr(exc)[:300])
            response = error_response(
                503,
                "unavailable",
                "Temporarily unavailable, please retry"
                if lang == "en"
                else "服务暂时不可用，请稍后重试",
            )
            response.headers["Retry-After"] = "1"
            return response
        log.exception("unhandled_error", path=request.url.path)
        return error_response(
            500, "internal_error", "Internal error" if lang == "en" else "服务内部错误，请稍后重试"
        )


def install_observability(app: FastAPI, checks: dict[str, ReadinessCheck]) -> None:
    """/livez (and /healthz), /readyz and /metrics (unless METRICS_PORT gives them a port of
    their own); correlation ids on every request, an
    access log line per request, tracing when an exporter is configured (shared/tracing)."""
    runtime = getattr(app.state, "runtime", None)
    settings = getattr(runtime, "settings", None)
    tracing.configure(getattr(settings, "service_name", None) or "app")
    broker = getattr(runtime, "broker", None)
    if broker is not None:
        tracing.instrument_broker(broker)
    # Added first, so it runs inside the correlation-id middleware and logs its id.
    if getattr(settings, "access_log", True):
        app.add_middleware(AccessLog)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Correlation-ID",
        validator=lambda value: 0 < len(value) <= 128 and value.isprintable(),
    )
    Instrumentator(excluded_handlers=["/metrics", "/livez", "/healthz", "/readyz"]).instrument(app)

    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    public = [Depends(PUBLIC)]
    app.add_api_route("/livez", livez, tags=["health"], summary="Alive", dependencies=public)
    app.add_api_route(
        "/healthz", livez, tags=["health"], summary="Alive (alias of /livez)", dependencies=public
    )

    @app.get(
        "/readyz", tags=["health"], summary="Database and broker reachable", dependencies=public
    )
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        ok = True
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:  # readiness reports, it does not raise
                ok = False
                results[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": results},
            status_code=200 if ok else 503,
        )

    if getattr(settings, "metrics_port", None) is not None:
        return  # served on their own port by the ``serve`` command (shared/cli.py)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", dependencies=public)
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _no_body() -> dict[str, Any]:
    """The receive channel of a refused request: the body is never read."""
    return {"type": "http.disconnect"}


class _BodyTooLarge(StarletteHTTPException):
    """Raised while the endpoint reads a streamed body past the limit; FastAPI's handler
    (or, for a bare app, the middleware itself) renders it as 413."""

    def __init__(self, message: str) -> None:
        super().__init__(413, detail=message)


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether announced by
    Content-Length or streamed in chunks, before the endpoint sees them."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        refusal = self._message(scope)
        seen = 0
        started = False

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(refusal)
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    def _message(self, scope: Any) -> str:
        accept = dict(scope.get("headers") or []).get(b"accept-language", b"").decode().lower()
        limit_kib = self.max_bytes // 1024
        if accept.split(",")[0].strip().startswith("en"):
            return f"Request body too large (limit {limit_kib} KiB)"
        return f"请求体过大（上限 {limit_kib} KiB）"

    async def _refuse(self, scope: Any, send: Any) -> None:
        response = error_response(413, "payload_too_large", self._message(scope))
        await response(scope, _no_body, send)
