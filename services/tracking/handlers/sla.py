"""The SLA reference data (admin): the working calendar (工作日历) and the policy versions
(时限策略). Everything is validated by ``sla`` before it is stored; invalid input changes
nothing. A policy version is only ever added, never edited: assignments pin the version in
force at their dispatch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.calendar_data import calendar_from_data, calendar_to_data
from services.tracking.domain.policy import PolicyVersion
from services.tracking.domain.policy_data import version_from_data, version_to_data
from services.tracking.domain.validate import check_versions
from services.tracking.repository import sla as sla_repo
from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound
from shared.db import Conn

log = structlog.get_logger()


# Parsed calendars and policy versions, by (number, created_at): both are only ever added,
# never edited, so a row so named always holds the same data (the creation time tells apart
# the databases of one process, as in tests). Parsing one per dispatch was ~9 % of tracking's
# CPU under load (bench-e2e's profile, issue 14).
_PARSED_MAX = 32
_CALENDARS: dict[tuple[int, datetime], WorkingCalendar] = {}
_VERSIONS: dict[tuple[int, datetime], PolicyVersion] = {}


async def _parsed(
    cache: dict,
    key: tuple[int, datetime] | None,
    read: Callable[[int], Awaitable[asyncpg.Record | None]],
    parse: Callable[[Any], Any],
) -> Any:
    """The parsed data of the row named ``key`` (read and parsed on a miss), or None."""
    if key is None:
        return None
    parsed = cache.get(key)
    if parsed is None:
        row = await read(key[0])
        assert row is not None  # rows are never deleted
        if len(cache) >= _PARSED_MAX:
            cache.pop(next(iter(cache)))
        parsed = cache[key] = parse(row["data"])
    return parsed


async def load_calendar(conn: Conn) -> WorkingCalendar | None:
    """The working calendar in use (parsed once per revision)."""
    return await _parsed(
        _CALENDARS,
        await sla_repo.current_calendar_id(conn),
        lambda revision: sla_repo.calendar_revision(conn, revision),
        calendar_from_data,
    )


async def policy_version_at(conn: Conn, at: datetime) -> PolicyVersion | None:
    """The policy version in force at ``at`` (parsed once per version), or None."""
    return await _parsed(
        _VERSIONS,
        await sla_repo.policy_version_id_at(conn, at),
        lambda version: sla_repo.policy_version(conn, version),
        version_from_data,
    )


# --- the working calendar ----------------------------------------------------------------------


async def current_calendar(pool: asyncpg.Pool) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await sla_repo.current_calendar(conn)
    if row is None:
        raise NotFound(
            "尚未设置工作日历", "no working calendar has been set", code="calendar_not_set"
        )
    return row


async def replace_calendar(pool: asyncpg.Pool, data: Any, who: Principal) -> asyncpg.Record:
    """Validate and store a new calendar (the old one stays as history). Deadlines already
    scheduled keep their instants; clocks computed from now on use the new calendar."""
    calendar = calendar_from_data(data)  # Invalid, naming the field
    async with pool.acquire() as conn, conn.transaction():
        row = await sla_repo.add_calendar(conn, calendar_to_data(calendar), who.subject)
    log.info("calendar_replaced", revision=row["revision"], by=who.subject)
    return row


# --- policy versions ---------------------------------------------------------------------------


async def policy_versions(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await sla_repo.policy_versions(conn)


async def policy_version(pool: asyncpg.Pool, version: int) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await sla_repo.policy_version(conn, version)
    if row is None:
        raise NotFound(
            f"时限策略版本 {version} 不存在",
            f"SLA policy version {version} not found",
            code="policy_version_not_found",
        )
    return row


async def add_policy_version(
    pool: asyncpg.Pool, data: Any, who: Principal, now: datetime
) -> asyncpg.Record:
    """Add a version after the existing ones. Refused: invalid policies, a number or an
    effective time already taken or out of order, a version taking effect in the past (it
    would rewrite which policy was in force), a policy without a working calendar."""
    version = version_from_data(data)  # Invalid, naming the field
    async with pool.acquire() as conn, conn.transaction():
        await sla_repo.lock_policy_versions(conn)
        if await sla_repo.current_calendar(conn) is None:
            raise Conflict(
                "请先设置工作日历，再添加时限策略",
                "set the working calendar before adding SLA policies",
                code="calendar_not_set",
            )
        existing = [version_from_data(r["data"]) for r in await sla_repo.policy_versions(conn)]
        if existing and version.effective_from < now:
            raise Invalid(
                f"effective_from：新版本不能追溯生效（{version.effective_from.isoformat()} 早于"
                f"当前时间），已派单的案件按原版本计时",
                f"effective_from: a new version cannot take effect in the past "
                f"({version.effective_from.isoformat()} is before now)",
                code="retroactive_policy",
            )
        check_versions([*existing, version])  # repeats, overlaps, order
        await sla_repo.add_policy_version(
            conn, version.version, version.effective_from, version_to_data(version), who.subject
        )
        row = await sla_repo.policy_version(conn, version.version)
    log.info(
        "policy_version_added",
        version=version.version,
        effective_from=version.effective_from.isoformat(),
        by=who.subject,
    )
    assert row is not None
    return row


async def seed(conn: Conn, calendar: WorkingCalendar, versions: list[Any], by: str) -> None:
    """Load a calendar (if none is set) and policy versions (those not there yet): the demo
    seed. Idempotent."""
    async with conn.transaction():
        await sla_repo.lock_policy_versions(conn)
        if await sla_repo.current_calendar(conn) is None:
            await sla_repo.add_calendar(conn, calendar_to_data(calendar), by)
        check_versions(versions)
        for v in versions:
            await sla_repo.add_policy_version(
                conn, v.version, v.effective_from, version_to_data(v), by
            )
