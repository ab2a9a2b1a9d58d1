"""The gateway's reverse proxy: ``/api/<service>/<path>`` → the service, on one origin.

Bodies stream both ways (photos up, Server-Sent Events down). The bearer token passes
through unchanged — every service verifies it itself — while the console's refresh cookie
never leaves the gateway. A live stream (``text/event-stream``) ends when the access token
that opened it expires: the console refreshes its token and reconnects with
``Last-Event-ID``, so a revoked or disabled user stops receiving within one token lifetime.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import structlog
from asgi_correlation_id.context import correlation_id
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from shared.auth import bearer_token, verify_for
from shared.errors import DomainError, NotFound

log = structlog.get_logger()
router = APIRouter(tags=["gateway"])

# Hop-by-hop headers (RFC 9110 §7.6.1) and what the gateway sets itself.
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "cookie",
    "content-length",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-correlation-id",
}
# The gateway's correlation-id middleware sets the response's id (the same the service used).
_HOP_RESPONSE = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "x-correlation-id",
}
# Not for the public origin: the services' operational endpoints stay internal.
_INTERNAL = {"metrics"}
# The services' names in error messages a person reads.
_ZH = {"intake": "受理服务", "dispatch": "派单服务", "tracking": "督办服务", "notify": "消息服务"}


class UpstreamUnavailable(DomainError):
    status_code = 502
    code = "upstream_unavailable"


class UpstreamTimeout(DomainError):
    status_code = 504
    code = "upstream_timeout"


async def token_expiry(app: FastAPI, authorization: str | None) -> float | None:
    """The verified expiry (epoch seconds) of the request's bearer token, if it has one
    (built-in or from the external OIDC provider: the same check as the services make)."""
    token = bearer_token(authorization)
    if token is None:
        return None
    try:
        return (await verify_for(app, token)).expires_at
    except DomainError:  # not a valid token (the service answers that), or no provider keys
        return None


async def _until(chunks: AsyncIterator[bytes], deadline: float | None) -> AsyncIterator[bytes]:
    """The upstream's bytes, cut off at ``deadline`` (epoch seconds) if there is one."""
    if deadline is None:
        async for chunk in chunks:
            yield chunk
        return
    try:
        async with asyncio.timeout(max(0.0, deadline - time.time())):
            async for chunk in chunks:
                yield chunk
    except TimeoutError:
        log.info("stream_ended_token_expired")


def _upstream_request(
    request: Request, client: httpx.AsyncClient, base: str, path: str
) -> httpx.Request:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
    client_host = request.client.host if request.client else ""
    headers += [
        ("x-forwarded-for", client_host),
        ("x-forwarded-proto", request.url.scheme),
        ("x-forwarded-host", request.headers.get("host", "")),
    ]
    # The id the gateway works under (the browser's, or the one its middleware made): the
    # service logs the same one.
    cid = correlation_id.get() or request.headers.get("x-correlation-id")
    if cid:
        headers.append(("x-correlation-id", cid))
    has_body = request.method in ("POST", "PUT", "PATCH", "DELETE")
    return client.build_request(
        request.method,
        f"{base.rstrip('/')}/{path}",
        params=str(request.query_params),  # as the browser encoded it
        headers=headers,
        content=request.stream() if has_body else None,
    )


@router.api_route(
    "/api/{service}/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    summary="Proxy to intake, dispatch, tracking or notify",
    include_in_schema=False,
)
async def proxy(service: str, path: str, request: Request) -> StreamingResponse:
    upstreams: dict[str, str] = request.app.state.upstreams
    base = upstreams.get(service)
    if base is None or path.split("/", 1)[0] in _INTERNAL:
        raise NotFound(
            f"没有这个接口：/api/{service}/{path}",
            f"no such endpoint: /api/{service}/{path}",
            code="not_found",
        )
    client: httpx.AsyncClient = request.app.state.http
    upstream = _upstream_request(request, client, base, path)
    streaming = "text/event-stream" in request.headers.get("accept", "") or path.endswith("/stream")
    if streaming:
        upstream.extensions["timeout"] = httpx.Timeout(10.0, read=None).as_dict()
    try:
        response = await client.send(upstream, stream=True)
    except httpx.TimeoutException as exc:
        log.warning("upstream_timeout", service=service, path=path)
        raise UpstreamTimeout(
            f"{_ZH[service]}响应超时，请稍后重试",
            f"{service} did not answer in time",
            code="upstream_timeout",
        ) from exc
    except httpx.TransportError as exc:
        log.warning("upstream_unavailable", service=service, path=path, error=str(exc))
        raise UpstreamUnavailable(
            f"{_ZH[service]}暂时不可用，请稍后重试", f"{service} is not reachable right now"
        ) from exc
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_RESPONSE}
    body = response.aiter_raw()
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        headers["x-accel-buffering"] = "no"
        body = _until(body, await token_expiry(request.app, request.headers.get("authorization")))
    return StreamingResponse(
        body,
        status_code=response.status_code,
        headers=headers,
        background=BackgroundTask(response.aclose),
    )
