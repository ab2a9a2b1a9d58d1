"""The event contract between the four services: one envelope, one Pydantic payload model per
event type, the values they carry and how to read an area path.

- ``envelope``: the envelope, topics, the payloads' bases (``CaseFacts``, ``AssignmentFacts``)
- ``values``: the enums events carry (priority, clock, level, role, …)
- ``intake``, ``dispatch``, ``tracking``: the events each producer publishes
- ``registry``: every known (type, version) and ``parse_event``
- ``areas``: area paths (``YA/YA01/…``): ``within``, ``ancestors``, ``depth``

Import from ``shared.contract``; the modules are how it is kept, not how it is used.
"""

from shared.contract import areas
from shared.contract.dispatch import (
    CaseDispatched,
    CaseExtensionDecided,
    CaseExtensionRequested,
    CasePauseDecided,
    CasePauseRequested,
    CaseProgressed,
    CaseRejected,
    CaseResolved,
    CaseResumed,
    CaseSignedFor,
    CaseTransferred,
    CaseUnroutable,
)
from shared.contract.envelope import (
    Actor,
    AssignmentFacts,
    CaseFacts,
    Envelope,
    EventPayload,
    Location,
    Topics,
    new_event,
)
from shared.contract.intake import (
    CaseClosed,
    CaseMerged,
    CasePhotoAdded,
    CaseRated,
    CaseReopened,
    CaseReported,
    CaseReworkRequested,
    CaseWhistled,
)
from shared.contract.registry import (
    EVENT_TYPES,
    STATUS_OF_EVENT,
    UnknownEventType,
    events_on,
    parse_event,
    payload_class,
    status_of,
)
from shared.contract.tracking import (
    CaseClockStarted,
    CaseClockStopped,
    CaseDeadlineWarning,
    CaseEscalated,
    CaseOverdue,
    CaseResolutionForecast,
    CaseUrged,
    ForecastBasis,
)
from shared.contract.values import (
    AssignmentRole,
    Clock,
    DispatchBasis,
    Level,
    PauseKind,
    PhotoKind,
    Priority,
    RatingChannel,
    Resolution,
    CaseSource,
)

__all__ = [
    "EVENT_TYPES",
    "STATUS_OF_EVENT",
    "Actor",
    "AssignmentFacts",
    "AssignmentRole",
    "CaseClockStarted",
    "CaseClockStopped",
    "CaseClosed",
    "CaseDeadlineWarning",
    "CaseDispatched",
    "CaseEscalated",
    "CaseExtensionDecided",
    "CaseExtensionRequested",
    "CaseFacts",
    "CaseMerged",
    "CaseOverdue",
    "CasePauseDecided",
    "CasePauseRequested",
    "CasePhotoAdded",
    "CaseProgressed",
    "CaseRated",
    "CaseRejected",
    "CaseReopened",
    "CaseReported",
    "CaseResolutionForecast",
    "CaseResolved",
    "CaseResumed",
    "CaseReworkRequested",
    "CaseSignedFor",
    "CaseSource",
    "CaseTransferred",
    "CaseUnroutable",
    "CaseUrged",
    "CaseWhistled",
    "Clock",
    "DispatchBasis",
    "Envelope",
    "EventPayload",
    "ForecastBasis",
    "Level",
    "Location",
    "PauseKind",
    "PhotoKind",
    "Priority",
    "RatingChannel",
    "Resolution",
    "Topics",
    "UnknownEventType",
    "areas",
    "events_on",
    "new_event",
    "parse_event",
    "payload_class",
    "status_of",
]
