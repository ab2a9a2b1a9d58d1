"""The events tracking publishes: the clocks of each assignment — started, stopped, warned
(预警), overdue (超时), escalated (逐级上报) — the supervisors' urgings (督办) and each case's
resolution forecast (预计办结时间)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from shared.contract.envelope import AssignmentFacts, CaseFacts, Topics
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


class ForecastBasis(StrEnum):
    """What a resolution forecast (预计办结时间) rests on."""

    HISTORY = "history"  # the department's own resolved cases of the category, recent days
    CATEGORY = "category"  # every department's resolved cases of the category (thin history)
    DEADLINE = "deadline"  # too little history: the pinned resolution deadline itself
    RESOLVED = "resolved"  # nothing left to forecast: when it was resolved


class CaseResolutionForecast(CaseFacts):
    """预计办结时间: when the case will actually be resolved — from the pinned resolution
    deadline and the departments' history for the category, with a range — recomputed on every
    event that changes it (dispatch, sign-for, pause, resumption, extension, resolution,
    rework…). Never before the moment it was made, never a sign-for or on-site limit; once
    resolved, the resolution itself. ``expected_at`` None: no resolution clock runs (none
    dispatched, or every assignment rejected or transferred away)."""

    TYPE = "case.resolution_forecast"
    VERSION = 1
    TOPIC = Topics.TRACKING
    expected_at: AwareDatetime | None = Field(description="the most likely resolution instant")
    earliest: AwareDatetime | None = Field(description="the range's start (20th percentile)")
    latest: AwareDatetime | None = Field(description="the range's end (80th percentile)")
    basis: ForecastBasis | None = Field(description="history, category, deadline or resolved")
    deadline_at: AwareDatetime | None = Field(description="the resolution deadline it is up to")
    sample_size: int = Field(ge=0, description="how many resolved cases it rests on")
    breach_likely: bool = Field(description="likely to miss the deadline (预计超期)")
    breach_probability: float | None = Field(default=None, ge=0, le=1)
    reason_zh: str | None = None
    reason_en: str | None = None
