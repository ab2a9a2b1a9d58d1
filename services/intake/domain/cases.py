"""Intake's rules: the case as the reporter sees it. No I/O, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.clock import local_day
from shared.contract import Level
from shared.errors import Conflict, Forbidden, Invalid
from services.intake.domain.sources import DISMISSED

# The status vocabulary is shared with tracking (re-exported for this service's modules).
from shared.lifecycle import STATUS_ZH as STATUS_ZH
from shared.lifecycle import CaseStatus as CaseStatus
from shared.lifecycle import advance as advance


# The resolution of a duplicate merged into another case (合并): closed, rated and reopened
# through its primary. Intake's own value beside the contract's Resolution.
MERGED = "merged"

# Closed without the loop: merged into another case, or a resident's report not taken on
# (不予受理) — neither is rated nor reopened.
NOT_HANDLED = (MERGED, DISMISSED)

# Where the case is with the community (not yet with, or back from, the departments).
WITH_COMMUNITY = (CaseStatus.REPORTED, CaseStatus.UNROUTABLE, CaseStatus.REOPENED)


# Who blows the whistle (吹哨): the community (社区吹哨), the street when the community cannot
# settle it (街道吹哨), or the district (区级吹哨).
LEVEL_ZH = {
    Level.COMMUNITY: "社区",
    Level.STREET: "街道",
    Level.DISTRICT: "区级",
}

# Who may blow a whistle at each level (role values; the grid worker only where allowed).
_WHISTLERS = {
    Level.COMMUNITY: {"community", "street", "district"},
    Level.STREET: {"community", "street", "district"},
    Level.DISTRICT: {"street", "district"},
}


def _state_conflict(status: CaseStatus, zh_action: str, en_action: str) -> Conflict:
    return Conflict(
        f"案件当前状态为“{STATUS_ZH[status]}”，不能{zh_action}",
        f"a case in state '{status}' cannot be {en_action}",
        code="invalid_state",
    )


def check_whistle_level(role: str, level: Level, grid_workers_may_whistle: bool) -> None:
    allowed = set(_WHISTLERS[level])
    if grid_workers_may_whistle and level is Level.COMMUNITY:
        allowed.add("grid_worker")
    if role not in allowed:
        raise Forbidden(
            f"当前角色不能发起{LEVEL_ZH[level]}吹哨",
            f"role '{role}' may not whistle at {level} level",
            code="whistle_not_allowed",
        )


def check_whistle(status: CaseStatus) -> None:
    """社区吹哨 is allowed while the case is still with the community."""
    if status not in WITH_COMMUNITY:
        raise _state_conflict(status, "吹哨", "whistled")


def check_close(status: CaseStatus) -> None:
    """结案 after the department resolved it and the community verified it on site."""
    if status is not CaseStatus.RESOLVED:
        raise Conflict(
            f"案件当前状态为“{STATUS_ZH[status]}”，部门办结后才能核查结案",
            f"a case in state '{status}' cannot be closed; it must be resolved first",
            code="invalid_state",
        )


def format_case_no(area_path: str, at: datetime, seq: int) -> str:
    """A case number a person can read aloud on the phone: the district's own code (the
    root of the case's area path), the day in Beijing time, a sequence —
    ``YA20261122-0042`` for a case of district ``YA`` reported on 22 November."""
    return f"{area_path.split('/', 1)[0]}{local_day(at)}-{seq:04d}"


def check_fix_on_spot(status: CaseStatus) -> None:
    """随手做: the grid worker solved it himself before anyone was convened."""
    if status not in (CaseStatus.REPORTED, CaseStatus.REOPENED):
        raise _state_conflict(
            status,
            "随手做结案（已吹哨的案件须等部门办结后核查）",
            "fixed on the spot once whistled",
        )


def check_rework(status: CaseStatus) -> None:
    """返工: only a result the department reported can fail the on-site check."""
    if status is not CaseStatus.RESOLVED:
        raise _state_conflict(status, "返工（部门办结后才能核查）", "sent back for rework")


def check_rate(status: CaseStatus, resolution: str | None, already_rated: bool) -> None:
    """群众评单 once the case is closed (a merged duplicate is rated on its primary)."""
    if status is not CaseStatus.CLOSED or resolution in NOT_HANDLED:
        raise _state_conflict(status, "评价（结案后才能评价）", "rated before it is closed")
    if already_rated:
        raise Conflict(
            "该案件已评价，不能重复评价", "this case has already been rated", code="already_rated"
        )


def check_reopen(
    status: CaseStatus,
    resolution: str | None,
    closed_at: datetime | None,
    now: datetime,
    window_days: float,
) -> None:
    if status is not CaseStatus.CLOSED or resolution in NOT_HANDLED or closed_at is None:
        raise _state_conflict(status, "重新打开", "reopened")
    if now - closed_at > timedelta(days=window_days):
        raise Conflict(
            f"结案已超过 {window_days:g} 天，不能重新打开，请作为新案件上报",
            f"closed more than {window_days:g} days ago; report it as a new case",
            code="reopen_window_passed",
        )


def check_merge(
    duplicate_id: object, duplicate: CaseStatus, primary_id: object, primary: CaseStatus
) -> None:
    if duplicate_id == primary_id:
        raise Invalid(
            "不能把案件合并到它自己",
            "a case cannot be merged into itself",
            code="merge_into_itself",
        )
    if duplicate not in WITH_COMMUNITY:
        raise _state_conflict(
            duplicate,
            "作为重复案件合并（已交部门办理）",
            "merged as a duplicate once with the departments",
        )
    if primary is CaseStatus.TO_VERIFY:
        raise _state_conflict(
            primary,
            "作为主案件接收合并（群众上报尚未核实）",
            "a merge target before it is verified",
        )
    if primary is CaseStatus.CLOSED:
        raise _state_conflict(primary, "作为主案件接收合并（已结案）", "a merge target once closed")
