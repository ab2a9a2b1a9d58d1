from __future__ import annotations

from pydantic import Field

from shared.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "tracking"
    http_port: int = 8103
    # The sign-for clock (签收/报到): how long a department has to sign for a dispatch.
    # One value for now; per category × priority SLA policies come later.
    sign_for_deadline_seconds: float = Field(default=1800, gt=0)
    timer_poll_interval_seconds: float = Field(default=1.0, gt=0)
    timer_batch_size: int = Field(default=100, ge=1)
