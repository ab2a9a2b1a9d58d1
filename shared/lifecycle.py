"""The case's lifecycle as every service shows it: one status vocabulary, its Chinese labels,
which event moves a case to which status, and the rule that progress only moves forward
(events from different producers may arrive late). Standard library only."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    REPORTED = "reported"      # 已上报
    WHISTLED = "whistled"      # 已吹哨
    UNROUTABLE = "unroutable"  # 待人工派单
    DISPATCHED = "dispatched"  # 已派单
    SIGNED_FOR = "signed_for"  # 部门已报到
    RESOLVED = "resolved"      # 已办结待核查
    CLOSED = "closed"          # 已结案


STATUS_ZH = {
    CaseStatus.REPORTED: "已上报",
    CaseStatus.WHISTLED: "已吹哨",
    CaseStatus.UNROUTABLE: "待人工派单",
    CaseStatus.DISPATCHED: "已派单",
    CaseStatus.SIGNED_FOR: "部门已报到",
    CaseStatus.RESOLVED: "已办结待核查",
    CaseStatus.CLOSED: "已结案",
}

# The status a case reaches when an event of this type happens (keys are event TYPEs).
STATUS_OF_EVENT = {
    "case.reported": CaseStatus.REPORTED,
    "case.whistled": CaseStatus.WHISTLED,
    "case.unroutable": CaseStatus.UNROUTABLE,
    "case.dispatched": CaseStatus.DISPATCHED,
    "case.signed_for": CaseStatus.SIGNED_FOR,
    "case.resolved": CaseStatus.RESOLVED,
    "case.closed": CaseStatus.CLOSED,
}

_RANK = {status: rank for rank, status in enumerate(CaseStatus)}


def advance(current: CaseStatus, incoming: CaseStatus) -> CaseStatus:
    """Progress only moves forward: an event that arrives late never rewinds the status."""
    return incoming if _RANK[incoming] > _RANK[current] else current
