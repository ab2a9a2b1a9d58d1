"""Every endpoint and dependency of the four services is a coroutine: FastAPI runs a plain
function in a worker thread, a thread hop per request (~5 % of intake's CPU under load,
measured by bench-e2e's profile in issue 14)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

DSN = "postgresql://x@127.0.0.1/x"


def routes(items) -> Iterator[APIRoute]:
    for r in items:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):  # an included router, resolved lazily
            yield from routes(r.original_router.routes)


def plain_functions(dependant: Dependant) -> Iterator[str]:
    call = dependant.call
    if call is not None:
        target = call if inspect.isroutine(call) else type(call).__call__
        if not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)):
            yield f"{getattr(call, '__module__', '?')}.{getattr(call, '__qualname__', call)}"
    for sub in dependant.dependencies:
        yield from plain_functions(sub)


@pytest.mark.parametrize("service", ["intake", "dispatch", "tracking", "notify"])
def test_no_endpoint_or_dependency_runs_in_a_thread(service, monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "embedded")
    monkeypatch.setenv("DATABASE_URL", DSN)
    monkeypatch.setenv("SERVICE_NAME", service)
    app = importlib.import_module(f"services.{service}.main").create_app()
    found = list(routes(app.routes))
    assert len(found) > 5
    plain = sorted({name for r in found for name in plain_functions(r.dependant)})
    assert plain == []
