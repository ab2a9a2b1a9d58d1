"""SLA policies (时限策略): per category × priority, the clocks a department runs against —
sign-for (签收/报到时限), on-site arrival for urgent cases (到场时限), resolution (办结时限) —
the warning threshold (预警, the yellow light) and the escalation ladder (逐级上报: community →
street → district after the deadline, repeating while the case stays overdue).

Policies come in versions; a version is in force from its ``effective_from`` until the next
version's. The version in force when an assignment is dispatched is pinned to it
(``pin_policy``), so editing the policy later never rewrites an old case's clocks.

Lookup falls back from the 小类 to its 大类 to the version's default for the priority, so a
catalogue that grows needs no new policy rows. Pure: standard library and the contract's values
only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from services.tracking.domain.timeline import Timeline
from shared.contract.values import Clock, Level, Priority
from shared.errors import Invalid

PRIORITIES = tuple(p.value for p in Priority)  # urgent, normal, minor
PRIORITY_ZH = {Priority.URGENT: "紧急", Priority.NORMAL: "一般", Priority.MINOR: "轻微"}
DEFAULT = "*"  # the key of a version's default policies in data


def invalid(field_name: str, zh: str, en: str) -> Invalid:
    return Invalid(f"{field_name}：{zh}", f"{field_name}: {en}", code="invalid_policy")


class Unit(StrEnum):
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"  # a working day is the calendar's standard day; a calendar day is 24 h


UNIT_ZH = {Unit.MINUTES: "分钟", Unit.HOURS: "小时", Unit.DAYS: "天"}
_UNIT_DELTA = {Unit.MINUTES: timedelta(minutes=1), Unit.HOURS: timedelta(hours=1)}


@dataclass(frozen=True)
class Limit:
    """An amount of time, in working time (工作时间) or calendar time (自然时间)."""

    amount: int
    unit: Unit
    working: bool

    def duration(self, basis: Timeline) -> timedelta:
        """How much of ``basis`` time this is (a day is ``basis.day_length``)."""
        step = basis.day_length if self.unit is Unit.DAYS else _UNIT_DELTA[self.unit]
        return step * self.amount

    def __str__(self) -> str:
        if self.unit is Unit.DAYS:
            return f"{self.amount}个工作日" if self.working else f"{self.amount}天"
        return f"{self.amount}{'个工作' if self.working else ''}{UNIT_ZH[self.unit]}"


def working_minutes(n: int) -> Limit:
    return Limit(n, Unit.MINUTES, True)


def working_hours(n: int) -> Limit:
    return Limit(n, Unit.HOURS, True)


def working_days(n: int) -> Limit:
    return Limit(n, Unit.DAYS, True)


def minutes(n: int) -> Limit:
    return Limit(n, Unit.MINUTES, False)


def hours(n: int) -> Limit:
    return Limit(n, Unit.HOURS, False)


# The clocks (shared.contract.Clock) and the levels an escalation reaches, in the order of the
# ladder (shared.contract.Level), are the contract's; their names for people are these.
CLOCK_ZH: dict[str, str] = {Clock.SIGN_FOR: "签收", Clock.ON_SITE: "到场", Clock.RESOLVE: "办结"}
LEVEL_ZH: dict[str, str] = {Level.COMMUNITY: "社区", Level.STREET: "街道", Level.DISTRICT: "区"}
LEVEL_RANK = {level: rank for rank, level in enumerate(Level)}


@dataclass(frozen=True)
class EscalationStep:
    level: Level
    after: Limit  # after the deadline (0 = at the deadline)


@dataclass(frozen=True)
class Ladder:
    """Escalation steps with increasing delays after the deadline; ``repeat_every``: after
    the last step, escalate again to the last level this often while the case stays overdue."""

    steps: tuple[EscalationStep, ...]
    repeat_every: Limit | None = None


@dataclass(frozen=True)
class SlaPolicy:
    """The clocks of one category × priority; every clock counts from the dispatch."""

    sign_for: Limit
    resolve: Limit
    ladder: Ladder
    on_site: Limit | None = None
    warning_ratio: float = 0.8  # warn when this share of a clock's time is used up

    def clocks(self) -> dict[Clock, Limit]:
        out = {Clock.SIGN_FOR: self.sign_for, Clock.RESOLVE: self.resolve}
        if self.on_site is not None:
            out[Clock.ON_SITE] = self.on_site
        return out


@dataclass(frozen=True)
class PolicyVersion:
    """One version of the whole policy table: ``defaults`` per priority (all three
    required) and ``rules`` per (category code, priority), a 大类 or a 小类 code."""

    version: int
    effective_from: datetime
    defaults: Mapping[str, SlaPolicy]
    rules: Mapping[tuple[str, str], SlaPolicy] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class PinnedPolicy:
    """The policy an assignment runs under, fixed at dispatch: which version, which rule."""

    version: int
    category: str
    priority: str
    matched: str  # the category code whose rule applied, or DEFAULT
    policy: SlaPolicy


# --- lookup and pinning ---------------------------------------------------------------------


Parents = Mapping[str, str | None] | Callable[[str], str | None]


def gbt_parent(code: str) -> str | None:
    """The 大类 of a 小类 by the GB/T 30428 code convention: ``E0103`` → ``E01``."""
    return code[:3] if len(code) > 3 else None


def lineage(category: str, parents: Parents | None = None) -> tuple[str, ...]:
    """The category's codes from itself up to its 大类. ``parents`` (code → parent code, from
    the catalogue) decides where it knows the code; otherwise the code convention does."""
    chain = [category]
    while True:
        code = chain[-1]
        if callable(parents):
            parent = parents(code)
        elif parents is not None and code in parents:
            parent = parents[code]
        else:
            parent = gbt_parent(code)
        if parent is None or parent in chain:
            return tuple(chain)
        chain.append(parent)


def policy_for(
    version: PolicyVersion, category: str, priority: str, parents: Parents | None = None
) -> tuple[str, SlaPolicy]:
    """(matched code or DEFAULT, policy): the 小类's rule, else its 大类's, else the default."""
    if priority not in PRIORITIES:
        raise invalid(
            "priority",
            f"未知优先级“{priority}”（urgent、normal、minor）",
            f"unknown priority '{priority}' (urgent, normal, minor)",
        )
    for code in lineage(category, parents):
        found = version.rules.get((code, priority))
        if found is not None:
            return code, found
    return DEFAULT, version.defaults[priority]


def policy_in_force(versions: Iterable[PolicyVersion], at: datetime) -> PolicyVersion:
    """The version in force at ``at``: the latest whose ``effective_from`` is not after it."""
    candidates = [v for v in versions if v.effective_from <= at]
    if not candidates:
        raise Invalid(
            f"{at.isoformat()} 时没有生效的时限策略",
            f"no SLA policy version is in force at {at.isoformat()}",
            code="no_policy_in_force",
        )
    return max(candidates, key=lambda v: v.effective_from)


def pin_policy(
    versions: Iterable[PolicyVersion],
    category: str,
    priority: str,
    dispatched_at: datetime,
    parents: Parents | None = None,
) -> PinnedPolicy:
    """The policy an assignment dispatched at ``dispatched_at`` runs under, for good."""
    version = policy_in_force(versions, dispatched_at)
    matched, policy = policy_for(version, category, priority, parents)
    return PinnedPolicy(version.version, category, priority, matched, policy)
