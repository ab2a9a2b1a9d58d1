"""Casework use cases: each one transaction — lock the case, check scope and state, write,
outbox. Scope (the caller's grids or subtree) is checked before anything is written."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from services.intake import domain
from services.intake import repository as cases
from services.intake.repository import casework as repository
from services.intake.domain import CaseStatus
from services.intake.handlers import PRODUCER, case_facts, case_in_scope, find_case
from services.intake.repository import CaseRow
from shared import outbox
from shared.auth import Principal
from shared.errors import Invalid, NotFound
from shared.contract import (
    Actor,
    CaseClosed,
    CaseMerged,
    CaseRated,
    CaseReopened,
    CaseReworkRequested,
    RatingChannel,
    Resolution,
    new_event,
)
from shared.db import Conn


async def fix_on_spot(pool: asyncpg.Pool, who: Principal, case_id: UUID, note: str) -> CaseRow:
    """随手做，小事不出网格: the grid worker solved it himself; solved at grid level."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await case_in_scope(conn, who, case_id, lock=True)
        domain.check_fix_on_spot(case.status)
        closed = await cases.update_status(conn, case.id, CaseStatus.CLOSED, now)
        await repository.set_resolution(conn, case.id, Resolution.ON_SPOT)
        await outbox.add(
            conn,
            new_event(
                CaseClosed(**case_facts(case), note=note, resolution=Resolution.ON_SPOT),
                case_id=case.id,
                producer=PRODUCER,
                occurred_at=now,
                actor=who.actor,
            ),
        )
        return closed


async def request_rework(pool: asyncpg.Pool, who: Principal, case_id: UUID, reason: str) -> CaseRow:
    """核查不通过 → 返工: back to the department(s) whose result failed, with the reason."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await case_in_scope(conn, who, case_id, lock=True)
        domain.check_rework(case.status)
        extra = await repository.extras(conn, case.id)
        sent_back = await cases.update_status(conn, case.id, CaseStatus.REWORK, now)
        await repository.count_rework(conn, case.id)
        await outbox.add(
            conn,
            new_event(
                CaseReworkRequested(
                    **case_facts(case), reason=reason, departments=extra.assigned_departments
                ),
                case_id=case.id,
                producer=PRODUCER,
                occurred_at=now,
                actor=who.actor,
            ),
        )
        return sent_back


async def reopen(
    pool: asyncpg.Pool, who: Principal, case_id: UUID, reason: str, window_days: float
) -> CaseRow:
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await case_in_scope(conn, who, case_id, lock=True)
        extra = await repository.extras(conn, case.id)
        domain.check_reopen(case.status, extra.resolution, case.closed_at, now, window_days)
        await cases.update_status(conn, case.id, CaseStatus.REOPENED, now)
        await repository.count_reopen(conn, case.id)  # also clears closed_at: read it back
        await outbox.add(
            conn,
            new_event(
                CaseReopened(**case_facts(case), reason=reason),
                case_id=case.id,
                producer=PRODUCER,
                occurred_at=now,
                actor=who.actor,
            ),
        )
        return await find_case(conn, case.id)


async def _check_rate(conn: Conn, case: CaseRow) -> None:
    extra = await repository.extras(conn, case.id)
    domain.check_rate(case.status, extra.resolution, await repository.has_rating(conn, case.id))


async def _rating(conn: Conn, case_id: UUID) -> asyncpg.Record:
    """The rating just recorded."""
    row = await repository.rating(conn, case_id)
    assert row is not None
    return row


async def _rate(
    conn: Conn,
    case: CaseRow,
    score: int,
    comment: str | None,
    channel: RatingChannel,
    actor: Actor,
    now: datetime,
) -> None:
    if not 1 <= score <= 5:
        raise Invalid("评分须为 1 到 5", "the score must be between 1 and 5", code="bad_score")
    await _check_rate(conn, case)
    await repository.insert_rating(conn, case.id, score, comment, channel, actor.subject, now)
    await outbox.add(
        conn,
        new_event(
            CaseRated(**case_facts(case), score=score, comment=comment, channel=channel),
            case_id=case.id,
            producer=PRODUCER,
            occurred_at=now,
            actor=actor,
        ),
    )


async def rate(
    pool: asyncpg.Pool, who: Principal, case_id: UUID, score: int, comment: str | None
) -> asyncpg.Record:
    """群众评单 recorded by the grid worker (or community) on the resident's behalf."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        case = await case_in_scope(conn, who, case_id, lock=True)
        await _rate(conn, case, score, comment, RatingChannel.GRID_WORKER, who.actor, now)
        return await _rating(conn, case.id)


@dataclass(frozen=True)
class RatingLink:
    token: str
    case_id: UUID
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_rating_link(
    pool: asyncpg.Pool, who: Principal, case_id: UUID, valid_days: float
) -> RatingLink:
    """A one-time link the resident can rate with, without an account."""
    now = datetime.now(UTC)
    token = secrets.token_urlsafe(24)
    async with pool.acquire() as conn, conn.transaction():
        case = await case_in_scope(conn, who, case_id, lock=True)
        await _check_rate(conn, case)
        expires = now + timedelta(days=valid_days)
        await repository.insert_link(conn, _hash(token), case.id, who.subject, now, expires)
    return RatingLink(token, case_id, expires)


async def _live_link(conn: Conn, token: str, now: datetime, *, lock: bool) -> tuple[str, CaseRow]:
    row = await repository.link(conn, _hash(token), lock=lock)
    if row is None or row["used_at"] is not None or row["expires_at"] < now:
        raise NotFound(
            "评价链接无效、已使用或已过期",
            "the rating link is invalid, used or expired",
            code="rating_link_invalid",
        )
    return _hash(token), await find_case(conn, row["case_id"], lock=lock)


async def case_for_link(pool: asyncpg.Pool, token: str) -> CaseRow:
    async with pool.acquire() as conn:
        _, case = await _live_link(conn, token, datetime.now(UTC), lock=False)
    return case


async def rate_by_link(
    pool: asyncpg.Pool, token: str, score: int, comment: str | None
) -> asyncpg.Record:
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        token_hash, case = await _live_link(conn, token, now, lock=True)
        resident = Actor(subject=f"resident:{token_hash[:12]}", role="resident", name="群众")
        await _rate(conn, case, score, comment, RatingChannel.LINK, resident, now)
        await repository.use_link(conn, token_hash, now)
        return await _rating(conn, case.id)


async def merge(
    pool: asyncpg.Pool, who: Principal, duplicate_id: UUID, primary_id: UUID
) -> CaseRow:
    """Merge a duplicate report into its primary: the duplicate is closed, the primary keeps
    the earliest report time and credits every reporter."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        # Lock in a fixed order so two opposite merges cannot deadlock.
        first, second = sorted((duplicate_id, primary_id), key=str)
        locked = {
            first: await case_in_scope(conn, who, first, lock=True),
            second: await case_in_scope(conn, who, second, lock=True),
        }
        duplicate, primary = locked[duplicate_id], locked[primary_id]
        domain.check_merge(duplicate.id, duplicate.status, primary.id, primary.status)
        await repository.credit_reporters(conn, primary.id, duplicate.id)
        await cases.update_status(conn, duplicate.id, CaseStatus.CLOSED, now)
        await repository.set_resolution(conn, duplicate.id, domain.MERGED, merged_into=primary.id)
        await outbox.add(
            conn,
            new_event(
                CaseMerged(
                    **case_facts(duplicate),
                    primary_case_id=primary.id,
                    primary_case_no=primary.case_no,
                ),
                case_id=duplicate.id,
                producer=PRODUCER,
                occurred_at=now,
                actor=who.actor,
            ),
        )
        return await find_case(conn, primary.id)  # it credits the duplicate's report now


async def duplicates_of(
    pool: asyncpg.Pool, who: Principal, case: UUID | CaseRow, *, window_days: float, radius_m: float
) -> list[asyncpg.Record]:
    """Open cases that may report the same problem as ``case`` (by id, or the case at hand
    when it was just reported), of those the caller may see."""
    async with pool.acquire() as conn:
        if isinstance(case, UUID):
            case = await find_case(conn, case)
        who.require_area(case.area_path)
        rows = await repository.possible_duplicates(
            conn,
            case_id=case.id,
            category=case.category,
            grid_code=case.grid_code,
            lat=case.lat,
            lon=case.lon,
            since=case.reported_at - timedelta(days=window_days),
            radius_m=radius_m,
        )
    return [r for r in rows if who.covers(r["area_path"])]


async def reporters(pool: asyncpg.Pool, who: Principal, case_id: UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        await case_in_scope(conn, who, case_id)
        return await repository.reporters(conn, case_id)
