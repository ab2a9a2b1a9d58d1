"""Casework use cases: each one transaction — lock the case, check scope and state, write,
outbox. Scope (the caller's grids or subtree) is checked before anything is written."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.intake import domain
from services.intake import repository as cases
from services.intake.casework import repository
from services.intake.domain import CaseStatus
from services.intake.repository import CaseRow
from shared import outbox
from shared.auth import Principal
from shared.errors import Invalid, NotFound
from shared.events import (
    Actor,
    CaseClosed,
    CaseMerged,
    CaseRated,
    CaseReopened,
    CaseReworkRequested,
    Priority,
    new_event,
)

PRODUCER = "intake"


def _facts(case: CaseRow) -> dict[str, Any]:
    return {"case_no": case.case_no, "area_path": case.area_path,
            "category": case.category, "priority": Priority(case.priority)}


async def _locked(conn: asyncpg.Connection, case_id: UUID, who: Principal | None) -> CaseRow:
    case = await cases.get_case(conn, case_id, lock=True)
    if case is None:
        raise NotFound(f"案件 {case_id} 不存在", f"case {case_id} not found", code="case_not_found")
    if who is not None:
        who.require_area(case.area_path)
    return case


async def _reread(conn: asyncpg.Connection, case_id: UUID) -> CaseRow:
    case = await cases.get_case(conn, case_id)
    assert case is not None
    return case


async def fix_on_spot(pool: asyncpg.Pool, who: Principal, case_id: UUID, note: str) -> CaseRow:
    """随手做，小事不出网格: the grid worker solved it himself; solved at grid level."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await _locked(conn, case_id, who)
        domain.check_fix_on_spot(case.status)
        await cases.update_status(conn, case.id, CaseStatus.CLOSED, now)
        await repository.set_resolution(conn, case.id, "on_spot")
        await outbox.add(conn, new_event(
            CaseClosed(**_facts(case), note=note, resolution="on_spot"),
            case_id=case.id, producer=PRODUCER, occurred_at=now, actor=who.actor,
        ))
        return await _reread(conn, case.id)


async def close_verified(conn: asyncpg.Connection, case_id: UUID) -> None:
    """Called by 核查结案 (verification passed): remember how the case was closed."""
    await repository.set_resolution(conn, case_id, "verified")


async def request_rework(pool: asyncpg.Pool, who: Principal, case_id: UUID, reason: str
                         ) -> CaseRow:
    """核查不通过 → 返工: back to the department(s) whose result failed, with the reason."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await _locked(conn, case_id, who)
        domain.check_rework(case.status)
        extra = await repository.extras(conn, case.id)
        await cases.update_status(conn, case.id, CaseStatus.REWORK, now)
        await repository.count_rework(conn, case.id)
        await outbox.add(conn, new_event(
            CaseReworkRequested(**_facts(case), reason=reason,
                                departments=extra.assigned_departments),
            case_id=case.id, producer=PRODUCER, occurred_at=now, actor=who.actor,
        ))
        return await _reread(conn, case.id)


async def reopen(pool: asyncpg.Pool, who: Principal, case_id: UUID, reason: str,
                 window_days: float) -> CaseRow:
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await _locked(conn, case_id, who)
        extra = await repository.extras(conn, case.id)
        domain.check_reopen(case.status, extra.resolution, case.closed_at, now, window_days)
        await cases.update_status(conn, case.id, CaseStatus.REOPENED, now)
        await repository.count_reopen(conn, case.id)
        await outbox.add(conn, new_event(
            CaseReopened(**_facts(case), reason=reason),
            case_id=case.id, producer=PRODUCER, occurred_at=now, actor=who.actor,
        ))
        return await _reread(conn, case.id)


async def _rate(conn: asyncpg.Connection, case: CaseRow, score: int, comment: str | None,
                channel: str, actor: Actor, now: datetime) -> None:
    if not 1 <= score <= 5:
        raise Invalid("评分须为 1 到 5", "the score must be between 1 and 5", code="bad_score")
    extra = await repository.extras(conn, case.id)
    domain.check_rate(case.status, extra.resolution, await repository.has_rating(conn, case.id))
    await repository.insert_rating(conn, case.id, score, comment, channel, actor.subject, now)
    await outbox.add(conn, new_event(
        CaseRated(**_facts(case), score=score, comment=comment, channel=channel),
        case_id=case.id, producer=PRODUCER, occurred_at=now, actor=actor,
    ))


async def rate(pool: asyncpg.Pool, who: Principal, case_id: UUID, score: int,
               comment: str | None) -> asyncpg.Record:
    """群众评单 recorded by the grid worker (or community) on the resident's behalf."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await _locked(conn, case_id, who)
        await _rate(conn, case, score, comment, "grid_worker", who.actor, now)
        return await repository.rating(conn, case.id)


@dataclass(frozen=True)
class RatingLink:
    token: str
    case_id: UUID
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_rating_link(pool: asyncpg.Pool, who: Principal, case_id: UUID,
                             valid_days: float) -> RatingLink:
    """A one-time link the resident can rate with, without an account."""
    now = datetime.now(UTC)
    token = secrets.token_urlsafe(24)
    async with pool.acquire() as conn, conn.transaction():
        case = await _locked(conn, case_id, who)
        extra = await repository.extras(conn, case.id)
        domain.check_rate(case.status, extra.resolution, await repository.has_rating(conn, case.id))
        expires = now + timedelta(days=valid_days)
        await repository.insert_link(conn, _hash(token), case.id, who.subject, now, expires)
    return RatingLink(token, case_id, expires)


async def _live_link(conn: asyncpg.Connection, token: str, now: datetime, *, lock: bool
                     ) -> tuple[str, CaseRow]:
    row = await repository.link(conn, _hash(token), lock=lock)
    if row is None or row["used_at"] is not None or row["expires_at"] < now:
        raise NotFound("评价链接无效、已使用或已过期", "the rating link is invalid, used or expired",
                       code="rating_link_invalid")
    case = await (_locked(conn, row["case_id"], None) if lock
                  else cases.get_case(conn, row["case_id"]))
    return _hash(token), case


async def case_for_link(pool: asyncpg.Pool, token: str) -> CaseRow:
    async with pool.acquire() as conn:
        _, case = await _live_link(conn, token, datetime.now(UTC), lock=False)
    return case


async def rate_by_link(pool: asyncpg.Pool, token: str, score: int, comment: str | None
                       ) -> asyncpg.Record:
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        token_hash, case = await _live_link(conn, token, now, lock=True)
        resident = Actor(subject=f"resident:{token_hash[:12]}", role="resident", name="群众")
        await _rate(conn, case, score, comment, "link", resident, now)
        await repository.use_link(conn, token_hash, now)
        return await repository.rating(conn, case.id)


async def merge(pool: asyncpg.Pool, who: Principal, duplicate_id: UUID, primary_id: UUID
                ) -> CaseRow:
    """Merge a duplicate report into its primary: the duplicate is closed, the primary keeps
    the earliest report time and credits every reporter."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        # Lock in a fixed order so two opposite merges cannot deadlock.
        first, second = sorted((duplicate_id, primary_id), key=str)
        locked = {first: await _locked(conn, first, who), second: await _locked(conn, second, who)}
        duplicate, primary = locked[duplicate_id], locked[primary_id]
        domain.check_merge(duplicate.id, duplicate.status, primary.id, primary.status)
        await repository.credit_reporters(conn, primary.id, duplicate.id)
        await cases.update_status(conn, duplicate.id, CaseStatus.CLOSED, now)
        await repository.set_resolution(conn, duplicate.id, "merged", merged_into=primary.id)
        await outbox.add(conn, new_event(
            CaseMerged(**_facts(duplicate), primary_case_id=primary.id,
                       primary_case_no=primary.case_no),
            case_id=duplicate.id, producer=PRODUCER, occurred_at=now, actor=who.actor,
        ))
        return await _reread(conn, primary.id)


async def possible_duplicates(conn: asyncpg.Connection, case: CaseRow, *, window_days: float,
                              radius_m: float) -> list[asyncpg.Record]:
    return await repository.possible_duplicates(
        conn, case_id=case.id, category=case.category, grid_code=case.grid_code,
        lat=case.lat, lon=case.lon, since=case.reported_at - timedelta(days=window_days),
        radius_m=radius_m,
    )


async def duplicates_of(pool: asyncpg.Pool, who: Principal, case_id: UUID, *,
                        window_days: float, radius_m: float) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        case = await cases.get_case(conn, case_id)
        if case is None:
            raise NotFound(f"案件 {case_id} 不存在", f"case {case_id} not found",
                           code="case_not_found")
        who.require_area(case.area_path)
        rows = await possible_duplicates(conn, case, window_days=window_days, radius_m=radius_m)
    return [r for r in rows if who.covers(r["area_path"])]  # only what the caller may see


async def reporters(pool: asyncpg.Pool, who: Principal, case_id: UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        case = await cases.get_case(conn, case_id)
        if case is None:
            raise NotFound(f"案件 {case_id} 不存在", f"case {case_id} not found",
                           code="case_not_found")
        who.require_area(case.area_path)
        return await repository.reporters(conn, case_id)
