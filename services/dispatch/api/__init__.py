"""Dispatch's HTTP routes: the catalogue and departments, routing rules and liaison units,
the departments' inboxes and their actions, manual dispatch, extension requests.

Every route states its authorisation rule in one line (``allow(...)`` or ``PUBLIC``); scope
(the holder's area subtree, or the department of the token) is checked in the handlers,
before anything is written."""

from services.dispatch.api import assignments, catalogue, extensions, rules

ROUTERS = [catalogue.router, rules.router, assignments.router, extensions.router]

__all__ = ["ROUTERS"]
