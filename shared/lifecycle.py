"""The case's lifecycle as every service shows it: one status vocabulary, its Chinese labels,
and how a late event is told apart from a new one.

A case can loop (rework 返工 sends it back to the department, a closed case can be reopened),
so "the most advanced status" is not enough: the status set by the event that happened last
wins. Events from one producer arrive in order; an event caused by another service's event
always happened after it. Standard library only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class CaseStatus(StrEnum):
    # 待核实: a resident's own report waiting for the grid worker's on-site check. Intake's
    # alone: no event says it, the loop (and every other service) starts at verification.
    TO_VERIFY = "to_verify"
    REPORTED = "reported"  # 已上报
    WHISTLED = "whistled"  # 已吹哨
    UNROUTABLE = "unroutable"  # 待人工派单
    DISPATCHED = "dispatched"  # 已派单
    SIGNED_FOR = "signed_for"  # 部门已报到
    RESOLVED = "resolved"  # 已办结待核查
    REWORK = "rework"  # 返工
    CLOSED = "closed"  # 已结案
    REOPENED = "reopened"  # 已重新打开


STATUS_ZH = {
    CaseStatus.TO_VERIFY: "待核实",
    CaseStatus.REPORTED: "已上报",
    CaseStatus.WHISTLED: "已吹哨",
    CaseStatus.UNROUTABLE: "待人工派单",
    CaseStatus.DISPATCHED: "已派单",
    CaseStatus.SIGNED_FOR: "部门已报到",
    CaseStatus.RESOLVED: "已办结待核查",
    CaseStatus.REWORK: "核查未通过，返工中",
    CaseStatus.CLOSED: "已结案",
    CaseStatus.REOPENED: "已重新打开",
}

# Within one moment, the order of the loop (only a tie-breaker).
_RANK = {
    CaseStatus.TO_VERIFY: -1,
    CaseStatus.REPORTED: 0,
    CaseStatus.REOPENED: 0,
    CaseStatus.WHISTLED: 1,
    CaseStatus.UNROUTABLE: 2,
    CaseStatus.REWORK: 2,
    CaseStatus.DISPATCHED: 3,
    CaseStatus.SIGNED_FOR: 4,
    CaseStatus.RESOLVED: 5,
    CaseStatus.CLOSED: 6,
}


def advance(
    current: CaseStatus, current_at: datetime, incoming: CaseStatus, incoming_at: datetime
) -> CaseStatus:
    """The status after an event that says ``incoming`` at ``incoming_at``: a late event
    (one that happened before the current status was set) never rewinds it."""
    if incoming_at > current_at:
        return incoming
    if incoming_at == current_at and _RANK[incoming] > _RANK[current]:
        return incoming
    return current
