"""Intake's rules: the case as the reporter sees it. Standard library only; no I/O, no clock."""

from __future__ import annotations

from enum import StrEnum

from shared.errors import Conflict


class CaseStatus(StrEnum):
    REPORTED = "reported"      # 已上报
    WHISTLED = "whistled"      # 已吹哨
    UNROUTABLE = "unroutable"  # 待人工派单
    DISPATCHED = "dispatched"  # 已派单
    SIGNED_FOR = "signed_for"  # 已报到
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

# Progress only moves forward: an event that arrives late never rewinds the status.
_RANK = {
    CaseStatus.REPORTED: 0,
    CaseStatus.WHISTLED: 1,
    CaseStatus.UNROUTABLE: 2,
    CaseStatus.DISPATCHED: 3,
    CaseStatus.SIGNED_FOR: 4,
    CaseStatus.RESOLVED: 5,
    CaseStatus.CLOSED: 6,
}


def check_whistle(status: CaseStatus) -> None:
    """社区吹哨 is allowed while the case is still with the community."""
    if status not in (CaseStatus.REPORTED, CaseStatus.UNROUTABLE):
        raise Conflict(
            f"案件当前状态为“{STATUS_ZH[status]}”，不能吹哨",
            f"a case in state '{status}' cannot be whistled",
            code="invalid_state",
        )


def check_close(status: CaseStatus) -> None:
    """结案 after the department resolved it and the community verified it on site."""
    if status is not CaseStatus.RESOLVED:
        raise Conflict(
            f"案件当前状态为“{STATUS_ZH[status]}”，部门办结后才能核查结案",
            f"a case in state '{status}' cannot be closed; it must be resolved first",
            code="invalid_state",
        )


def advance(current: CaseStatus, reported: CaseStatus) -> CaseStatus:
    """The status after a lifecycle event from another service says ``reported``."""
    return reported if _RANK[reported] > _RANK[current] else current


def format_case_no(day: str, seq: int) -> str:
    """A case number a person can read aloud on the phone: ``YA20261122-0042``."""
    return f"YA{day}-{seq:04d}"
