"""Backtesting an SLA policy version on the past (时限策略回测): read-only — one read-only
transaction reads the period's assignments, the policy and the working calendar; nothing is
written. The pure part is ``domain.backtest``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from services.tracking.domain.backtest import (
    CN,
    Backtest,
    History,
    LiveClock,
    backtest,
    check_period,
    stops,
)
from services.tracking.domain.deadlines import Extension, Pause
from services.tracking.domain.policy import PolicyVersion
from services.tracking.domain.policy_data import version_from_data
from services.tracking.handlers.sla import load_calendar
from services.tracking.repository import backtest as repo
from services.tracking.repository import sla as sla_repo
from shared.contract.values import Clock, Level
from shared.db import Conn
from shared.errors import Conflict, Invalid

_AREA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}(/[A-Za-z0-9][A-Za-z0-9_-]{0,31}){0,5}$")
_CATEGORY = re.compile(r"^[A-Z][0-9]{2,6}$")


@dataclass(frozen=True)
class BacktestQuery:
    """Which policy (a stored ``version`` or a ``draft`` body as for a new version) over
    which past: assignments dispatched from ``start`` to ``end`` (Beijing dates, both
    included), optionally in ``area`` and of ``category`` (a 大类 includes its 小类)."""

    start: date
    end: date
    version: int | None = None
    draft: dict[str, Any] | None = None
    area: str | None = None
    category: str | None = None

    def check(self) -> None:
        if (self.version is None) == (self.draft is None):
            raise Invalid(
                "version/policy：请给出一个已有的策略版本号，或一份策略草案（二者选一）",
                "version/policy: give either an existing policy version or a draft policy",
                code="invalid_backtest",
            )
        check_period(self.start, self.end)
        if self.area is not None and not _AREA.match(self.area):
            raise Invalid(
                f"area：辖区编码格式无效“{self.area}”（如 YA/YA01）",
                f"area: not an area path '{self.area}' (e.g. YA/YA01)",
                code="invalid_area",
            )
        if self.category is not None and not _CATEGORY.match(self.category):
            raise Invalid(
                f"category：类别编码格式无效“{self.category}”（如 E01、E0101）",
                f"category: not a category code '{self.category}' (e.g. E01, E0101)",
                code="invalid_category",
            )


@dataclass(frozen=True)
class BacktestResult:
    version: PolicyVersion
    draft: bool
    result: Backtest


def _instant(raw: str | None) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw)


def history_of(r: asyncpg.Record) -> History:
    escalated: dict[str, list[Level]] = {}
    for e in r["escalations"]:
        escalated.setdefault(e["clock"], []).append(Level(e["level"]))
    live = {
        Clock(k["clock"]): LiveClock(
            warn_at=_instant(k["warn_at"]),
            due_at=datetime.fromisoformat(k["due_at"]),
            stopped_at=_instant(k["stopped_at"]),
            escalated=tuple(escalated.get(k["clock"], ())),
        )
        for k in r["clocks"]
    }
    return History(
        assignment_id=str(r["assignment_id"]),
        department_id=r["department_id"],
        department_name=r["department_name"],
        category=r["category"],
        priority=r["priority"],
        dispatched_at=r["dispatched_at"],
        stops=stops(
            signed_for=r["signed_for_at"],
            progressed=r["progressed_at"],
            resolved=r["resolved_at"],
            ended=r["ended_at"],
        ),
        extensions=tuple(Extension(d) for d in r["extension_days"]),
        pauses=tuple(
            Pause(datetime.fromisoformat(p["start"]), _instant(p["end"]), p["reason"])
            for p in r["pauses"]
        ),
        live=live,
    )


async def _version(conn: Conn, q: BacktestQuery) -> PolicyVersion:
    if q.draft is not None:
        return version_from_data(q.draft)  # validated as a new version is (Invalid, 422)
    row = await sla_repo.policy_version(conn, q.version or 0)
    if row is None:
        raise Invalid(
            f"version：时限策略版本 {q.version} 不存在",
            f"version: SLA policy version {q.version} not found",
            code="policy_version_not_found",
        )
    return version_from_data(row["data"])


def _bounds(q: BacktestQuery) -> tuple[datetime, datetime]:
    start = datetime.combine(q.start, time(), CN)
    return start, datetime.combine(q.end + timedelta(days=1), time(), CN)


async def run_backtest(
    pool: asyncpg.Pool, q: BacktestQuery, areas: tuple[str, ...] | None, now: datetime
) -> BacktestResult:
    """The backtest of ``q`` over the assignments in ``areas`` (None: anywhere)."""
    q.check()
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        version = await _version(conn, q)
        calendar = await load_calendar(conn)
        if calendar is None:
            raise Conflict(
                "尚未设置工作日历，无法回测", "no working calendar is set", code="calendar_not_set"
            )
        start, end = _bounds(q)
        rows = await repo.histories(conn, start, end, areas, q.category)
    histories = [history_of(r) for r in rows]
    return BacktestResult(version, q.draft is not None, backtest(histories, version, calendar, now))
