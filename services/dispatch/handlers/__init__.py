"""Dispatch's use cases: each one transaction — read, let the domain decide, write, outbox."""

from services.dispatch.handlers import deadlines, extensions, pauses
from services.dispatch.handlers.common import departments_by_id
from services.dispatch.handlers.inbox import (
    department_assignments,
    get_assignment,
    progress,
    require_reader,
    resolve,
    sign_for,
    transfer,
)
from services.dispatch.handlers.reference import (
    AddRule,
    add_rule,
    delete_rule,
    get_department,
    put_department,
    put_liaison,
)
from services.dispatch.handlers.routing import (
    dispatch_by_hand,
    record_photo,
    reject,
    route_whistle,
    send_back_for_rework,
)

__all__ = [
    "AddRule",
    "add_rule",
    "deadlines",
    "delete_rule",
    "department_assignments",
    "departments_by_id",
    "dispatch_by_hand",
    "extensions",
    "get_assignment",
    "get_department",
    "pauses",
    "progress",
    "put_department",
    "put_liaison",
    "record_photo",
    "reject",
    "require_reader",
    "resolve",
    "route_whistle",
    "send_back_for_rework",
    "sign_for",
    "transfer",
]
