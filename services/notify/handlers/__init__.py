"""Notify's use cases: each one transaction — read, let the domain decide, write.

- ``recipients``: recipients, their preferences, their in-app inbox;
- ``subscriptions``: who asked to hear what;
- ``notices``: what each consumed event tells (one reader per event class);
- ``events``: a notice → the inbox and the deliveries it causes;
- ``deliveries``: the delivery log, replays and what the delivery worker records;
- ``templates``: the message templates operators replace and reset, and those in force.
"""

from services.notify.handlers import notices
from services.notify.handlers.deliveries import *  # noqa: F403
from services.notify.handlers.events import Notify
from services.notify.handlers.recipients import *  # noqa: F403
from services.notify.handlers.subscriptions import *  # noqa: F403
from services.notify.handlers.templates import (
    TemplatesInForce,
    TemplateView,
    list_templates,
    replace_template,
    reset_template,
)

__all__ = [
    "Notify",
    "TemplateView",
    "TemplatesInForce",
    "list_templates",
    "notices",
    "replace_template",
    "reset_template",
]
