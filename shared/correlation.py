"""Context that flows from an HTTP request or a consumed event into every event written
and every log line: correlation id (the request that started it all) and causation id
(the event being handled)."""

from __future__ import annotations

from contextvars import ContextVar
from uuid import UUID, uuid4

from asgi_correlation_id.context import correlation_id as _http_correlation_id

_event_correlation_id: ContextVar[str | None] = ContextVar("event_correlation_id", default=None)
causation_id: ContextVar[UUID | None] = ContextVar("causation_id", default=None)


def current_correlation_id() -> str:
    """The correlation id of the work in progress; a new one if none was started."""
    return _event_correlation_id.get() or _http_correlation_id.get() or uuid4().hex


def set_event_context(correlation: str | None, causation: UUID | None) -> None:
    """Bind the context of a consumed event (called by the consumer wrapper)."""
    _event_correlation_id.set(correlation)
    causation_id.set(causation)
