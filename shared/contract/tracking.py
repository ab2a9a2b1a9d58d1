"""The events tracking publishes: the clocks of each assignment — started, stopped, warned
(预警), overdue (超时), escalated (逐级上报) — and the supervisors' urgings (督办)."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from shared.contract.envelope import AssignmentFacts, Topics
from shared.contract.values import Clock, Level


class CaseOverdue(AssignmentFacts):
    """A clock passed its deadline with the step not done (超时)."""

    TYPE = "case.overdue"
    VERSION = 1
    TOPIC = Topics.TRACKING
    department_name: str
    clock: Clock
    due_at: AwareDatetime


class CaseClockStarted(AssignmentFacts):
    """A deadline started running for an assignment (e.g. the sign-for limit, 签收时限)."""

    TYPE = "case.clock_started"
    VERSION = 1
    TOPIC = Topics.TRACKING
    clock: Clock
    due_at: AwareDatetime


class CaseClockStopped(AssignmentFacts):
    """A running deadline stopped because the step was done (or the case closed)."""

    TYPE = "case.clock_stopped"
    VERSION = 1
    TOPIC = Topics.TRACKING
    clock: Clock
    because: str = Field(description="the event type that stopped it")


class CaseDeadlineWarning(AssignmentFacts):
    """预警 (黄灯): a clock has used up its warning share of the time allowed (e.g. 80 %) and
    the step is still not done."""

    TYPE = "case.deadline_warning"
    VERSION = 1
    TOPIC = Topics.TRACKING
    department_name: str
    clock: Clock
    due_at: AwareDatetime = Field(description="the deadline the warning is about")


class CaseEscalated(AssignmentFacts):
    """逐级上报: an overdue clock reached a step of its escalation ladder (community → street →
    district); the last level hears it again at set intervals while the step stays undone."""

    TYPE = "case.escalated"
    VERSION = 1
    TOPIC = Topics.TRACKING
    department_name: str
    clock: Clock
    due_at: AwareDatetime = Field(description="the deadline that was missed")
    level: Level = Field(description="who it reaches")
    step: int = Field(ge=0, description="0, 1, 2… in firing order")
    repeat: int = Field(
        ge=0, description="0 for a step of the ladder, n for the n-th repetition of its last step"
    )


class CaseUrged(AssignmentFacts):
    """督办: a supervisor (or the community, street or district over the case) hurries a
    department on one of its assignments; the department hears it."""

    TYPE = "case.urged"
    VERSION = 1
    TOPIC = Topics.TRACKING
    department_name: str
    note: str
    count: int = Field(ge=1, description="the n-th urging of this assignment")
