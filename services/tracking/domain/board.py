"""The supervisors' boards (督办) as rules: what a board item is, how late or how close it is,
where a reader of the live stream stands, and which assignments an urging (督办) reaches.

Pure (the contract's vocabulary and ``cases``); no I/O, no clock (callers pass ``now``).
- The **overdue board** (超时, 红灯): every running clock past its deadline, most late first.
- The **near-overdue board** (临期, 黄灯): running clocks past their warning instant but not yet
  due, and — before their warning — resolution clocks whose forecast says they will likely miss
  the deadline (预计超期, ``predicted``), least time left first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple
from uuid import UUID

from services.tracking.domain.cases import AssignmentState
from shared.contract import Clock
from shared.lifecycle import CaseStatus


class Board(StrEnum):
    OVERDUE = "overdue"  # 超时
    NEAR_OVERDUE = "near_overdue"  # 临期 (预警后、超时前)


@dataclass(frozen=True)
class BoardItem:
    """One running clock on a board, with its case, its assignment and how hard it was
    pushed: the escalation level it reached (逐级上报) and how often it was urged (督办)."""

    case_id: UUID
    case_no: str
    area_path: str
    category: str
    priority: str
    status: CaseStatus
    assignment_id: UUID
    department_id: str
    department_name: str | None
    clock: Clock
    started_at: datetime
    warn_at: datetime | None
    due_at: datetime
    overdue_alerted_at: datetime | None  # when the overdue alert fired (None: not yet)
    escalation_level: str | None  # community / street / district, None: none yet
    escalation_step: int | None
    urge_count: int
    last_urged_at: datetime | None
    # the resolution forecast (预计办结时间) of the assignment, for its resolution clock
    expected_at: datetime | None = None
    expected_earliest: datetime | None = None
    expected_latest: datetime | None = None
    breach_likely: bool = False  # 预计超期: likely to miss the deadline
    breach_probability: float | None = None
    breach_reason_zh: str | None = None
    breach_reason_en: str | None = None

    def predicted(self, now: datetime) -> bool:
        """On the near-overdue board for its predicted breach alone: the warning has not come
        yet (预计超期, before the yellow light)."""
        return self.breach_likely and (self.warn_at is None or self.warn_at > now)

    def late_by(self, now: datetime) -> timedelta:
        return max(now - self.due_at, timedelta(0))

    def left(self, now: datetime) -> timedelta:
        return max(self.due_at - now, timedelta(0))


def span(d: timedelta) -> tuple[str, str]:
    """A length of time for a person, to the minute: ``2小时5分`` / ``2 h 5 min``."""
    minutes = int(d.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return (
            (f"{days}天{hours}小时", f"{days} d {hours} h") if hours else (f"{days}天", f"{days} d")
        )
    if hours:
        return f"{hours}小时{mins}分", f"{hours} h {mins} min"
    if mins:
        return f"{mins}分钟", f"{mins} min"
    return "不足1分钟", "under 1 min"


def _hm(d: timedelta) -> str:
    return span(d)[0]


def lateness_label(late: timedelta) -> str:
    """How late, for a person: ``超时 2小时5分``."""
    return f"超时 {_hm(late)}" if late >= timedelta(minutes=1) else "超时不足1分钟"


def time_left_label(left: timedelta) -> str:
    """How close, for a person: ``剩余 25分钟``."""
    return f"剩余 {_hm(left)}" if left >= timedelta(minutes=1) else "剩余不足1分钟"


# --- the live stream's position ------------------------------------------------------------


class Position(NamedTuple):
    """Where a reader of the board feed stands: (transaction id, sequence) of the last change
    served. Changes are served in this order and only from transactions that ended, so a
    position never has to move back (see handlers.boards.feed_changes)."""

    txid: int
    seq: int

    def __str__(self) -> str:
        return f"{self.txid}-{self.seq}"


_POSITION = re.compile(r"^(\d{1,19})-(\d{1,19})$")


def parse_position(raw: str) -> Position | None:
    """A ``Last-Event-ID`` as we send it (``<txid>-<seq>``); None if it is not one."""
    m = _POSITION.match(raw.strip())
    if m is None:
        return None
    txid, seq = int(m[1]), int(m[2])
    return Position(txid, seq) if txid < 2**63 and seq < 2**63 else None


# --- urging (督办) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UrgeTarget:
    assignment_id: UUID
    department_id: str
    department_name: str | None
    state: AssignmentState
    ended: bool
    paused: bool = False  # an approved pause (挂账/缓办) runs: its clocks stand still

    @property
    def open(self) -> bool:
        """Still being handled: not resolved, not rejected or transferred away."""
        return not self.ended and self.state is not AssignmentState.RESOLVED


class UrgeProblem(StrEnum):
    CASE_CLOSED = "case_closed"
    NOT_ON_CASE = "department_not_on_case"  # the named department has no assignment
    NOTHING_OPEN = "no_open_assignment"
    PAUSED = "assignment_paused"  # every one left stands still (挂账/缓办)


def urge_targets(
    case: CaseStatus, assignments: list[UrgeTarget], department_id: str | None
) -> list[UrgeTarget] | UrgeProblem:
    """The open assignments an urging reaches (all of them, or the named department's), or
    why there are none. A closed case is never urged, nor an assignment whose clocks an
    approved pause (挂账/缓办) holds still: nothing is late there to hurry."""
    if case is CaseStatus.CLOSED:
        return UrgeProblem.CASE_CLOSED
    if department_id is not None:
        assignments = [a for a in assignments if a.department_id == department_id]
        if not assignments:
            return UrgeProblem.NOT_ON_CASE
    targets = [a for a in assignments if a.open]
    if not targets:
        return UrgeProblem.NOTHING_OPEN
    return [a for a in targets if not a.paused] or UrgeProblem.PAUSED
