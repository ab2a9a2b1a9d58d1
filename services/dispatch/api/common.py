"""What dispatch's routes share: annotated dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from shared.auth import Principal, Role, allow

# The department's own actions; which assignment is its own is checked by the handlers.
AssignedDepartment = Annotated[Principal, Depends(allow(Role.DEPARTMENT))]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=2_147_483_647)]
AREA_PREFIX = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"
