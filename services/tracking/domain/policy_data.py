"""SLA policies as data (JSON-shaped), and back: what an admin API stores and what a pinned
policy's snapshot looks like on an assignment.

A duration is ``"<amount> <unit>"`` with unit one of minutes, hours, days (calendar time) or
working_minutes, working_hours, working_days (singular forms accepted)::

    {"sign_for": "2 working_hours", "resolve": "5 working_days", "on_site": null,
     "warning_ratio": 0.8,
     "ladder": {"steps": [["community", "0 working_hours"], ["street", "4 working_hours"],
                          ["district", "8 working_hours"]],
                "repeat_every": "1 working_day"}}

A version: ``{"version": 2, "effective_from": "2026-07-01T00:00:00+08:00", "note": "…",
"defaults": {"urgent": {…}, "normal": {…}, "minor": {…}}, "rules": {"E02": {"urgent": {…}}}}``.
Parsing validates (``validate``) and raises ``Invalid`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.tracking.domain.policy import (
    EscalationStep,
    Ladder,
    Limit,
    PinnedPolicy,
    PolicyVersion,
    SlaPolicy,
    Unit,
    invalid,
)
from services.tracking.domain.validate import check_policy, check_version
from shared.contract.values import Level

POLICY_FIELDS = {"sign_for", "resolve", "on_site", "warning_ratio", "ladder"}
VERSION_FIELDS = {"version", "effective_from", "note", "defaults", "rules"}


def parse_limit(raw: Any, where: str) -> Limit:
    text = str(raw).strip() if isinstance(raw, str) else ""
    amount_text, _, unit_text = text.partition(" ")
    unit_text = unit_text.strip().removesuffix("s") + "s"
    working = unit_text.startswith("working_")
    try:
        unit = Unit(unit_text.removeprefix("working_"))
        amount = int(amount_text)
    except ValueError:
        raise invalid(
            where,
            f"“{raw}”不是有效时长（如 “30 minutes”、“2 working_hours”、“5 working_days”）",
            f"'{raw}' is not a duration (e.g. '30 minutes', '2 working_hours', '5 working_days')",
        ) from None
    return Limit(amount, unit, working)


def limit_to_data(limit: Limit) -> str:
    return f"{limit.amount} {'working_' if limit.working else ''}{limit.unit.value}"


def _fields(raw: Any, known: set[str] | None, where: str) -> Mapping[str, Any]:
    """``raw`` as a mapping whose keys are all ``known`` (any keys when None)."""
    if not isinstance(raw, Mapping):
        raise invalid(where, "须为对象", "must be an object")
    unknown = sorted(set(raw) - known) if known is not None else []
    if unknown:
        raise invalid(
            f"{where}.{unknown[0]}",
            f"未知字段（可用：{'、'.join(sorted(known or ()))}）",
            f"unknown field (known: {', '.join(sorted(known or ()))})",
        )
    return raw


def _parse_ladder(raw: Any, where: str) -> Ladder:
    raw = _fields(raw, {"steps", "repeat_every"}, where)
    steps = []
    for i, item in enumerate(raw.get("steps") or []):
        here = f"{where}.steps[{i}]"
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise invalid(here, "每一级须为 [层级, 延时]", "a step is [level, delay]")
        try:
            level = Level(item[0])
        except ValueError:
            raise invalid(
                f"{here}.level",
                f"未知层级“{item[0]}”（community、street、district）",
                f"unknown level '{item[0]}' (community, street, district)",
            ) from None
        steps.append(EscalationStep(level, parse_limit(item[1], f"{here}.after")))
    repeat = raw.get("repeat_every")
    return Ladder(
        tuple(steps), None if repeat is None else parse_limit(repeat, f"{where}.repeat_every")
    )


def policy_from_data(raw: Any, where: str = "policy") -> SlaPolicy:
    raw = _fields(raw, POLICY_FIELDS, where)
    for required in ("sign_for", "resolve", "ladder"):
        if raw.get(required) is None:
            raise invalid(f"{where}.{required}", "必填", "required")
    on_site = raw.get("on_site")
    policy = SlaPolicy(
        sign_for=parse_limit(raw["sign_for"], f"{where}.sign_for"),
        resolve=parse_limit(raw["resolve"], f"{where}.resolve"),
        on_site=None if on_site is None else parse_limit(on_site, f"{where}.on_site"),
        warning_ratio=raw.get("warning_ratio", 0.8),
        ladder=_parse_ladder(raw["ladder"], f"{where}.ladder"),
    )
    check_policy(policy, where)
    return policy


def policy_to_data(policy: SlaPolicy) -> dict[str, Any]:
    ladder = policy.ladder
    return {
        "sign_for": limit_to_data(policy.sign_for),
        "resolve": limit_to_data(policy.resolve),
        "on_site": None if policy.on_site is None else limit_to_data(policy.on_site),
        "warning_ratio": policy.warning_ratio,
        "ladder": {
            "steps": [[s.level.value, limit_to_data(s.after)] for s in ladder.steps],
            "repeat_every": (
                None if ladder.repeat_every is None else limit_to_data(ladder.repeat_every)
            ),
        },
    }


def _parse_time(raw: Any, where: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        at = None
    if at is None or at.tzinfo is None:
        raise invalid(
            where,
            f"“{raw}”不是带时区的 ISO 8601 时间",
            f"'{raw}' is not an ISO 8601 date-time with a time zone",
        )
    return at


def version_from_data(raw: Any) -> PolicyVersion:
    raw = _fields(raw, VERSION_FIELDS, "version")
    number = raw.get("version")
    where = f"versions[{number}]"
    defaults = _fields(raw.get("defaults"), {"urgent", "normal", "minor"}, f"{where}.defaults")
    rules_raw = _fields(raw.get("rules") or {}, None, f"{where}.rules")
    rules = {}
    for category, per_priority in rules_raw.items():
        here = f"{where}.rules.{category}"
        for priority, policy in _fields(per_priority, {"urgent", "normal", "minor"}, here).items():
            rules[(category, priority)] = policy_from_data(policy, f"{here}.{priority}")
    version = PolicyVersion(
        version=number,  # checked below
        effective_from=_parse_time(raw.get("effective_from"), f"{where}.effective_from"),
        defaults={p: policy_from_data(d, f"{where}.defaults.{p}") for p, d in defaults.items()},
        rules=rules,
        note=str(raw.get("note") or ""),
    )
    check_version(version)
    return version


def version_to_data(version: PolicyVersion) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    for (category, priority), policy in sorted(version.rules.items()):
        rules.setdefault(category, {})[priority] = policy_to_data(policy)
    return {
        "version": version.version,
        "effective_from": version.effective_from.isoformat(),
        "note": version.note,
        "defaults": {p: policy_to_data(d) for p, d in version.defaults.items()},
        "rules": rules,
    }


def pinned_to_data(pinned: PinnedPolicy) -> dict[str, Any]:
    """The snapshot stored with an assignment (its clocks never depend on later edits)."""
    return {
        "version": pinned.version,
        "category": pinned.category,
        "priority": pinned.priority,
        "matched": pinned.matched,
        "policy": policy_to_data(pinned.policy),
    }


def pinned_from_data(raw: Mapping[str, Any]) -> PinnedPolicy:
    return PinnedPolicy(
        raw["version"],
        raw["category"],
        raw["priority"],
        raw["matched"],
        policy_from_data(raw["policy"]),
    )
