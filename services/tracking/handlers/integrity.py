"""The 督办 integrity checks as a supervisor may see them: per department (and per pair of
departments, per community) the findings of ``domain.integrity`` and ``domain.churn`` over a
period, with evidence capped at ``evidence_limit`` per finding (the total kept).

Scope as the KPIs': the cases in the caller's subtree (an ``area`` filter must lie in it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.tracking.domain import Clock
from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.churn import PairChurn, dispatch_churn
from services.tracking.domain.integrity import (
    Finding,
    Handled,
    Thresholds,
    Window,
    last_minute,
    premature_closes,
    proxy_ratings,
)
from services.tracking.domain.kpi import Period
from services.tracking.domain.policy_data import pinned_from_data
from services.tracking.domain.timeline import CALENDAR_TIME, Timeline, timeline
from services.tracking.handlers.kpi import caller_scope, check_period
from services.tracking.handlers.sla import load_calendar
from services.tracking.repository import integrity as repo
from shared.auth import Principal

KINDS = (
    "premature_close",
    "dispatch_churn",
    "last_minute_sign_for",
    "last_minute_progress",
    "proxy_rating",
)


@dataclass(frozen=True)
class DepartmentIntegrity:
    department_id: str
    name: str | None
    findings: dict[str, Finding]  # per kind, every kind present

    @property
    def flagged(self) -> int:
        return sum(f.flagged for f in self.findings.values())


@dataclass(frozen=True)
class IntegrityReport:
    period: Period
    as_of: datetime
    thresholds: Thresholds
    departments: list[DepartmentIntegrity]
    pairs: list[PairChurn]
    names: dict[str, str]
    communities: dict[str, Finding]


def _basis(policy: dict | None, clock: Clock, calendar: WorkingCalendar | None) -> Timeline:
    """The time basis the assignment's clock ran in (its pinned policy's), calendar time
    without one."""
    if policy is None or calendar is None:
        return CALENDAR_TIME
    limit = pinned_from_data(policy).policy.clocks().get(clock)
    return timeline(calendar, limit.working) if limit is not None else CALENDAR_TIME


def _window(r: asyncpg.Record, prefix: str, basis: Timeline) -> Window | None:
    if r[f"{prefix}_start"] is None or r[f"{prefix}_state"] == "paused":
        return None  # no clock ran, or it stands still (挂账/缓办): no deadline to game
    return Window(r[f"{prefix}_start"], r[f"{prefix}_due"], basis)


def _handled(r: asyncpg.Record, calendar: WorkingCalendar | None) -> Handled:
    actions = [a for a in (r["progressed_at"], r["resolved_at"]) if a is not None]
    return Handled(
        str(r["case_id"]),
        r["case_no"],
        r["department_id"],
        r["dispatched_at"],
        r["signed_for_at"],
        _window(r, "sf", _basis(r["policy"], Clock.SIGN_FOR, calendar)),
        min(actions) if actions else None,
        _window(r, "rs", _basis(r["policy"], Clock.RESOLVE, calendar)),
    )


def _cap(f: Finding, limit: int) -> Finding:
    f.evidence = f.evidence[:limit]
    return f


async def integrity(
    pool: asyncpg.Pool,
    who: Principal,
    period: Period,
    *,
    area: str | None,
    thresholds: Thresholds,
    now: datetime,
) -> IntegrityReport:
    check_period(period)
    p = dict(start=period.start, end=period.end, now=now)
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        roots = (await caller_scope(conn, who, area)).area_roots
        resolved = await repo.resolutions(conn, **p, roots=roots)
        back = await repo.sent_back(conn, sorted({r.case_id for r in resolved}), now=now)
        postings = await repo.postings(conn, **p, roots=roots)
        signed = await repo.sign_fors(conn, **p, roots=roots)
        rated = await repo.ratings(conn, **p, roots=roots)
        calendar = await load_calendar(conn) if signed else None
        per_department: dict[str, dict[str, Finding]] = defaultdict(dict)
        for dept, f in premature_closes(resolved, back, period, now, thresholds).items():
            per_department[dept][f.kind] = f
        churned, pairs = dispatch_churn(postings, period, now, thresholds)
        for dept, f in churned.items():
            per_department[dept][f.kind] = f
        handled = [_handled(r, calendar) for r in signed]
        for dept, found in last_minute(handled, period, now, thresholds).items():
            per_department[dept].update(found)
        by_department, communities = proxy_ratings(rated, period, now, thresholds)
        for dept, f in by_department.items():
            per_department[dept][f.kind] = f
        ids = sorted({*per_department, *(d for pair in pairs for d in pair.departments)})
        names = await repo.department_names(conn, ids)
    limit = thresholds.evidence_limit
    departments = [
        DepartmentIntegrity(
            dept,
            names.get(dept),
            {k: _cap(found.get(k, Finding(k)), limit) for k in KINDS},
        )
        for dept, found in per_department.items()
    ]
    departments.sort(key=lambda d: (-d.flagged, d.department_id))
    for pair in pairs:
        pair.evidence = pair.evidence[:limit]
    return IntegrityReport(
        period,
        now,
        thresholds,
        departments,
        pairs,
        names,
        {k: _cap(f, limit) for k, f in sorted(communities.items())},
    )
