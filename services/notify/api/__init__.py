"""Notify's HTTP routes: recipients, their preferences and inbox; subscriptions; the
delivery log and replays.

Who may do what (each route states its rule in its ``who`` parameter, see ``common``):

- recipients (reference data) with their preferences, subscriptions, the message templates,
  and the delivery log with its replays (operations): admin;
- an inbox, its live stream (SSE) and marking its messages read: a department desk's inbox
  by that department's staff; a supervisor's, community's or grid worker's desk by supervisor, community, street or district users whose
  subtree covers the desk's area (the scope is checked in the handler, before any write).
"""

from services.notify.api.deliveries import router as deliveries_router
from services.notify.api.recipients import router as recipients_router
from services.notify.api.subscriptions import router as subscriptions_router
from services.notify.api.templates import router as templates_router

__all__ = ["deliveries_router", "recipients_router", "subscriptions_router", "templates_router"]
