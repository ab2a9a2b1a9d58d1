"""Rankings (排名) and the red/black list (红黑榜) of departments or areas, from their KPIs and
thresholds given as data:

    {"min_received": 5,
     "red":   [["response_rate", ">=", 0.95], ["satisfaction_rate", ">=", 0.9]],
     "black": [["response_rate", "<", 0.8], ["rejections", ">=", 3]]}

A unit with fewer than ``min_received`` assignments is neither ranked nor listed (too few to
judge). Black (黑榜) when ANY black criterion holds; red (红榜) when ALL red criteria hold and it
is not black. A criterion on a rate with nothing to divide (e.g. no ratings) does not hold.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.tracking.domain.kpi import Kpi, Rate
from shared.errors import Invalid

# metric name → (label, how to read it from a Kpi, whether it is a rate, higher is better)
METRICS: dict[str, tuple[str, Callable[[Kpi], Any], bool, bool]] = {
    "received": ("受理量", lambda k: k.received, False, True),
    "signed_for_on_time": ("按时签收数", lambda k: k.signed_for_on_time, False, True),
    "resolved": ("办结数", lambda k: k.resolved, False, True),
    "resolved_on_time": ("按时办结数", lambda k: k.resolved_on_time, False, True),
    "overdue_now": ("当前超时数", lambda k: k.overdue_now, False, False),
    "reworked": ("返工数", lambda k: k.reworked, False, False),
    "rejections": ("推诿（退单）数", lambda k: k.rejections, False, False),
    "extensions": ("延期数", lambda k: k.extensions, False, False),
    "response_rate": ("响应率", lambda k: k.response_rate, True, True),
    "resolution_rate": ("解决率", lambda k: k.resolution_rate, True, True),
    "satisfaction_rate": ("满意率", lambda k: k.satisfaction_rate, True, True),
    "on_time_rate": ("按时办结率", lambda k: k.on_time_rate, True, True),
    "rework_rate": ("返工率", lambda k: k.rework_rate, True, False),
}
OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
DEFAULT_RANKING = ("response_rate", "resolution_rate", "satisfaction_rate")


def _invalid(field_name: str, zh: str, en: str) -> Invalid:
    return Invalid(f"{field_name}：{zh}", f"{field_name}: {en}", code="invalid_thresholds")


def metric_value(kpi: Kpi, metric: str) -> float | None:
    value = METRICS[metric][1](kpi)
    return value.value if isinstance(value, Rate) else value


@dataclass(frozen=True)
class Ranked:
    position: int  # 1-based; equal figures share a position (1, 2, 2, 4)
    unit: str
    kpi: Kpi


def _check_metric(metric: str, where: str) -> None:
    if metric not in METRICS:
        raise _invalid(
            where,
            f"未知指标“{metric}”（可用：{'、'.join(METRICS)}）",
            f"unknown metric '{metric}' (known: {', '.join(METRICS)})",
        )


def rank(
    kpis: Mapping[str, Kpi], by: Sequence[str] = DEFAULT_RANKING, min_received: int = 1
) -> list[Ranked]:
    """Best first by the metrics ``by`` in turn (each in its better direction); a unit with
    no figure for a metric comes after those with one; ties share a position, then by name."""
    if not by:
        raise _invalid("by", "至少按一个指标排名", "rank by at least one metric")
    for i, metric in enumerate(by):
        _check_metric(metric, f"by[{i}]")

    def key(unit: str) -> tuple[Any, ...]:
        parts: list[Any] = []
        for metric in by:
            value = metric_value(kpis[unit], metric)
            better_high = METRICS[metric][3]
            parts.append((1, 0.0) if value is None else (0, -value if better_high else value))
        return tuple(parts)

    units = sorted(
        (u for u, k in kpis.items() if k.received >= min_received), key=lambda u: (key(u), u)
    )
    out: list[Ranked] = []
    for i, unit in enumerate(units):
        same = out and key(out[-1].unit) == key(unit)
        out.append(Ranked(out[-1].position if same else i + 1, unit, kpis[unit]))
    return out


@dataclass(frozen=True)
class Criterion:
    metric: str
    op: str
    value: float

    def holds(self, kpi: Kpi) -> bool:
        actual = metric_value(kpi, self.metric)
        return actual is not None and OPERATORS[self.op](actual, self.value)

    def __str__(self) -> str:
        label, _, is_rate, _ = METRICS[self.metric]
        shown = f"{self.value:.0%}" if is_rate else f"{self.value:g}"
        return f"{label} {self.op} {shown}"


@dataclass(frozen=True)
class Thresholds:
    min_received: int = 1
    red: tuple[Criterion, ...] = ()
    black: tuple[Criterion, ...] = ()


def _criterion(raw: Any, where: str) -> Criterion:
    if not isinstance(raw, list | tuple) or len(raw) != 3:
        raise _invalid(where, "条件须为 [指标, 比较符, 数值]", "a criterion is [metric, op, value]")
    metric, op, value = raw
    _check_metric(metric, f"{where}[0]")
    if op not in OPERATORS:
        raise _invalid(
            f"{where}[1]",
            f"比较符须为 {'、'.join(OPERATORS)}",
            f"the operator must be one of {', '.join(OPERATORS)}",
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"{where}[2]", "须为数值", "must be a number")
    if METRICS[metric][2] and not 0 <= value <= 1:
        raise _invalid(
            f"{where}[2]",
            "比率阈值须在0到1之间（如 0.9 表示 90%）",
            "a rate threshold must be between 0 and 1 (0.9 means 90%)",
        )
    if value < 0:
        raise _invalid(
            f"{where}[2]", "数量阈值不能为负数", "a count threshold must not be negative"
        )
    return Criterion(metric, op, float(value))


def thresholds_from_data(data: Mapping[str, Any]) -> Thresholds:
    if not isinstance(data, Mapping):
        raise _invalid("thresholds", "须为对象", "must be an object")
    unknown = sorted(set(data) - {"min_received", "red", "black"})
    if unknown:
        raise _invalid(
            unknown[0],
            "未知字段（可用：min_received、red、black）",
            "unknown field (known: min_received, red, black)",
        )
    minimum = data.get("min_received", 1)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
        raise _invalid("min_received", "须为正整数", "must be a positive integer")
    lists = {}
    for name in ("red", "black"):
        raw = data.get(name, [])
        if not isinstance(raw, list | tuple):
            raise _invalid(name, "须为条件列表", "must be a list of criteria")
        lists[name] = tuple(_criterion(c, f"{name}[{i}]") for i, c in enumerate(raw))
    if not lists["red"] and not lists["black"]:
        raise _invalid(
            "red", "红榜和黑榜至少要设一个条件", "give at least one red or black criterion"
        )
    return Thresholds(minimum, lists["red"], lists["black"])


def thresholds_to_data(t: Thresholds) -> dict[str, Any]:
    """The stored form (what ``thresholds_from_data`` reads back)."""

    def rows(cs: tuple[Criterion, ...]) -> list[list[Any]]:
        return [[c.metric, c.op, c.value] for c in cs]

    return {"min_received": t.min_received, "red": rows(t.red), "black": rows(t.black)}


@dataclass(frozen=True)
class Listed:
    unit: str
    reasons: tuple[str, ...]  # the criteria that held, for a person


@dataclass(frozen=True)
class RedBlackList:
    red: tuple[Listed, ...]
    black: tuple[Listed, ...]


def red_black_list(kpis: Mapping[str, Kpi], thresholds: Thresholds) -> RedBlackList:
    red, black = [], []
    for unit in sorted(kpis):
        kpi = kpis[unit]
        if kpi.received < thresholds.min_received:
            continue
        hits = tuple(str(c) for c in thresholds.black if c.holds(kpi))
        if hits:
            black.append(Listed(unit, hits))
        elif thresholds.red and all(c.holds(kpi) for c in thresholds.red):
            red.append(Listed(unit, tuple(str(c) for c in thresholds.red)))
    return RedBlackList(tuple(red), tuple(black))
