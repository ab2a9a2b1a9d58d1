"""Dispatch's rules: departments, the category catalogue, routing (派单), the assignment's
state machine (报到 → 办结, 退单, 转办), extension requests (延期) and pauses (挂账/缓办).
No I/O, no clock (``now`` is passed in): the standard library, shared's errors and the event
contract's values and area paths only."""

from services.dispatch.domain.assignment import (
    ROLE_ZH,
    STATE_ZH,
    Assignment,
    AssignmentState,
)
from services.dispatch.domain.catalogue import (
    CLASS_ZH,
    Category,
    CategoryClass,
    default_kind,
    lineage,
)
from services.dispatch.domain.departments import (
    KIND_ZH,
    Contact,
    Department,
    DepartmentKind,
    new_department,
)
from services.dispatch.domain.extensions import (
    EXTENSION_STATE_ZH,
    MAX_EXTENSION_DAYS,
    ExtensionRequest,
    ExtensionState,
    request_extension,
)
from services.dispatch.domain.pauses import (
    PAUSE_END_ZH,
    PAUSE_KIND_ZH,
    PAUSE_STATE_ZH,
    PauseEnd,
    PauseRequest,
    PauseState,
    request_pause,
)
from services.dispatch.domain.routing import (
    BASIS_ZH,
    Decision,
    LiaisonUnits,
    Route,
    RoutingRule,
    check_rule,
    most_specific_rule,
    route,
)

__all__ = [
    "BASIS_ZH",
    "CLASS_ZH",
    "EXTENSION_STATE_ZH",
    "KIND_ZH",
    "MAX_EXTENSION_DAYS",
    "PAUSE_END_ZH",
    "PAUSE_KIND_ZH",
    "PAUSE_STATE_ZH",
    "ROLE_ZH",
    "STATE_ZH",
    "Assignment",
    "AssignmentState",
    "Category",
    "CategoryClass",
    "Contact",
    "Decision",
    "Department",
    "DepartmentKind",
    "ExtensionRequest",
    "ExtensionState",
    "LiaisonUnits",
    "PauseEnd",
    "PauseRequest",
    "PauseState",
    "Route",
    "RoutingRule",
    "check_rule",
    "default_kind",
    "lineage",
    "most_specific_rule",
    "new_department",
    "request_extension",
    "request_pause",
    "route",
]
