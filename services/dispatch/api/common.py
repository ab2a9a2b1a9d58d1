"""What dispatch's routes share: annotated dependencies, and the refusal's body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from shared.auth import Principal, Role, allow

# The department's own actions; which assignment is its own is checked by the handlers.
AssignedDepartment = Annotated[Principal, Depends(allow(Role.DEPARTMENT))]
# Who reads assignments and requests; the handlers narrow it to the department or the area.
Reader = Annotated[
    Principal,
    Depends(allow(Role.DEPARTMENT, Role.COMMUNITY, Role.STREET, Role.DISTRICT, Role.SUPERVISOR)),
]
# Who decides requests (延期, 挂账/缓办); the handlers check the case lies in the area.
Supervisor = Annotated[Principal, Depends(allow(Role.SUPERVISOR))]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=2_147_483_647)]
AREA_PREFIX = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"


# 驳回: a request (延期, 挂账/缓办) is refused only with a reason.
class RefuseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(min_length=1, max_length=2000, description="驳回理由")
