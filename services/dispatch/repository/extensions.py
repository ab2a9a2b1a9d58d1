"""Extension requests (延期申请) and the supervisors' decisions on them."""

from __future__ import annotations

import asyncpg

from services.dispatch.domain import ExtensionRequest, ExtensionState
from services.dispatch.repository.approvals import Requests


def _request(row: asyncpg.Record) -> ExtensionRequest:
    return ExtensionRequest(**{**dict(row), "state": ExtensionState(row["state"])})


REQUESTS = Requests("extension_requests", ("days",), ("granted_days",), _request)
