"""Dispatch's HTTP routes: the catalogue and departments, routing rules and liaison units,
the departments' inboxes and their actions, manual dispatch, extension requests, pauses (挂账/缓办).

Every route states its authorisation rule in one line (``allow(...)`` or ``PUBLIC``); scope
(the holder's area subtree, or the department of the token) is checked in the handlers,
before anything is written."""

from services.dispatch.api import assignments, catalogue, extensions, pauses, rules

ROUTERS = [catalogue.router, rules.router, assignments.router, extensions.router, pauses.router]

__all__ = ["ROUTERS"]
