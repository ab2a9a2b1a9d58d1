"""The event contract: one envelope, one Pydantic payload model per event type.

Topics are per producer, keyed by ``case_id``, so one case's events from one producer stay
in order. Names and versions below are the contract; change a payload incompatibly only by
adding a new version.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.correlation import causation_id, current_correlation_id


class Topics:
    """Kafka topic names. ``.v1`` is the topic layout's version, not an event's."""

    INTAKE = "whistle.intake.events.v1"
    DISPATCH = "whistle.dispatch.events.v1"
    TRACKING = "whistle.tracking.events.v1"
    NOTIFY = "whistle.notify.events.v1"
    DEAD_LETTER = "whistle.deadletter.v1"

    ALL: ClassVar[tuple[str, ...]] = (INTAKE, DISPATCH, TRACKING, NOTIFY, DEAD_LETTER)


class Priority(StrEnum):
    """急事急议、小事小议: urgency decides the clocks."""

    URGENT = "urgent"
    NORMAL = "normal"
    MINOR = "minor"


class Actor(BaseModel):
    """Who did it: the acting subject and role (filled from the bearer token once auth lands)."""

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


P = TypeVar("P", bound=BaseModel)


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
        return EVENT_TYPES[(self.type, self.version)].TOPIC

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


# --- intake ---------------------------------------------------------------------------


class CaseReported(CaseFacts):
    """网格发现: a grid worker reported a case in his grid."""

    TYPE = "case.reported"
    VERSION = 1
    TOPIC = Topics.INTAKE
    grid_code: str
    description: str
    location: Location
    reporter: str
    reported_at: AwareDatetime


class CaseWhistled(CaseFacts):
    """社区吹哨: the community escalated the case to the departments."""

    TYPE = "case.whistled"
    VERSION = 1
    TOPIC = Topics.INTAKE
    grid_code: str
    description: str
    location: Location
    departments: list[str] = Field(default_factory=list, description="departments named")
    note: str | None = None
    level: str = Field(
        default="community",
        description="who blows the whistle: community (社区), street (街道) or "
        "district (区) when the level below cannot settle it",
    )


class CaseClosed(CaseFacts):
    """结案: verified on site and closed — or fixed on the spot by the grid worker."""

    TYPE = "case.closed"
    VERSION = 1
    TOPIC = Topics.INTAKE
    note: str | None = None
    resolution: str = Field(
        default="verified", description="verified (核查通过) or on_spot (随手做, 小事不出网格)"
    )


class CaseReworkRequested(CaseFacts):
    """返工: the on-site check failed; the case goes back to the department(s)."""

    TYPE = "case.rework_requested"
    VERSION = 1
    TOPIC = Topics.INTAKE
    reason: str
    departments: list[str] = Field(
        default_factory=list, description="the departments whose result failed the check"
    )


class CaseRated(CaseFacts):
    """群众评单: the resident's rating of the outcome."""

    TYPE = "case.rated"
    VERSION = 1
    TOPIC = Topics.INTAKE
    score: int = Field(ge=1, le=5)
    comment: str | None = None
    channel: str = Field(description="grid_worker (网格员代录) or link (一次性评价链接)")


class CaseReopened(CaseFacts):
    """A closed case reopened within the allowed window."""

    TYPE = "case.reopened"
    VERSION = 1
    TOPIC = Topics.INTAKE
    reason: str


class CasePhotoAdded(CaseFacts):
    """A photo was attached to the case: before (整改前) by the grid worker or community, or
    after (整改后) by the grid worker fixing it on the spot or by an assigned department
    showing its result. Dispatch keeps the departments' after-photos so that a resolution
    (办结) can cite them."""

    TYPE = "case.photo_added"
    VERSION = 1
    TOPIC = Topics.INTAKE
    photo_id: UUID
    kind: str = Field(description="before (整改前) or after (整改后)")
    department_id: str | None = Field(
        default=None, description="the uploader's department, when a department uploaded it"
    )


class CaseMerged(CaseFacts):
    """A duplicate report merged into its primary case (the duplicate is closed)."""

    TYPE = "case.merged"
    VERSION = 1
    TOPIC = Topics.INTAKE
    primary_case_id: UUID
    primary_case_no: str


# --- dispatch -------------------------------------------------------------------------


class CaseDispatched(CaseFacts):
    """派单: an assignment was made to a department."""

    TYPE = "case.dispatched"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    assignment_id: UUID
    department_id: str
    department_name: str
    role: str = Field(description="lead (主办) or co (协办)")
    rule_id: int | None
    reason: str
    description: str
    rework: bool = Field(default=False, description="a rework (返工) of an earlier assignment")
    basis: str = Field(
        default="rule",
        description=(
            "what chose the department: named (吹哨点名), rule (派单规则), area_default (分类默认"
            "责任主体, e.g. the compound's property company), liaison (包联单位), manual (人工派单), "
            "transfer (转办) or rework (返工)"
        ),
    )


class CaseUnroutable(CaseFacts):
    """No rule matched: the case waits for manual dispatch by the community/street command."""

    TYPE = "case.unroutable"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    reason: str


class CaseSignedFor(CaseFacts):
    """报到: the department signed for its assignment."""

    TYPE = "case.signed_for"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    assignment_id: UUID
    department_id: str


class CaseResolved(CaseFacts):
    """The department reported the case handled, with its result."""

    TYPE = "case.resolved"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    assignment_id: UUID
    department_id: str
    result: str
    case_resolved: bool = Field(
        default=True,
        description="the case as a whole is now resolved: the lead (主办) resolved and every "
        "co-handler (协办) reported; false while others are still working",
    )
    photo_ids: list[UUID] = Field(
        default_factory=list, description="after-photos (整改后) the department cites"
    )


class CaseRejected(CaseFacts):
    """退单: the department pushed back a misrouted assignment, with its reason."""

    TYPE = "case.rejected"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    assignment_id: UUID
    department_id: str
    reason: str


class CaseTransferred(CaseFacts):
    """转办: the department handed its assignment on to another department."""

    TYPE = "case.transferred"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    assignment_id: UUID
    department_id: str
    to_department_id: str
    reason: str


class CaseProgressed(CaseFacts):
    """A progress note from the department handling the case."""

    TYPE = "case.progressed"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    assignment_id: UUID
    department_id: str
    note: str


class CaseExtensionRequested(CaseFacts):
    """延期申请: the department asks for more time to resolve, with a reason."""

    TYPE = "case.extension_requested"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID
    assignment_id: UUID
    department_id: str
    department_name: str | None = Field(
        default=None,
        description="the department's name (added later: absent from older "
        "events, so readers fall back to department_id)",
    )
    days: int = Field(ge=1, description="extra working days asked for")
    reason: str


class CaseExtensionDecided(CaseFacts):
    """A supervisor approved (批准) or refused (驳回) an extension request; the actor is the
    supervisor. Tracking moves the resolution deadline by ``days`` when approved."""

    TYPE = "case.extension_decided"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID
    assignment_id: UUID
    department_id: str
    department_name: str | None = Field(
        default=None,
        description="the department's name (added later: absent from older "
        "events, so readers fall back to department_id)",
    )
    approved: bool
    days: int = Field(ge=0, description="extra working days granted (0 when refused)")
    comment: str | None = None


class PauseKind(StrEnum):
    """Why a case's clock may stand still, as the digital-city standard names it."""

    HANG = "hang"  # 挂账: cannot be solved now (funds, planning, a court case…), kept on the books
    DEFER = "defer"  # 缓办: handling put off for a stated reason (season, weather, an event…)


class CasePauseRequested(CaseFacts):
    """挂账/缓办申请: the department asks for its resolution clock to stand still, with a
    reason (after 报到, one pending request at a time)."""

    TYPE = "case.pause_requested"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID
    assignment_id: UUID
    department_id: str
    department_name: str | None = Field(
        default=None,
        description="the department's name (added later: absent from older "
        "events, so readers fall back to department_id)",
    )
    kind: PauseKind
    reason: str


class CasePauseDecided(CaseFacts):
    """A supervisor approved (批准) or refused (驳回) a pause request; the actor is the
    supervisor. When approved, the assignment's running clocks stand still from this event's
    ``occurred_at`` until ``case.resumed``."""

    TYPE = "case.pause_decided"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID
    assignment_id: UUID
    department_id: str
    department_name: str | None = Field(
        default=None,
        description="the department's name (added later: absent from older "
        "events, so readers fall back to department_id)",
    )
    kind: PauseKind
    reason: str
    approved: bool
    comment: str | None = None


class CaseResumed(CaseFacts):
    """恢复办理: an approved pause ended (the department or a supervisor resumed the work);
    the clocks run again from this event's ``occurred_at``, their deadlines moved by the time
    they stood still. A pause still running when its assignment is resolved (办结) or
    transferred (转办) ends with it: no case.resumed follows (that event stops the clocks)."""

    TYPE = "case.resumed"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID = Field(description="the pause request that ends")
    assignment_id: UUID
    department_id: str
    department_name: str | None = Field(
        default=None,
        description="the department's name (added later: absent from older "
        "events, so readers fall back to department_id)",
    )
    note: str | None = None


# --- tracking -------------------------------------------------------------------------


class CaseOverdue(CaseFacts):
    """A clock passed its deadline with the step not done (超时)."""

    TYPE = "case.overdue"
    VERSION = 1
    TOPIC = Topics.TRACKING
    assignment_id: UUID
    department_id: str
    department_name: str
    clock: str = Field(description="which clock: sign_for (签收/报到) or resolve")
    due_at: AwareDatetime


class CaseClockStarted(CaseFacts):
    """A deadline started running for an assignment (e.g. the sign-for limit, 签收时限)."""

    TYPE = "case.clock_started"
    VERSION = 1
    TOPIC = Topics.TRACKING
    assignment_id: UUID
    department_id: str
    clock: str
    due_at: AwareDatetime


class CaseClockStopped(CaseFacts):
    """A running deadline stopped because the step was done (or the case closed)."""

    TYPE = "case.clock_stopped"
    VERSION = 1
    TOPIC = Topics.TRACKING
    assignment_id: UUID
    department_id: str
    clock: str
    because: str = Field(description="the event type that stopped it")


class CaseDeadlineWarning(CaseFacts):
    """预警 (黄灯): a clock has used up its warning share of the time allowed (e.g. 80 %) and
    the step is still not done."""

    TYPE = "case.deadline_warning"
    VERSION = 1
    TOPIC = Topics.TRACKING
    assignment_id: UUID
    department_id: str
    department_name: str
    clock: str = Field(description="sign_for (签收/报到), on_site (到场) or resolve (办结)")
    due_at: AwareDatetime = Field(description="the deadline the warning is about")


class CaseEscalated(CaseFacts):
    """逐级上报: an overdue clock reached a step of its escalation ladder (community → street →
    district); the last level hears it again at set intervals while the step stays undone."""

    TYPE = "case.escalated"
    VERSION = 1
    TOPIC = Topics.TRACKING
    assignment_id: UUID
    department_id: str
    department_name: str
    clock: str = Field(description="sign_for (签收/报到), on_site (到场) or resolve (办结)")
    due_at: AwareDatetime = Field(description="the deadline that was missed")
    level: str = Field(
        description="who it reaches: community (社区), street (街道) or district (区)"
    )
    step: int = Field(ge=0, description="0, 1, 2… in firing order")
    repeat: int = Field(
        ge=0, description="0 for a step of the ladder, n for the n-th repetition of its last step"
    )


class CaseUrged(CaseFacts):
    """督办: a supervisor (or the community, street or district over the case) hurries a
    department on one of its assignments; the department hears it."""

    TYPE = "case.urged"
    VERSION = 1
    TOPIC = Topics.TRACKING
    assignment_id: UUID
    department_id: str
    department_name: str
    note: str
    count: int = Field(ge=1, description="the n-th urging of this assignment")


EVENT_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    (cls.TYPE, cls.VERSION): cls
    for cls in (
        CaseReported,
        CaseWhistled,
        CaseClosed,
        CaseReworkRequested,
        CaseRated,
        CaseReopened,
        CaseMerged,
        CasePhotoAdded,
        CaseDispatched,
        CaseUnroutable,
        CaseSignedFor,
        CaseResolved,
        CaseRejected,
        CaseTransferred,
        CaseProgressed,
        CaseExtensionRequested,
        CaseExtensionDecided,
        CasePauseRequested,
        CasePauseDecided,
        CaseResumed,
        CaseOverdue,
        CaseClockStarted,
        CaseClockStopped,
        CaseDeadlineWarning,
        CaseEscalated,
        CaseUrged,
    )
}


def new_event(
    payload: EventPayload,
    *,
    case_id: UUID,
    producer: str,
    occurred_at: datetime | None = None,
    actor: Actor | None = None,
) -> Envelope[Any]:
    """Wrap a payload, carrying the current correlation and causation ids along."""
    return Envelope[type(payload)](  # type: ignore[misc]
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


class UnknownEventType(Exception):
    """An event type/version this build does not know; consumers skip it."""


def parse_event(raw: bytes | str | dict) -> Envelope[Any]:
    """Parse and validate an envelope and its payload.

    Raises ``pydantic.ValidationError`` (or ``ValueError`` for bad JSON) for a malformed
    message — a deterministic failure — and ``UnknownEventType`` for a type we do not know.
    """
    data = raw if isinstance(raw, dict) else json.loads(raw)
    head = Envelope[dict[str, Any]].model_validate(data)
    cls = EVENT_TYPES.get((head.type, head.version))
    if cls is None:
        raise UnknownEventType(f"{head.type} v{head.version}")
    return Envelope[cls].model_validate(data)  # type: ignore[valid-type]
