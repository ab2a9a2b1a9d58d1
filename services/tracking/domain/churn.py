"""Dispatch churn (推诿空转), one of the 督办 integrity checks (``integrity``): a case handed
back and forth between departments by rejections (退单) and transfers (转办).

A case churns when a department that handed it on is given it again (A→B→A), or when it was
handed on at least ``min_hops`` times. Each hand-off goes to the department dispatched next
on the case (at or after the hand-off); none yet (waiting for manual dispatch) is a hop to
nobody. Listed per pair of departments (the pair either way round) and per department that
handed a churning case on. Pure: facts in, findings out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from services.tracking.domain.integrity import Evidence, Finding, Period, Step, Thresholds

HAND_OFFS = ("case.rejected", "case.transferred")


@dataclass(frozen=True)
class Posting:
    """One assignment of a case: which department, when dispatched, and how it ended."""

    case_id: str
    case_no: str
    department_id: str
    dispatched_at: datetime
    ended_by: str | None = None  # case.rejected | case.transferred | None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Hop:
    source: str
    target: str | None
    kind: str
    at: datetime


@dataclass
class PairChurn:
    departments: tuple[str, str]
    cases: int = 0
    hops: int = 0
    evidence: list[Evidence] = field(default_factory=list)


def hops(postings: list[Posting], now: datetime) -> list[Hop]:
    """A case's hand-offs in time order (``postings`` of one case)."""
    ordered = sorted(postings, key=lambda p: p.dispatched_at)
    out = []
    for p in ordered:
        if p.ended_by not in HAND_OFFS or p.ended_at is None or p.ended_at > now:
            continue
        ended = p.ended_at
        target = next(
            (q.department_id for q in ordered if q is not p and ended <= q.dispatched_at <= now),
            None,
        )
        out.append(Hop(p.department_id, target, p.ended_by, p.ended_at))
    return sorted(out, key=lambda h: h.at)


def churns(case_hops: list[Hop], t: Thresholds) -> bool:
    """A department handed the case on and got it again, or ``min_hops`` hand-offs."""
    if len(case_hops) >= t.min_hops:
        return True
    left: set[str] = set()
    for h in case_hops:
        left.add(h.source)
        if h.target is not None and h.target in left:
            return True
    return False


def _evidence(case_id: str, case_no: str, case_hops: list[Hop]) -> Evidence:
    chain = [case_hops[0].source, *(h.target or "?" for h in case_hops)]
    return Evidence(
        case_id,
        case_no,
        None,
        f"{len(case_hops)} 次退单/转办：{' → '.join(chain)}",
        f"{len(case_hops)} hand-offs: {' -> '.join(chain)}",
        tuple(Step(h.kind, h.at, f"{h.source} -> {h.target or '?'}") for h in case_hops),
    )


def dispatch_churn(
    postings: Iterable[Posting], period: Period, now: datetime, t: Thresholds
) -> tuple[dict[str, Finding], list[PairChurn]]:
    """Per department (the cases it handed on in the period; those churning flagged) and per
    pair of departments (the churning cases between them), most cases first."""
    by_case: dict[str, list[Posting]] = defaultdict(list)
    for p in postings:
        by_case[p.case_id].append(p)
    departments: dict[str, Finding] = {}
    pairs: dict[tuple[str, str], PairChurn] = {}
    for case_id, case_postings in sorted(by_case.items()):
        case_hops = hops(case_postings, now)
        if not any(h.at in period for h in case_hops):
            continue
        evidence = (
            _evidence(case_id, case_postings[0].case_no, case_hops)
            if churns(case_hops, t)
            else None
        )
        for dept in sorted({h.source for h in case_hops}):
            departments.setdefault(dept, Finding("dispatch_churn")).add(evidence)
        if evidence is None:
            continue
        for key in sorted({_pair(h) for h in case_hops if h.target is not None}):
            pair = pairs.setdefault(key, PairChurn(key))
            pair.cases += 1
            pair.hops += sum(1 for h in case_hops if h.target is not None and _pair(h) == key)
            pair.evidence.append(evidence)
    return departments, sorted(pairs.values(), key=lambda p: (-p.cases, p.departments))


def _pair(h: Hop) -> tuple[str, str]:
    a, b = sorted((h.source, h.target or ""))
    return a, b
