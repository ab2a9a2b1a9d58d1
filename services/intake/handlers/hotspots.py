"""未诉先办: list the hotspots of an area, accept one as a proactive case, dismiss one.
Each use case one transaction; a decision on a grid's category holds that pair's lock."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import uuid4

import asyncpg

from services.intake import repository
from services.intake.domain import hotspots as rules
from services.intake.domain.hotspots import ACCEPTED, DISMISSED, Hotspot, HotspotKey
from services.intake.handlers.cases import ReportCase, create_case
from services.intake.repository import CaseRow
from services.intake.repository import hotspots as store
from services.intake.repository.hotspots import DecisionRow
from shared.auth import Principal
from shared.clock import utcnow
from shared.contract import CaseSource, Location, Priority
from shared.db import Conn
from shared.errors import Invalid

PROPOSED = "proposed"


@dataclass(frozen=True)
class HotspotItem:
    """A hotspot as listed: proposed now, or as it was when decided."""

    evidence: dict[str, Any]
    state: str  # proposed / accepted / dismissed
    decision: DecisionRow | None = None


@dataclass(frozen=True)
class Listing:
    period_start: datetime
    items: list[HotspotItem]


def _shown(spot: Hotspot, names: dict[str, str]) -> dict[str, Any]:
    """The hotspot's evidence with its category's name (as kept with a decision)."""
    return {
        **rules.evidence(spot),
        "category_name": names.get(spot.key.category, spot.key.category),
    }


async def _roots(conn: Conn, who: Principal, area: str | None) -> list[str]:
    if area is None:
        return list(who.areas)
    who.require_area(area)
    if not await store.area_exists(conn, area):
        raise Invalid(f"辖区“{area}”不存在", f"unknown area '{area}'", code="unknown_area")
    return [area]


async def list_hotspots(
    pool: asyncpg.Pool, who: Principal, *, area: str | None, weeks: int, min_cases: int
) -> Listing:
    """The hotspots of the caller's subtree (or ``area`` inside it): those proposed now,
    ranked, then those decided since the window began, the latest first."""
    now = utcnow()
    start = rules.window_start(now, weeks)
    async with pool.acquire() as conn:
        roots = await _roots(conn, who, area)
        cases = await store.cases_since(conn, roots, start)
        decided = await store.last_decisions(conn, roots, start)
        decisions = await store.decisions_since(conn, roots, start)
        names = await store.category_names(conn)
    found = rules.detect(cases, now=now, weeks=weeks, min_cases=min_cases, decided=decided)
    items = [HotspotItem(_shown(h, names), PROPOSED) for h in found]
    items += [HotspotItem(d.evidence, d.decision, d) for d in decisions]
    return Listing(start, items)


async def _grid_path(conn: Conn, who: Principal, key: HotspotKey) -> str:
    path = await repository.grid_path(conn, key.grid_code)
    if path is None:
        raise rules.not_found(key.id, f"网格“{key.grid_code}”不存在", "unknown grid")
    who.require_area(path)
    return path


async def _current(conn: Conn, key: HotspotKey, now: datetime) -> Hotspot:
    """The hotspot ``key`` names, as it is now — if it may still be decided."""
    rules.check_current(key, await store.last_decision_at(conn, key.grid_code, key.category), now)
    cases = await store.grid_cases_since(conn, key.grid_code, key.category, key.start)
    return rules.check_enough(rules.cluster(key, cases, now), key)


async def _decide(
    conn: Conn, who: Principal, hotspot_id: str, wanted: str
) -> tuple[HotspotKey, DecisionRow | None]:
    """Scope, the pair's lock, and an earlier decision of this hotspot (a replay) if any."""
    key = rules.parse_id(hotspot_id)
    await _grid_path(conn, who, key)
    await store.lock_grid_category(conn, key.grid_code, key.category)
    earlier = await store.get_decision(conn, key.id)
    if earlier is not None:
        rules.check_decision(key.id, earlier.decision, wanted)
    return key, earlier


def decided_at(now: datetime) -> datetime:
    """A decision's time, which is where its grid's category's next period starts — to the
    second, as a hotspot id names it. A case reported in the same second just before the
    decision is counted in both periods; none is left out of both."""
    return now.replace(microsecond=0)


async def _decision(
    conn: Conn, who: Principal, spot: Hotspot, wanted: str, now: datetime, **choice: Any
) -> DecisionRow:
    name = await store.category_name(conn, spot.key.category)
    return DecisionRow(
        id=spot.id,
        grid_code=spot.key.grid_code,
        area_path=spot.area_path,
        category=spot.key.category,
        period_start=spot.key.start,
        decision=wanted,
        evidence=_shown(spot, {spot.key.category: name} if name else {}),
        decided_by=who.subject,
        decided_by_name=who.name,
        decided_at=decided_at(now),
        **{"case_id": None, "case_no": None, "reason": None, "note": None, **choice},
    )


async def accept_hotspot(
    pool: asyncpg.Pool, who: Principal, hotspot_id: str
) -> tuple[DecisionRow, CaseRow, bool]:
    """受理: open one proactive case (未诉先办) for the hotspot. Returns (decision, case,
    created); accepting it again returns the same case."""
    now = utcnow()
    async with pool.acquire() as conn, conn.transaction():
        key, earlier = await _decide(conn, who, hotspot_id, ACCEPTED)
        if earlier is not None:
            assert earlier.case_id is not None  # an accepted decision names its case
            case = await repository.get_case(conn, earlier.case_id)
            assert case is not None
            return earlier, case, False
        spot = await _current(conn, key, now)
        row = await _decision(conn, who, spot, ACCEPTED, now, case_id=uuid4())
        # the primary key claims the hotspot before the case exists (its key is deferred)
        if not await store.insert_decision(conn, row):
            raise AssertionError(f"hotspot {key.id} decided under its lock")
        case = await _open_proactive_case(conn, who, row, spot, now)
    return replace(row, case_no=case.case_no), case, True


async def _open_proactive_case(
    conn: Conn, who: Principal, row: DecisionRow, spot: Hotspot, now: datetime
) -> CaseRow:
    """The proactive case (source proactive), reported by the accepting user where the
    cluster's cases were, through intake's own case creation (CaseReported in the outbox)."""
    assert row.case_id is not None
    lat, lon = spot.centroid or (None, None)
    cmd = ReportCase(
        grid_code=spot.key.grid_code,
        category=spot.key.category,
        description=rules.proactive_description(spot, row.evidence["category_name"]),
        priority=Priority.NORMAL,
        location=Location(lat=lat, lon=lon, address=spot.address),
        reporter=who.name,
        source=CaseSource.PROACTIVE,
    )
    return await create_case(
        conn,
        cmd,
        case_id=row.case_id,
        grid_code=spot.key.grid_code,
        path=spot.area_path,
        reported_by=who.subject,
        actor=who.actor,
        now=now,
    )


async def dismiss_hotspot(
    pool: asyncpg.Pool, who: Principal, hotspot_id: str, reason: str, note: str | None
) -> tuple[DecisionRow, bool]:
    """忽略: set the hotspot aside with a reason; it is not proposed again for its period.
    Returns (decision, created); dismissing it again returns the first decision."""
    now = utcnow()
    async with pool.acquire() as conn, conn.transaction():
        key, earlier = await _decide(conn, who, hotspot_id, DISMISSED)
        if earlier is not None:
            return earlier, False
        spot = await _current(conn, key, now)
        row = await _decision(conn, who, spot, DISMISSED, now, reason=reason, note=note)
        if not await store.insert_decision(conn, row):
            raise AssertionError(f"hotspot {key.id} decided under its lock")
    return row, True
