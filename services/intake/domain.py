"""Intake's rules: the case as the reporter sees it. Standard library only; no I/O, no clock."""

from __future__ import annotations

from shared.errors import Conflict
# The status vocabulary is shared with tracking (re-exported for this service's modules).
from shared.lifecycle import STATUS_ZH as STATUS_ZH
from shared.lifecycle import CaseStatus as CaseStatus
from shared.lifecycle import advance as advance


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


def format_case_no(day: str, seq: int) -> str:
    """A case number a person can read aloud on the phone: ``YA20261122-0042``."""
    return f"YA{day}-{seq:04d}"
