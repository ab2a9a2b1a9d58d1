"""督办 integrity checks over HTTP (``handlers.integrity``; definitions in
``domain.integrity`` and ``domain.churn``):

``GET /kpi/integrity?from=&to=&area=&rework_days=7&last_share=0.1&min_hops=3&proxy_share=0.5
&min_ratings=5&evidence_limit=20`` — per department: premature closes (过早办结), dispatch churn
(推诿空转), last-minute sign-for (临期签收) and last-minute progress (签收后临期才处置), proxy
ratings (网格员代评); per pair of departments the churning cases; per community the proxy
ratings. Each finding: examined, flagged, rate, ``alert`` and evidence (case numbers, times,
the events that show it; at most ``evidence_limit``, ``total`` the whole count).

Street, district and supervisors (考核), in their subtree. Period and area as the other KPIs;
a threshold out of its bounds is refused (422, named) and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from services.tracking.api.kpi import Area, RateOut, Within, known_params
from services.tracking.domain.churn import PairChurn
from services.tracking.domain.integrity import LABELS, Evidence, Finding, Thresholds
from services.tracking.handlers import integrity as handler
from shared.auth import Principal, Role, allow
from shared.clock import BEIJING
from shared.service import Pool

router = APIRouter(prefix="/kpi", tags=["kpi"])
Examiners = Annotated[Principal, Depends(allow(Role.STREET, Role.DISTRICT, Role.SUPERVISOR))]


class StepOut(BaseModel):
    type: str = Field(description="event type (case.resolved…), or deadline.sign_for/resolve")
    at: datetime
    detail: str | None = None


class EvidenceOut(BaseModel):
    case_id: str
    case_no: str
    department_id: str | None
    summary_zh: str
    summary_en: str
    steps: list[StepOut]

    @classmethod
    def of(cls, e: Evidence) -> EvidenceOut:
        return cls(
            case_id=e.case_id,
            case_no=e.case_no,
            department_id=e.department_id,
            summary_zh=e.summary_zh,
            summary_en=e.summary_en,
            steps=[StepOut(type=s.type, at=s.at, detail=s.detail) for s in e.steps],
        )


class EvidenceListOut(BaseModel):
    total: int = Field(description="every flagged item; items are capped at evidence_limit")
    items: list[EvidenceOut]


class FindingOut(BaseModel):
    kind: str
    label_zh: str
    label_en: str
    examined: int = Field(description="what the check looked at (resolutions, sign-fors…)")
    flagged: int
    rate: RateOut = Field(description="flagged / examined")
    alert: bool = Field(description="worth a supervisor's look (proxy ratings: over threshold)")
    all_five_stars: bool | None = Field(
        default=None, description="proxy ratings only: every proxy rating gave 5 stars"
    )
    evidence: EvidenceListOut

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        zh, en = LABELS[f.kind]
        return cls(
            kind=f.kind,
            label_zh=zh,
            label_en=en,
            examined=f.examined,
            flagged=f.flagged,
            rate=RateOut.of(f.rate),
            alert=f.alert,
            all_five_stars=f.all_five_stars,
            evidence=EvidenceListOut(
                total=f.flagged, items=[EvidenceOut.of(e) for e in f.evidence]
            ),
        )


class DepartmentOut(BaseModel):
    department_id: str
    name: str | None
    flagged: int = Field(description="flagged items over every check")
    findings: dict[str, FindingOut] = Field(description="per kind, every kind present")


class PairOut(BaseModel):
    departments: list[str]
    names: list[str | None]
    cases: int = Field(description="churning cases handed between the two")
    hops: int = Field(description="hand-offs between the two in those cases")
    evidence: EvidenceListOut

    @classmethod
    def of(cls, p: PairChurn, names: dict[str, str]) -> PairOut:
        return cls(
            departments=list(p.departments),
            names=[names.get(d) for d in p.departments],
            cases=p.cases,
            hops=p.hops,
            evidence=EvidenceListOut(total=p.cases, items=[EvidenceOut.of(e) for e in p.evidence]),
        )


class CommunityOut(BaseModel):
    area_path: str
    proxy_rating: FindingOut


class ThresholdsOut(BaseModel):
    rework_days: int
    last_share: float
    min_hops: int
    proxy_share: float
    min_ratings: int
    evidence_limit: int


class IntegrityOut(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    as_of: datetime
    thresholds: ThresholdsOut
    departments: list[DepartmentOut] = Field(description="most flagged first")
    churn_pairs: list[PairOut] = Field(description="most churning cases first")
    communities: list[CommunityOut]


async def thresholds(
    rework_days: Annotated[int, Query(description="premature close: days, 1–90")] = 7,
    last_share: Annotated[float, Query(description="last share of a window, 0.01–0.5")] = 0.1,
    min_hops: Annotated[int, Query(description="churn: hand-offs, 2–20")] = 3,
    proxy_share: Annotated[float, Query(description="proxy ratings share, 0–1")] = 0.5,
    min_ratings: Annotated[int, Query(description="proxy ratings: at least, 1–1000")] = 5,
    evidence_limit: Annotated[int, Query(description="evidence per finding, 0–200")] = 20,
) -> Thresholds:
    return Thresholds(rework_days, last_share, min_hops, proxy_share, min_ratings, evidence_limit)


PARAMS = ("from", "to", "area", *Thresholds.__dataclass_fields__)


@router.get(
    "/integrity",
    response_model=IntegrityOut,
    response_model_by_alias=True,
    summary="督办 integrity checks: KPI gaming per department, with evidence",
    dependencies=[known_params(*PARAMS)],
)
async def integrity(
    db: Pool,
    who: Examiners,
    within: Within,
    t: Annotated[Thresholds, Depends(thresholds)],
    area: Area = None,
) -> IntegrityOut:
    r = await handler.integrity(db, who, within, area=area, thresholds=t, now=datetime.now(BEIJING))
    return IntegrityOut(
        start=r.period.start,
        end=r.period.end,
        as_of=r.as_of,
        thresholds=ThresholdsOut(**{k: getattr(t, k) for k in Thresholds.__dataclass_fields__}),
        departments=[
            DepartmentOut(
                department_id=d.department_id,
                name=d.name,
                flagged=d.flagged,
                findings={k: FindingOut.of(f) for k, f in d.findings.items()},
            )
            for d in r.departments
        ],
        churn_pairs=[PairOut.of(p, r.names) for p in r.pairs],
        communities=[
            CommunityOut(area_path=k, proxy_rating=FindingOut.of(f))
            for k, f in r.communities.items()
        ],
    )
