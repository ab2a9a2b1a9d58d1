"""The API documentation pages, served without any CDN: Swagger UI on ``/docs`` (with the
bearer scheme declared, so its Authorize button works) and the AsyncAPI document on
``/asyncapi.json`` and ``/asyncapi`` (every event a service publishes, and the payload of
every message it consumes). The viewers are vendored in shared/static/docs (see its README).

The pages carry no inline script, so they fit a ``script-src 'self'`` Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any, Union

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from faststream.kafka import KafkaBroker
from pydantic import TypeAdapter

from shared.auth import BEARER, PUBLIC, Rule
from shared.broker import consumers_of
from shared.contract import Envelope

ASSETS = Path(__file__).parent / "static" / "docs"
ASSETS_URL = "/docs-assets"
# The pages name their assets and documents relative to themselves, so they also work
# behind a path prefix (the gateway's /api/<service>/docs).
_RELATIVE_ASSETS = ASSETS_URL.lstrip("/")
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "登录令牌 / the sign-in token: `Authorization: Bearer <token>`",
}

# One offline page for either viewer: its stylesheet, its mount point (with the document's
# address as a data attribute) and its bundle, started by an init script (no inline script).
_VIEWER_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{assets}/{css}">
</head>
<body>
<div id="{mount}" {data}="{url}"></div>
<script src="{assets}/{bundle}" charset="utf-8"></script>
<script src="{assets}/{init}" charset="utf-8"></script>
</body>
</html>
"""


def _swagger_page(title: str, assets: str, openapi_url: str) -> str:
    return _VIEWER_PAGE.format(
        title=title,
        assets=assets,
        css="swagger-ui.css",
        mount="swagger-ui",
        data="data-openapi-url",
        url=openapi_url,
        bundle="swagger-ui-bundle.js",
        init="swagger-init.js",
    )


def _asyncapi_page(title: str, assets: str, spec_url: str) -> str:
    return _VIEWER_PAGE.format(
        title=title,
        assets=assets,
        css="asyncapi.css",
        mount="asyncapi",
        data="data-spec-url",
        url=spec_url,
        bundle="asyncapi-standalone.js",
        init="asyncapi-init.js",
    )


def rules_of(dependant: Dependant) -> list[Rule]:
    """The authorisation rules in a route's dependency tree."""
    found, todo = [], [dependant]
    while todo:
        current = todo.pop()
        if isinstance(current.call, Rule):
            found.append(current.call)
        todo.extend(current.dependencies)
    return found


def secured_operations(app: FastAPI) -> Iterator[tuple[str, str, Rule]]:
    """(path, method, rule) of every documented operation that needs a credential: its
    rules include a non-public one (FastAPI includes routers lazily, hence the route
    contexts)."""
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if not isinstance(original, APIRoute) or not original.include_in_schema:
            continue
        secured = [rule for rule in rules_of(route.dependant) if not rule.public]
        if secured:
            for method in route.methods or ():
                yield route.path_format or "", method.lower(), secured[0]


def declare_bearer(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the bearer scheme (and a rule's own schemes, such as
    Open311's api_key) and mark each secured operation with the credentials it accepts."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[BEARER] = BEARER_SCHEME
        for path, method, rule in secured_operations(app):
            operation = schema.get("paths", {}).get(path, {}).get(method)
            if operation is not None:
                schemes.update(rule.security_schemes)
                operation["security"] = [dict(r) for r in rule.security]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete_asyncapi(specification: Any, broker: KafkaBroker) -> Any:
    """FastStream derives a subscriber's payload from its handler's body parameters; ours
    take the raw ``KafkaMessage`` (the consumer parses and dead-letters itself), so every
    consumed message would show an empty payload. Put each consumer's envelope there: the
    union of the event classes it routes, on the topic the message comes from."""
    components = specification.components
    for consumer in consumers_of(broker):
        for topic in consumer.topics:
            classes = [cls for cls in consumer._handlers if topic == cls.TOPIC]
            key = _subscribe_key(consumer.service, consumer.name, topic, consumer.topics)
            message = components.messages.get(key)
            if message is None or not classes:
                continue
            schema: Any = Envelope[Union[tuple(classes)]]  # type: ignore[misc]  # noqa: UP007
            payload = TypeAdapter(schema).json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in payload.pop("$defs", {}).items():
                components.schemas.setdefault(name, definition)
            message.payload = payload
    if not any("EmptyPayload" in str(m.payload) for m in components.messages.values()):
        components.schemas.pop("EmptyPayload", None)
    return specification


def _subscribe_key(service: str, name: str, topic: str, topics: tuple[str, ...]) -> str:
    """FastStream's message key of a subscriber: the topic is named when there are several."""
    if len(topics) > 1:
        return f"{service}.{name}:{topic}:SubscribeMessage"
    return f"{service}.{name}:SubscribeMessage"


def install(app: FastAPI, asyncapi: Callable[[], Any] | None = None) -> None:
    """Serve the docs pages from local assets: ``/docs`` (Swagger UI on the app's
    ``openapi_url``), and with ``asyncapi`` (the specification's factory) ``/asyncapi.json``
    and ``/asyncapi``. Create the app with ``docs_url=None, redoc_url=None``."""
    declare_bearer(app)
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    title = escape(app.title)
    openapi_url = escape((app.openapi_url or "/openapi.json").lstrip("/"))

    async def swagger(request: Request) -> HTMLResponse:
        page = _swagger_page(title, _RELATIVE_ASSETS, openapi_url)
        return HTMLResponse(page)

    # A plain route, like FastAPI's own /docs: not an API operation.
    app.add_route("/docs", swagger, include_in_schema=False)
    if asyncapi is None:
        return
    public = [Depends(PUBLIC)]

    @app.get(
        "/asyncapi.json",
        tags=["docs"],
        summary="AsyncAPI document of this service's events",
        dependencies=public,
    )
    async def asyncapi_json() -> Response:
        return Response(asyncapi().to_json(), media_type="application/json")

    @app.get(
        "/asyncapi",
        tags=["docs"],
        summary="AsyncAPI document (HTML)",
        response_class=HTMLResponse,
        dependencies=public,
    )
    async def asyncapi_html() -> HTMLResponse:
        page = _asyncapi_page(f"{title} AsyncAPI", _RELATIVE_ASSETS, "asyncapi.json")
        return HTMLResponse(page)
