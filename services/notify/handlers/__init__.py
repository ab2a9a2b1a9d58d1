"""Notify's use cases: each one transaction — read, let the domain decide, write.

- ``recipients``: recipients, their preferences, their in-app inbox;
- ``subscriptions``: who asked to hear what;
- ``events``: a consumed event → the inbox and the deliveries it causes;
- ``deliveries``: the delivery log, replays and what the delivery worker records.
"""

from services.notify.handlers.deliveries import *  # noqa: F403
from services.notify.handlers.events import make_notify, notice_of
from services.notify.handlers.recipients import *  # noqa: F403
from services.notify.handlers.subscriptions import *  # noqa: F403

__all__ = ["make_notify", "notice_of"]
