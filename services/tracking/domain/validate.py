"""Checks on SLA policies and their versions: anything that would make a clock meaningless is
refused with ``Invalid`` naming the field, Chinese first — a zero or negative limit, a warning
at or after the deadline, an empty or non-increasing escalation ladder, two versions in force
at once. Nothing is stored unless these pass."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

from services.tracking.domain.policy import (
    LEVEL_RANK,
    PRIORITIES,
    Ladder,
    Limit,
    PolicyVersion,
    SlaPolicy,
    Unit,
    invalid,
)
from shared.contract.values import Level

MAX_AMOUNT = 100_000  # generous: 100,000 minutes is ten weeks


def check_limit(limit: object, where: str, *, zero_ok: bool = False) -> None:
    if not isinstance(limit, Limit) or not isinstance(limit.unit, Unit):
        raise invalid(
            where, "须为时长，如 “2 working_hours”", "must be a duration, e.g. '2 working_hours'"
        )
    amount = limit.amount
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise invalid(where, "时长须为整数", "the amount must be a whole number")
    if amount < 0 or (amount == 0 and not zero_ok):
        raise invalid(
            where,
            "时限必须大于0" if not zero_ok else "时长不能为负数",
            "a limit must be positive" if not zero_ok else "must not be negative",
        )
    if amount > MAX_AMOUNT:
        raise invalid(where, f"时长不能超过{MAX_AMOUNT}", f"must not exceed {MAX_AMOUNT}")


def check_ladder(ladder: Ladder, where: str) -> None:
    steps = ladder.steps
    if not steps:
        raise invalid(
            f"{where}.steps", "升级阶梯至少要有一级", "the escalation ladder needs a step"
        )
    for i, step in enumerate(steps):
        if not isinstance(step.level, Level):
            raise invalid(
                f"{where}.steps[{i}].level",
                "层级须为 community、street 或 district",
                "the level must be community, street or district",
            )
        check_limit(step.after, f"{where}.steps[{i}].after", zero_ok=True)
    first = steps[0].after
    for i, (before, after) in enumerate(pairwise(steps), start=1):
        here = f"{where}.steps[{i}]"
        if (after.after.unit, after.after.working) != (first.unit, first.working):
            raise invalid(
                here,
                f"各级延时须使用同一计时单位（与第一级的“{first}”相同）",
                "every step's delay must use the first step's unit and time basis",
            )
        if after.after.amount <= before.after.amount:
            raise invalid(
                here, "升级阶梯的延时须逐级递增", "the ladder's delays must increase step by step"
            )
        if LEVEL_RANK[after.level] <= LEVEL_RANK[before.level]:
            raise invalid(
                here,
                "升级须逐级向上（社区 → 街道 → 区）",
                "each step must go up a level (community -> street -> district)",
            )
    if ladder.repeat_every is not None:
        check_limit(ladder.repeat_every, f"{where}.repeat_every")


def check_policy(policy: SlaPolicy, where: str) -> None:
    check_limit(policy.sign_for, f"{where}.sign_for")
    check_limit(policy.resolve, f"{where}.resolve")
    if policy.on_site is not None:
        check_limit(policy.on_site, f"{where}.on_site")
    ratio = policy.warning_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
        raise invalid(
            f"{where}.warning_ratio",
            f"预警比例须大于0且小于1（{ratio!r} 会让预警落在时限之后或同时）",
            f"the warning ratio must be in (0, 1); {ratio!r} warns at or after the deadline",
        )
    check_ladder(policy.ladder, f"{where}.ladder")


def _aware(at: object, where: str) -> None:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise invalid(where, "须为带时区的时间", "must be a date-time with a time zone")


def check_version(version: PolicyVersion) -> None:
    where = f"versions[{version.version}]"
    if (
        isinstance(version.version, bool)
        or not isinstance(version.version, int)
        or version.version < 1
    ):
        raise invalid("version", "版本号须为正整数", "the version must be a positive integer")
    _aware(version.effective_from, f"{where}.effective_from")
    missing = [p for p in PRIORITIES if p not in version.defaults]
    if missing:
        raise invalid(
            f"{where}.defaults",
            f"缺少优先级 {missing[0]} 的默认策略",
            f"the default policy for priority {missing[0]} is missing",
        )
    for priority, policy in version.defaults.items():
        if priority not in PRIORITIES:
            raise invalid(f"{where}.defaults.{priority}", "未知优先级", "unknown priority")
        check_policy(policy, f"{where}.defaults.{priority}")
    for (category, priority), policy in version.rules.items():
        here = f"{where}.rules.{category}.{priority}"
        if not isinstance(category, str) or not category.strip():
            raise invalid(here, "事件分类编码不能为空", "the category code must not be empty")
        if priority not in PRIORITIES:
            raise invalid(here, "未知优先级", "unknown priority")
        check_policy(policy, here)


def check_versions(versions: Sequence[PolicyVersion]) -> None:
    """Every version valid; no two with the same number or the same ``effective_from`` (they
    would be in force at once); numbers increasing with ``effective_from``."""
    if not versions:
        raise invalid("versions", "至少要有一个策略版本", "at least one policy version is needed")
    for v in versions:
        check_version(v)
    numbers = [v.version for v in versions]
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if repeated:
        raise invalid("version", f"版本号 {repeated[0]} 重复", f"version {repeated[0]} is repeated")
    ordered = sorted(versions, key=lambda v: v.effective_from)
    for before, after in pairwise(ordered):
        if after.effective_from == before.effective_from:
            raise invalid(
                f"versions[{after.version}].effective_from",
                f"与版本 {before.version} 同时生效（生效时间重叠）",
                f"takes effect at the same time as version {before.version} (overlap)",
            )
        if after.version < before.version:
            raise invalid(
                f"versions[{after.version}].effective_from",
                f"版本 {after.version} 晚于版本 {before.version} 生效，版本号须随生效时间递增",
                f"version {after.version} takes effect after version {before.version}; "
                "numbers must increase with effective_from",
            )
