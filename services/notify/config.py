from __future__ import annotations

from pydantic import Field, model_validator

from shared.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "notify"
    http_port: int = 8104

    # Prefix for the case link in messages (e.g. https://whistle.example.gov.cn); empty = a path.
    case_link_base: str = ""

    # Webhooks: each request has its own timeout; a claim tries a few times in line
    # (short, jittered pauses), then the delivery is scheduled again with capped exponential
    # backoff; after webhook_max_attempts scheduled attempts it is parked as 'dead'.
    webhook_timeout_seconds: float = Field(default=5, gt=0)
    webhook_inline_attempts: int = Field(default=3, ge=1, le=10)
    webhook_max_attempts: int = Field(default=6, ge=1)
    webhook_backoff_base_seconds: float = Field(default=30.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # A claimed delivery is invisible to other replicas for this long (it must outlast the
    # in-line attempts); if the worker dies mid-send, another one takes it after the lease.
    webhook_lease_seconds: float = Field(default=120.0, gt=0)
    webhook_max_in_flight: int = Field(default=100, ge=1)

    delivery_poll_interval_seconds: float = Field(default=1.0, gt=0)
    delivery_batch_size: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _lease_outlasts_a_claim(self) -> Settings:
        one_claim = self.webhook_inline_attempts * (self.webhook_timeout_seconds + 2)
        if self.webhook_lease_seconds < one_claim:
            raise ValueError(
                f"webhook_lease_seconds ({self.webhook_lease_seconds}) must be at least "
                f"{one_claim}: the in-line attempts of one claim must finish within the lease"
            )
        if self.webhook_backoff_max_seconds < self.webhook_backoff_base_seconds:
            raise ValueError("webhook_backoff_max_seconds must be >= webhook_backoff_base_seconds")
        return self
