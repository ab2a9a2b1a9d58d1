"""What every notify route shares: the database pool and the one rule each route states."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from services.notify.sealing import SecretBox
from shared.auth import AREA_ROLES, Principal, Role, allow


async def secret_box(request: Request) -> SecretBox:
    """What seals and opens channel secrets (keys from the settings)."""
    return request.app.state.secret_box


async def private_targets(request: Request) -> bool:
    """Whether channels may point at loopback, link-local or private addresses."""
    return request.app.state.runtime.settings.allow_private_targets


AllowPrivate = Annotated[bool, Depends(private_targets)]
Box = Annotated[SecretBox, Depends(secret_box)]

# The rules (one per route). Recipients are reference data and the delivery log is
# operations: admin. An inbox is read by department staff or by those overseeing an area;
# which inbox is theirs is checked against the recipient in the handler.
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
InboxReader = Annotated[Principal, Depends(allow(Role.DEPARTMENT, Role.SUPERVISOR, *AREA_ROLES))]
RECIPIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
RecipientId = Annotated[
    str, Path(pattern=RECIPIENT_ID_PATTERN, description="接收方编号 recipient id")
]
