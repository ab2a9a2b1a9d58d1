"""Backtesting an SLA policy version (时限策略回测), over HTTP and on the command line.

- ``POST /sla/backtest`` (district command, street, community, supervisor; within the
  caller's area): ``{"version": 2 | "policy": {…a new version's body…}, "from": "2026-11-01",
  "to": "2026-11-30", "area": "YA/YA01"?, "category": "E01"?}`` → per clock, per department
  and per week, how many clocks the policy would have warned, made late and escalated (per
  level), next to what the live policies produced. Read-only. Bad input: 422, bilingual.
- ``python -m services.tracking backtest --version N --from D --to D [--area A]
  [--category C] [--json]``: the same as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from services.tracking.config import Settings
from services.tracking.domain.backtest import Pair, Tally
from services.tracking.domain.policy import CLOCK_ZH, LEVEL_ZH
from services.tracking.handlers.backtest import BacktestQuery, BacktestResult, run_backtest
from shared import db
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.clock import utcnow
from shared.contract.values import Level
from shared.errors import DomainError
from shared.service import Pool

router = APIRouter(prefix="/sla", tags=["sla"])
Supervisors = Annotated[Principal, Depends(allow(*AREA_ROLES, Role.SUPERVISOR))]


class BacktestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    version: int | None = Field(None, ge=1, le=1_000_000, description="a stored policy version")
    policy: dict[str, Any] | None = Field(
        None, description="a draft: the body of POST /sla/policy-versions, validated alike"
    )
    from_: date = Field(alias="from", description="first day of dispatch (Beijing)")
    to: date = Field(description="last day of dispatch (Beijing), included")
    area: str | None = Field(None, max_length=200, description="an area path, e.g. YA/YA01")
    category: str | None = Field(None, max_length=16, description="a category code; 大类 or 小类")


class TallyOut(BaseModel):
    clocks: int = Field(description="clocks run (per clock: assignments having that clock)")
    warned: int = Field(description="预警: still running after the warning instant")
    late: int = Field(description="超时: still running after the deadline")
    escalated: dict[str, int] = Field(description="逐级上报: clocks reaching each level")

    @classmethod
    def of(cls, t: Tally) -> TallyOut:
        return cls(
            clocks=t.clocks,
            warned=t.warned,
            late=t.late,
            escalated={level.value: t.escalated.get(level, 0) for level in Level},
        )


class PairOut(BaseModel):
    assignments: int
    backtest: TallyOut = Field(description="under the backtested policy")
    live: TallyOut = Field(description="as the policies pinned at dispatch actually ran")


def _pair(p: Pair) -> dict[str, Any]:
    return {
        "assignments": p.assignments,
        "backtest": TallyOut.of(p.backtest),
        "live": TallyOut.of(p.live),
    }


class ClockRowOut(PairOut):
    clock: str
    label: str


class DepartmentRowOut(PairOut):
    department_id: str
    department_name: str | None


class WeekRowOut(PairOut):
    week: date = Field(description="the Monday (Beijing) of the week of dispatch")


class BacktestOut(BaseModel):
    version: int = Field(description="the policy version's number (a draft's own)")
    draft: bool
    levels: dict[str, str] = Field(description="escalation levels and their names")
    assignments: int
    clocks: list[ClockRowOut]
    departments: list[DepartmentRowOut]
    weeks: list[WeekRowOut]

    @classmethod
    def of(cls, r: BacktestResult) -> BacktestOut:
        b = r.result
        return cls(
            version=r.version.version,
            draft=r.draft,
            levels={level.value: LEVEL_ZH[level] for level in Level},
            assignments=b.assignments,
            clocks=[
                ClockRowOut(clock=c.value, label=CLOCK_ZH[c], **_pair(p))
                for c, p in sorted(b.by_clock.items())
            ],
            departments=[
                DepartmentRowOut(
                    department_id=d,
                    department_name=b.department_names.get(d),
                    **_pair(p),
                )
                for d, p in sorted(b.by_department.items())
            ],
            weeks=[WeekRowOut(week=w, **_pair(p)) for w, p in sorted(b.by_week.items())],
        )


def _query(body: BacktestIn) -> BacktestQuery:
    return BacktestQuery(
        start=body.from_,
        end=body.to,
        version=body.version,
        draft=body.policy,
        area=body.area,
        category=body.category,
    )


@router.post(
    "/backtest",
    response_model=BacktestOut,
    summary="Backtest an SLA policy version on a past period (时限策略回测); read-only",
)
async def post_backtest(db_pool: Pool, who: Supervisors, body: BacktestIn) -> BacktestOut:
    query = _query(body)
    query.check()  # 422 before 403: a malformed area is not someone else's
    if body.area is not None:
        who.require_area(body.area)
    areas = (body.area,) if body.area else who.areas
    return BacktestOut.of(await run_backtest(db_pool, query, areas, utcnow()))


# --- the command line ----------------------------------------------------------------------


def _row(name: str, p: PairOut) -> str:
    def cells(t: TallyOut) -> str:
        esc = "/".join(str(t.escalated[level.value]) for level in Level)
        return f"{t.clocks:>6} {t.warned:>6} {t.late:>6} {esc:>9}"

    return f"{name:24} {p.assignments:>6} | {cells(p.backtest)} | {cells(p.live)}"


def print_backtest(out: BacktestOut) -> None:
    kind = "draft" if out.draft else "version"
    print(f"SLA policy {kind} {out.version}: {out.assignments} assignments")
    head = f"{'clocks':>6} {'warned':>6} {'late':>6} {'esc c/s/d':>9}"
    print(f"{'':24} {'asgmts':>6} | {head} | {head}")
    print(f"{'':24} {'':>6} | {'backtest':^30} | {'live':^30}")
    for c in out.clocks:
        print(_row(f"{c.clock} {c.label}", c))
    for d in out.departments:
        print(_row(f"{d.department_name or d.department_id}", d))
    for w in out.weeks:
        print(_row(f"week {w.week.isoformat()}", w))


async def _backtest(settings: Settings, args: argparse.Namespace) -> BacktestOut:
    pool = await db.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        query = BacktestQuery(
            start=args.from_,
            end=args.to,
            version=args.version,
            area=args.area,
            category=args.category,
        )
        return BacktestOut.of(await run_backtest(pool, query, None, utcnow()))
    finally:
        await pool.close()


def backtest_command(settings: Settings, argv: list[str]) -> int:
    """``python -m services.tracking backtest --version N --from D --to D [--area A]``."""
    parser = argparse.ArgumentParser(prog="backtest", description=__doc__)
    parser.add_argument("--version", type=int, required=True)
    parser.add_argument("--from", dest="from_", type=date.fromisoformat, required=True)
    parser.add_argument("--to", type=date.fromisoformat, required=True)
    parser.add_argument("--area")
    parser.add_argument("--category")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = asyncio.run(_backtest(settings, args))
    except DomainError as exc:
        print(f"{exc.zh}\n{exc.en}")
        return 2
    if args.json:
        print(json.dumps(out.model_dump(mode="json", by_alias=True), ensure_ascii=False, indent=2))
    else:
        print_backtest(out)
    return 0
