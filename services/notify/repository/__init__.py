"""Notify's SQL: one function per query, in one module per table group."""

from services.notify.repository.deliveries import *  # noqa: F403
from services.notify.repository.deliveries import Claim, Delivery
from services.notify.repository.recipients import *  # noqa: F403
from services.notify.repository.recipients import InboxMessage
from services.notify.repository.subscriptions import *  # noqa: F403
from services.notify.repository.templates import *  # noqa: F403
from services.notify.repository.templates import StoredTemplate

__all__ = ["Claim", "Delivery", "InboxMessage", "StoredTemplate"]
