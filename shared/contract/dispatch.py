"""The events dispatch publishes: the departments' assignments (派单) and what each department
does with its own — sign for it (报到), report progress, resolve, reject, transfer, ask for
more time or a pause."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from shared.contract.envelope import AssignmentFacts, CaseFacts, Topics, name_added_later
from shared.contract.values import AssignmentRole, DispatchBasis, PauseKind


class CaseDispatched(AssignmentFacts):
    """派单: an assignment was made to a department."""

    TYPE = "case.dispatched"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    department_name: str
    role: AssignmentRole = Field(description="lead (主办) or co (协办)")
    rule_id: int | None
    reason: str
    description: str
    rework: bool = Field(default=False, description="a rework (返工) of an earlier assignment")
    basis: DispatchBasis = Field(
        default=DispatchBasis.RULE,
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


class CaseSignedFor(AssignmentFacts):
    """报到: the department signed for its assignment."""

    TYPE = "case.signed_for"
    VERSION = 1
    TOPIC = Topics.DISPATCH


class CaseResolved(AssignmentFacts):
    """The department reported the case handled, with its result."""

    TYPE = "case.resolved"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    result: str
    case_resolved: bool = Field(
        default=True,
        description="the case as a whole is now resolved: the lead (主办) resolved and every "
        "co-handler (协办) reported; false while others are still working",
    )
    photo_ids: list[UUID] = Field(
        default_factory=list, description="after-photos (整改后) the department cites"
    )


class CaseRejected(AssignmentFacts):
    """退单: the department pushed back a misrouted assignment, with its reason."""

    TYPE = "case.rejected"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    reason: str


class CaseTransferred(AssignmentFacts):
    """转办: the department handed its assignment on to another department."""

    TYPE = "case.transferred"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    to_department_id: str
    reason: str


class CaseProgressed(AssignmentFacts):
    """A progress note from the department handling the case."""

    TYPE = "case.progressed"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    note: str


class CaseExtensionRequested(AssignmentFacts):
    """延期申请: the department asks for more time to resolve, with a reason."""

    TYPE = "case.extension_requested"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID
    department_name: str | None = name_added_later()
    days: int = Field(ge=1, description="extra working days asked for")
    reason: str


class CaseExtensionDecided(AssignmentFacts):
    """A supervisor approved (批准) or refused (驳回) an extension request; the actor is the
    supervisor. Tracking moves the resolution deadline by ``days`` when approved."""

    TYPE = "case.extension_decided"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID
    department_name: str | None = name_added_later()
    approved: bool
    days: int = Field(ge=0, description="extra working days granted (0 when refused)")
    comment: str | None = None


class CasePauseRequested(AssignmentFacts):
    """挂账/缓办申请: the department asks for its resolution clock to stand still, with a
    reason (after 报到, one pending request at a time)."""

    TYPE = "case.pause_requested"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID
    department_name: str | None = name_added_later()
    kind: PauseKind
    reason: str


class CasePauseDecided(AssignmentFacts):
    """A supervisor approved (批准) or refused (驳回) a pause request; the actor is the
    supervisor. When approved, the assignment's running clocks stand still from this event's
    ``occurred_at`` until ``case.resumed``."""

    TYPE = "case.pause_decided"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID
    department_name: str | None = name_added_later()
    kind: PauseKind
    reason: str
    approved: bool
    comment: str | None = None


class CaseResumed(AssignmentFacts):
    """恢复办理: an approved pause ended (the department or a supervisor resumed the work);
    the clocks run again from this event's ``occurred_at``, their deadlines moved by the time
    they stood still. A pause still running when its assignment is resolved (办结) or
    transferred (转办) ends with it: no case.resumed follows (that event stops the clocks)."""

    TYPE = "case.resumed"
    VERSION = 1
    TOPIC = Topics.DISPATCH
    request_id: UUID = Field(description="the pause request that ends")
    department_name: str | None = name_added_later()
    note: str | None = None
