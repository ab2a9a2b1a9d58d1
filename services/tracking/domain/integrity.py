"""督办 integrity checks: signs that a department games its KPIs, with the evidence.

Facts in, findings out; pure (``now`` and the thresholds passed in). Four checks:

- premature close (过早办结): a department's resolution (办结) followed, within
  ``rework_days``, by rework (返工, naming it or naming no department) or a reopening (重开) of
  its case. Per department: resolutions in the period, how many came back, the rate.
- dispatch churn (推诿空转): ``churn`` — a case handed back and forth by rejections (退单) and
  transfers (转办): a department handed it on and got it again (A→B→A), or ``min_hops`` hand-offs.
- last-minute (临期): ``last_minute`` — signed for (报到) only in the last ``last_share`` of the
  sign-for window, or signed for and then no progress note nor resolution until the last
  ``last_share`` of the resolution window. A step after its deadline is late, not gamed: the
  overdue figures count it. Windows are measured in the clock's own time basis (working or
  calendar time), so a sign-for first thing on Monday morning is not "last minute".
- proxy ratings (代评): ratings entered by the grid worker (channel grid_worker) instead of the
  resident's own link, per department (the departments whose result the case's rating judges)
  and per community; ``alert`` when the share is above ``proxy_share`` with at least
  ``min_ratings`` ratings; ``all_five_stars`` when every proxy rating gave 5 stars.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.tracking.domain.board import span
from services.tracking.domain.kpi import Period, Rate
from services.tracking.domain.timeline import Timeline
from shared.errors import Invalid

# Bilingual labels of the findings, Chinese first.
LABELS: dict[str, tuple[str, str]] = {
    "premature_close": (
        "过早办结（办结后短期内返工或重开）",
        "Premature close (reworked or reopened soon after)",
    ),
    "dispatch_churn": ("推诿空转（退单、转办往返）", "Dispatch churn (reject/transfer ping-pong)"),
    "last_minute_sign_for": ("临期签收", "Signed for only at the last minute"),
    "last_minute_progress": ("签收后临期才处置", "Signed for, then idle until the last minute"),
    "proxy_rating": ("网格员代评", "Ratings entered by the grid worker, not the resident"),
}


@dataclass(frozen=True)
class Thresholds:
    """The checks' parameters, bounded so that a query cannot make them meaningless."""

    rework_days: int = 7
    last_share: float = 0.1
    min_hops: int = 3
    proxy_share: float = 0.5
    min_ratings: int = 5
    evidence_limit: int = 20

    def __post_init__(self) -> None:
        bounds: dict[str, tuple[float, float]] = {
            "rework_days": (1, 90),
            "last_share": (0.01, 0.5),
            "min_hops": (2, 20),
            "proxy_share": (0.0, 1.0),
            "min_ratings": (1, 1000),
            "evidence_limit": (0, 200),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise Invalid(
                    f"{name}：须在 {low:g} 到 {high:g} 之间（收到 {value:g}）",
                    f"{name}: must be between {low:g} and {high:g} (got {value:g})",
                    code="invalid_threshold",
                )


@dataclass(frozen=True)
class Step:
    """One event of the evidence: its type, when, and a short detail (a reason, a score)."""

    type: str
    at: datetime
    detail: str | None = None


@dataclass(frozen=True)
class Evidence:
    case_id: str
    case_no: str
    department_id: str | None
    summary_zh: str
    summary_en: str
    steps: tuple[Step, ...]


@dataclass
class Finding:
    """One check's result for one unit (a department, a community, a pair of departments)."""

    kind: str
    examined: int = 0
    flagged: int = 0
    evidence: list[Evidence] = field(default_factory=list)
    all_five_stars: bool | None = None  # proxy ratings only
    alert: bool = False

    @property
    def rate(self) -> Rate:
        return Rate(self.flagged, self.examined)

    def add(self, evidence: Evidence | None) -> None:
        self.examined += 1
        if evidence is not None:
            self.flagged += 1
            self.evidence.append(evidence)
            self.alert = True


Findings = dict[str, Finding]  # per unit


def _finding(out: dict[str, Findings], unit: str, kind: str) -> Finding:
    return out[unit].setdefault(kind, Finding(kind))


# --- premature close -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """A department's resolution (办结) of its assignment."""

    case_id: str
    case_no: str
    department_id: str
    resolved_at: datetime


@dataclass(frozen=True)
class SentBack:
    """What undoes a result: rework (返工; ``departments`` empty = all) or a reopening (重开)."""

    case_id: str
    type: str  # case.rework_requested | case.reopened
    at: datetime
    departments: tuple[str, ...] = ()
    reason: str | None = None


def premature_closes(
    resolved: Iterable[Resolved],
    sent_back: Iterable[SentBack],
    period: Period,
    now: datetime,
    t: Thresholds,
) -> dict[str, Finding]:
    """Per department: its resolutions in the period and those undone within ``rework_days``."""
    window = timedelta(days=t.rework_days)
    by_case: dict[str, list[SentBack]] = defaultdict(list)
    for s in sent_back:
        if s.at <= now:
            by_case[s.case_id].append(s)
    out: dict[str, Finding] = {}
    for r in sorted(resolved, key=lambda r: r.resolved_at):
        if r.resolved_at not in period or r.resolved_at > now:
            continue
        back = next(
            (
                s
                for s in sorted(by_case[r.case_id], key=lambda s: s.at)
                if r.resolved_at < s.at <= r.resolved_at + window
                and (not s.departments or r.department_id in s.departments)
            ),
            None,
        )
        evidence = None
        if back is not None:
            lag_zh, lag_en = span(back.at - r.resolved_at)
            what_zh, what_en = (
                ("返工", "rework") if back.type == "case.rework_requested" else ("重开", "reopened")
            )
            evidence = Evidence(
                r.case_id,
                r.case_no,
                r.department_id,
                f"办结后 {lag_zh}{what_zh}",
                f"{what_en} {lag_en} after the resolution",
                (Step("case.resolved", r.resolved_at), Step(back.type, back.at, back.reason)),
            )
        out.setdefault(r.department_id, Finding("premature_close")).add(evidence)
    return out


# --- last-minute sign-for and progress ---------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A clock's window: from its start to its deadline, in its own time basis."""

    start: datetime
    due: datetime
    basis: Timeline

    def used(self, at: datetime) -> float:
        """The share of the window used up at ``at``."""
        whole = self.basis.between(self.start, self.due)
        if whole <= timedelta(0):
            return 1.0
        return self.basis.between(self.start, at) / whole


@dataclass(frozen=True)
class Handled:
    """An assignment as far as it got: its sign-for and its first progress note or resolution."""

    case_id: str
    case_no: str
    department_id: str
    dispatched_at: datetime
    signed_for_at: datetime | None
    sign_for: Window | None  # None: no clock ran (no policy in force, a pause stands)
    first_action_at: datetime | None  # the first progress note (进展) or resolution after it
    resolve: Window | None


def _last_minute(at: datetime | None, w: Window | None, t: Thresholds, now: datetime) -> bool:
    return (
        at is not None
        and w is not None
        and at <= now
        and at <= w.due
        and w.used(at) >= 1 - t.last_share
    )


def last_minute(
    handled: Iterable[Handled], period: Period, now: datetime, t: Thresholds
) -> dict[str, dict[str, Finding]]:
    """Per department, the assignments dispatched in the period and signed for by ``now``:
    ``last_minute_sign_for`` and ``last_minute_progress`` findings."""
    out: dict[str, Findings] = defaultdict(dict)
    for h in sorted(handled, key=lambda h: h.dispatched_at):
        if h.dispatched_at not in period or h.signed_for_at is None or h.signed_for_at > now:
            continue
        sign = None
        if _last_minute(h.signed_for_at, h.sign_for, t, now):
            assert h.sign_for is not None
            left_zh, left_en = span(h.sign_for.due - h.signed_for_at)
            sign = Evidence(
                h.case_id,
                h.case_no,
                h.department_id,
                f"签收时距签收时限仅剩 {left_zh}",
                f"signed for {left_en} before the sign-for deadline",
                (
                    Step("case.dispatched", h.dispatched_at),
                    Step("case.signed_for", h.signed_for_at),
                    Step("deadline.sign_for", h.sign_for.due),
                ),
            )
        _finding(out, h.department_id, "last_minute_sign_for").add(sign)
        idle = None
        if _last_minute(h.first_action_at, h.resolve, t, now):
            assert h.resolve is not None and h.first_action_at is not None
            left_zh, left_en = span(h.resolve.due - h.first_action_at)
            idle = Evidence(
                h.case_id,
                h.case_no,
                h.department_id,
                f"签收后无进展，距办结时限仅剩 {left_zh}才首次处置",
                f"no progress after sign-for until {left_en} before the resolution deadline",
                (
                    Step("case.signed_for", h.signed_for_at),
                    Step("first_action", h.first_action_at),
                    Step("deadline.resolve", h.resolve.due),
                ),
            )
        _finding(out, h.department_id, "last_minute_progress").add(idle)
    return dict(out)


# --- proxy ratings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    case_id: str
    case_no: str
    community: str  # the case's community path
    departments: tuple[str, ...]  # whose result it judges (resolved, not sent back)
    at: datetime
    score: int
    by_grid_worker: bool
    entered_by: str | None = None  # the actor's name


def proxy_ratings(
    ratings: Iterable[Rating], period: Period, now: datetime, t: Thresholds
) -> tuple[dict[str, Finding], dict[str, Finding]]:
    """Per department and per community: ratings in the period, those entered by the grid
    worker, ``alert`` over the threshold, ``all_five_stars`` when every proxy rating is 5."""
    departments: dict[str, Finding] = {}
    communities: dict[str, Finding] = {}
    fives: dict[int, bool] = {}
    for r in sorted(ratings, key=lambda r: r.at):
        if r.at not in period or r.at > now:
            continue
        evidence = None
        if r.by_grid_worker:
            who = r.entered_by or "网格员"
            evidence = Evidence(
                r.case_id,
                r.case_no,
                None,
                f"{who} 代录评价 {r.score} 星",
                f"{r.entered_by or 'the grid worker'} entered a {r.score}-star rating",
                (Step("case.rated", r.at, f"{r.score}/5 grid_worker"),),
            )
        units = [departments.setdefault(d, Finding("proxy_rating")) for d in r.departments]
        units.append(communities.setdefault(r.community, Finding("proxy_rating")))
        for f in units:
            f.add(evidence)
            if r.by_grid_worker:
                fives[id(f)] = fives.get(id(f), True) and r.score == 5
    for f in (*departments.values(), *communities.values()):
        share = f.rate.value or 0.0
        f.alert = f.examined >= t.min_ratings and share > t.proxy_share
        f.all_five_stars = fives.get(id(f), False) if f.flagged else False
    return departments, communities
