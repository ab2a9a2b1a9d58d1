"""Every event type this build knows, and the parser consumers read messages with."""

from __future__ import annotations

import json
from typing import Any

from shared.contract import dispatch, intake, tracking
from shared.contract.envelope import Envelope, EventPayload, envelope_of

EVENT_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    (cls.TYPE, cls.VERSION): cls
    for module in (intake, dispatch, tracking)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, EventPayload) and "TYPE" in vars(cls)
}


class UnknownEventType(Exception):
    """An event type/version this build does not know; consumers skip it."""


def payload_class(event_type: str, version: int) -> type[EventPayload]:
    cls = EVENT_TYPES.get((event_type, version))
    if cls is None:
        raise UnknownEventType(f"{event_type} v{version}")
    return cls


def parse_event(raw: bytes | str | dict[str, Any]) -> Envelope[Any]:
    """Parse and validate an envelope and its payload.

    Raises ``pydantic.ValidationError`` (or ``ValueError`` for bad JSON) for a malformed
    message — a deterministic failure — and ``UnknownEventType`` for a type we do not know.
    """
    data = raw if isinstance(raw, dict) else json.loads(raw)
    head = Envelope[Any].model_validate(data)  # the payload is checked below, by its class
    return envelope_of(payload_class(head.type, head.version)).model_validate(data)
