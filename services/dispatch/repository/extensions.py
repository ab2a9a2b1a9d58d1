"""Extension requests (延期申请) and the supervisors' decisions on them."""

from __future__ import annotations

import asyncpg

from services.dispatch.domain import ExtensionRequest, ExtensionState
from services.dispatch.repository.approvals import Requests
from shared.dto import from_row


def _request(row: asyncpg.Record) -> ExtensionRequest:
    return from_row(ExtensionRequest, row, state=ExtensionState)


REQUESTS = Requests("extension_requests", ("days",), ("granted_days",), _request)
