"""The events intake publishes: a case reported in a grid (网格发现), whistled by the
community (社区吹哨), checked, closed, rated, reopened, merged, photographed."""

from __future__ import annotations

from uuid import UUID

from pydantic import AwareDatetime, Field

from shared.contract.envelope import CaseFacts, Location, Topics
from shared.contract.values import CaseSource, Level, PhotoKind, RatingChannel, Resolution


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
    source: CaseSource = Field(
        default=CaseSource.GRID_PATROL,
        description="where the case came from (案件来源); absent from older events: grid_patrol",
    )


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
    level: Level = Field(
        default=Level.COMMUNITY,
        description="who blows the whistle: community (社区), street (街道) or "
        "district (区) when the level below cannot settle it",
    )


class CaseClosed(CaseFacts):
    """结案: verified on site and closed — or fixed on the spot by the grid worker."""

    TYPE = "case.closed"
    VERSION = 1
    TOPIC = Topics.INTAKE
    note: str | None = None
    resolution: Resolution = Field(
        default=Resolution.VERIFIED,
        description="verified (核查通过) or on_spot (随手做, 小事不出网格)",
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
    channel: RatingChannel = Field(description="grid_worker (网格员代录) or link (一次性评价链接)")


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
    kind: PhotoKind = Field(description="before (整改前) or after (整改后)")
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
