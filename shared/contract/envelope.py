"""One envelope for every event, and the bases of the payloads.

Topics are per producer, keyed by ``case_id``, so one case's events from one producer stay
in order. Names and versions are the contract; change a payload incompatibly only by adding
a new version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar, cast
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contract.values import Priority
from shared.correlation import causation_id, current_correlation_id


class Topics:
    """Kafka topic names. ``.v1`` is the topic layout's version, not an event's."""

    INTAKE = "whistle.intake.events.v1"
    DISPATCH = "whistle.dispatch.events.v1"
    TRACKING = "whistle.tracking.events.v1"
    NOTIFY = "whistle.notify.events.v1"
    DEAD_LETTER = "whistle.deadletter.v1"

    ALL: ClassVar[tuple[str, ...]] = (INTAKE, DISPATCH, TRACKING, NOTIFY, DEAD_LETTER)


class Actor(BaseModel):
    """Who did it: the acting subject and role (from the bearer token)."""

    model_config = ConfigDict(frozen=True)
    subject: str
    role: str
    name: str | None = None


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=500)


class EventPayload(BaseModel):
    """Base of every payload. Consumers ignore fields they do not know (forward compatible)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    TYPE: ClassVar[str]
    VERSION: ClassVar[int]
    TOPIC: ClassVar[str]


class CaseFacts(EventPayload):
    """What every case event carries, so that no consumer needs the jurisdiction tree."""

    case_no: str
    area_path: str = Field(description="codes from district to grid joined by '/'")
    category: str
    priority: Priority


class AssignmentFacts(CaseFacts):
    """An event about one department's assignment (派单) of the case."""

    assignment_id: UUID
    department_id: str


def name_added_later() -> Any:
    """``department_name`` on events that did not carry it at first."""
    return Field(
        default=None,
        description="the department's name (added later: absent from older "
        "events, so readers fall back to department_id)",
    )


# Covariant: an Envelope[CaseResolved] is an Envelope[AssignmentFacts] (envelopes are frozen).
P = TypeVar("P", bound=BaseModel, covariant=True)


class Envelope(BaseModel, Generic[P]):
    model_config = ConfigDict(frozen=True)

    event_id: UUID
    type: str
    version: int
    case_id: UUID
    occurred_at: AwareDatetime
    producer: str
    correlation_id: str | None = None
    causation_id: UUID | None = None
    actor: Actor | None = None
    payload: P

    @property
    def topic(self) -> str:
        from shared.contract.registry import payload_class  # the registry imports this module

        return payload_class(self.type, self.version).TOPIC

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


E = TypeVar("E", bound=EventPayload)


def envelope_of(payload: type[E]) -> type[Envelope[E]]:
    """``Envelope[payload]`` for a payload class known only at run time (pydantic builds and
    caches the parametrised model)."""
    return cast("type[Envelope[E]]", Envelope.__class_getitem__(payload))


def new_event(
    payload: E,
    *,
    case_id: UUID,
    producer: str,
    occurred_at: datetime | None = None,
    actor: Actor | None = None,
) -> Envelope[E]:
    """Wrap a payload, carrying the current correlation and causation ids along."""
    return envelope_of(type(payload))(
        event_id=uuid4(),
        type=payload.TYPE,
        version=payload.VERSION,
        case_id=case_id,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        correlation_id=current_correlation_id(),
        causation_id=causation_id.get(),
        actor=actor,
        payload=payload,
    )
