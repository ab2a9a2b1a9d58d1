"""What every notify route shares: the database pool and the one rule each route states."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Path

from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.service import pool

Pool = Annotated[asyncpg.Pool, Depends(pool)]

# The rules (one per route). Recipients are reference data and the delivery log is
# operations: admin. An inbox is read by department staff or by those overseeing an area;
# which inbox is theirs is checked against the recipient in the handler.
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
InboxReader = Annotated[Principal, Depends(allow(Role.DEPARTMENT, Role.SUPERVISOR, *AREA_ROLES))]
RECIPIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
RecipientId = Annotated[str, Path(pattern=RECIPIENT_ID_PATTERN,
                                  description="接收方编号 recipient id")]

