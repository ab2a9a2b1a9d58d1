"""Every event type this build knows, and the parser consumers read messages with."""

from __future__ import annotations

import json
from typing import Any

from shared.contract import dispatch, intake, tracking
from shared.lifecycle import CaseStatus
from shared.contract.envelope import Envelope, EventPayload, envelope_of

EVENT_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    (cls.TYPE, cls.VERSION): cls
    for module in (intake, dispatch, tracking)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, EventPayload) and "TYPE" in vars(cls)
}


def events_on(topic: str) -> list[type[EventPayload]]:
    """The event classes published on ``topic`` (a producer's own topic): what its service
    documents as its publications."""
    return [cls for cls in EVENT_TYPES.values() if topic == cls.TOPIC]


# The status a case reaches when an event of this class happens (the lifecycle's vocabulary;
# the other events leave the status where it is).
STATUS_OF_EVENT: dict[type[EventPayload], CaseStatus] = {
    intake.CaseReported: CaseStatus.REPORTED,
    intake.CaseWhistled: CaseStatus.WHISTLED,
    dispatch.CaseUnroutable: CaseStatus.UNROUTABLE,
    dispatch.CaseDispatched: CaseStatus.DISPATCHED,
    dispatch.CaseSignedFor: CaseStatus.SIGNED_FOR,
    dispatch.CaseResolved: CaseStatus.RESOLVED,
    intake.CaseReworkRequested: CaseStatus.REWORK,
    intake.CaseClosed: CaseStatus.CLOSED,
    intake.CaseMerged: CaseStatus.CLOSED,
    intake.CaseReopened: CaseStatus.REOPENED,
}
_STATUS_OF_TYPE = {cls.TYPE: status for cls, status in STATUS_OF_EVENT.items()}


def status_of(payload: EventPayload) -> CaseStatus | None:
    """The status the event's case reaches, if the event moves it (any version of the event:
    a v2 of case.closed closes the case as v1 does)."""
    return _STATUS_OF_TYPE.get(payload.TYPE)


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
