"""Settings read from environment variables; the same names in the embedded stack,
docker-compose and Kubernetes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BaseServiceSettings(BaseSettings):
    """Fields every service has. A service's ``config.Settings`` adds only its own."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str
    environment: Literal["embedded", "test", "production"] = "production"

    http_host: str = "0.0.0.0"
    http_port: int = 8000

    database_url: SecretStr = Field(description="postgresql://user:password@host:port/db")
    db_pool_min_size: int = Field(default=1, ge=1)
    db_pool_max_size: int = Field(default=10, ge=1)
    db_connect_attempts: int = Field(default=20, ge=1)

    kafka_bootstrap_servers: str = "localhost:9092"
    # Idempotent producer: on for real Kafka; the embedded Tansu broker does not support it.
    kafka_idempotent_producer: bool = True
    kafka_request_timeout_ms: int = Field(default=30_000, ge=1_000)
    kafka_connect_attempts: int = Field(default=20, ge=1)
    # Attempts for a message whose handler fails with a non-infrastructure error before it
    # goes to the dead-letter topic. Infrastructure errors are retried without limit.
    consumer_max_attempts: int = Field(default=5, ge=1)

    outbox_poll_interval_seconds: float = Field(default=2.0, gt=0)
    outbox_batch_size: int = Field(default=100, ge=1)
    # Sent outbox rows are kept this long for inspection, then purged (never unsent ones).
    outbox_retention_hours: float = Field(default=72, gt=0)
    # Handled event ids are remembered this long; keep it above the broker's retention so
    # that any redelivery is still recognised as a duplicate.
    inbox_retention_days: float = Field(default=30, gt=0)

    log_level: str = "INFO"
    log_json: bool = True
