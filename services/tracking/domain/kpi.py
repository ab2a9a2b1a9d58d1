"""KPIs (考核指标) from plain facts: one record per assignment, the figures per department and
per area subtree for a period, as of ``now``.

Definitions (every figure counts the assignments *dispatched* in the period, ``start`` ≤
dispatched_at < ``end``; a fact stamped after ``now`` has not happened yet):
- received (受理): those assignments, rejected ones included — a rejection (退单) is the
  department's act and counts against it (推诿); a misrouted case is fixed in routing data.
- signed for on time (按时签收): signed for at or before the sign-for deadline.
- resolved (办结) / resolved on time (按时办结): resolved at all / at or before the resolution
  deadline (which already includes approved extensions and pauses).
- overdue now (当前超时): not rejected nor ended otherwise (handed on, 转办; its case closed or
  merged), and a step not done whose deadline is before ``now``.
- reworked (返工): the result failed the community's check and was sent back.
- rejections (推诿): rejected assignments. extensions (延期): approved extensions, summed.
- average handling time (平均办理时长): mean of resolved_at − dispatched_at over the resolved,
  in calendar time.
- rated / satisfied: assignments with a rating / with a rating of 4 or 5.
Rates (``Rate``: numerator / denominator, ``None`` when nothing to divide):
- 响应率 response_rate = signed for on time / received
- 解决率 resolution_rate = resolved / received
- 满意率 satisfaction_rate = satisfied (rating ≥ 4) / rated
- 按时办结率 on_time_rate = resolved on time / resolved
- 返工率 rework_rate = reworked / resolved
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.contract.areas import within
from shared.errors import Invalid

SATISFIED_FROM = 4  # a rating of 4 or 5 (of 5) is 满意


@dataclass(frozen=True)
class AssignmentFacts:
    """What KPIs need to know about one assignment (派单) of a case to a department."""

    assignment_id: str
    department_id: str
    area_path: str  # the case's grid, e.g. YA/YA01/YA0101/YA0101-03
    category: str
    dispatched_at: datetime
    sign_for_due: datetime
    resolve_due: datetime
    signed_for_at: datetime | None = None
    resolved_at: datetime | None = None
    reworked: bool = False  # its result failed the check (返工)
    rejected: bool = False  # the department pushed it back (退单)
    ended: bool = False  # its clocks stopped without the step done: handed on (转办),
    # the case closed or merged — nothing of it is late any more
    extensions: int = 0  # approved extensions (延期)
    rating: int | None = None  # the resident's score, 1–5 (群众评单)

    def __post_init__(self) -> None:
        if self.rating is not None and not 1 <= self.rating <= 5:
            raise ValueError(f"a rating is 1-5, got {self.rating}")
        if self.extensions < 0:
            raise ValueError("extensions must not be negative")


@dataclass(frozen=True)
class Period:
    """``[start, end)``; one that ends before (or as) it starts is refused."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name, at in (("start", self.start), ("end", self.end)):
            if at.tzinfo is None or at.utcoffset() is None:
                raise Invalid(
                    f"{name}：须为带时区的时间",
                    f"{name}: must have a time zone",
                    code="invalid_period",
                )
        if self.end <= self.start:
            raise Invalid(
                "end：统计区间的结束时间须晚于开始时间",
                "end: the period must end after it starts",
                code="invalid_period",
            )

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def __str__(self) -> str:
        value = self.value
        return "—" if value is None else f"{value:.1%}"


@dataclass(frozen=True)
class Kpi:
    received: int = 0
    signed_for_on_time: int = 0
    resolved: int = 0
    resolved_on_time: int = 0
    overdue_now: int = 0
    reworked: int = 0
    rejections: int = 0
    extensions: int = 0
    rated: int = 0
    satisfied: int = 0
    score_total: int = 0
    handling_total: timedelta = timedelta(0)

    @property
    def response_rate(self) -> Rate:
        return Rate(self.signed_for_on_time, self.received)

    @property
    def resolution_rate(self) -> Rate:
        return Rate(self.resolved, self.received)

    @property
    def satisfaction_rate(self) -> Rate:
        return Rate(self.satisfied, self.rated)

    @property
    def on_time_rate(self) -> Rate:
        return Rate(self.resolved_on_time, self.resolved)

    @property
    def rework_rate(self) -> Rate:
        return Rate(self.reworked, self.resolved)

    @property
    def average_handling_time(self) -> timedelta | None:
        return self.handling_total / self.resolved if self.resolved else None

    @property
    def average_score(self) -> float | None:
        return self.score_total / self.rated if self.rated else None


def _done(at: datetime | None, now: datetime) -> datetime | None:
    """When the step was done, if it was by ``now``."""
    return at if at is not None and at <= now else None


def is_overdue(f: AssignmentFacts, now: datetime) -> bool:
    """超时: not rejected nor ended otherwise, and a step not done by ``now`` past its deadline."""
    signed, resolved = _done(f.signed_for_at, now), _done(f.resolved_at, now)
    return not (f.rejected or f.ended) and (
        (signed is None and now > f.sign_for_due) or (resolved is None and now > f.resolve_due)
    )


def _one(f: AssignmentFacts, now: datetime) -> Kpi:
    signed, resolved = _done(f.signed_for_at, now), _done(f.resolved_at, now)
    overdue = is_overdue(f, now)
    return Kpi(
        received=1,
        signed_for_on_time=int(signed is not None and signed <= f.sign_for_due),
        resolved=int(resolved is not None),
        resolved_on_time=int(resolved is not None and resolved <= f.resolve_due),
        overdue_now=int(overdue),
        reworked=int(f.reworked),
        rejections=int(f.rejected),
        extensions=f.extensions,
        rated=int(f.rating is not None),
        satisfied=int(f.rating is not None and f.rating >= SATISFIED_FROM),
        score_total=f.rating or 0,
        handling_total=resolved - f.dispatched_at if resolved is not None else timedelta(0),
    )


def add_kpis(a: Kpi, b: Kpi) -> Kpi:
    return Kpi(*(getattr(a, name) + getattr(b, name) for name in Kpi.__dataclass_fields__))


def compute_kpi(facts: Iterable[AssignmentFacts], period: Period, now: datetime) -> Kpi:
    """The figures of the assignments dispatched in ``period``, as of ``now``."""
    total = Kpi()
    for f in facts:
        if f.dispatched_at in period and f.dispatched_at <= now:
            total = add_kpis(total, _one(f, now))
    return total


K = TypeVar("K", bound=Hashable)  # what the figures are grouped by


def group_kpis(
    facts: Iterable[AssignmentFacts],
    period: Period,
    now: datetime,
    key: Callable[[AssignmentFacts], K],
) -> dict[K, Kpi]:
    groups: dict[K, list[AssignmentFacts]] = defaultdict(list)
    for f in facts:
        groups[key(f)].append(f)
    return {
        k: compute_kpi(group, period, now)
        for k, group in sorted(groups.items(), key=lambda kv: str(kv[0]))
    }


def kpis_by_department(
    facts: Iterable[AssignmentFacts], period: Period, now: datetime
) -> dict[str, Kpi]:
    return group_kpis(facts, period, now, lambda f: f.department_id)


def kpi_for_area(
    facts: Iterable[AssignmentFacts], subtree: str, period: Period, now: datetime
) -> Kpi:
    return compute_kpi((f for f in facts if within(f.area_path, subtree)), period, now)


def kpis_by_area(
    facts: Iterable[AssignmentFacts], period: Period, now: datetime, depth: int
) -> dict[str, Kpi]:
    """Per area ``depth`` levels down from the district (1 district, 2 street, 3 community,
    4 grid), each area's figure covering its whole subtree."""
    if depth < 1:
        raise Invalid(
            "depth：层级须为正整数", "depth: must be a positive integer", code="invalid_depth"
        )
    return group_kpis(
        facts,
        period,
        now,
        lambda f: "/".join(f.area_path.split("/")[:depth]),
    )
