"""Settings read from environment variables; the same names in the embedded stack,
docker-compose and Kubernetes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.auth import TokenKeys
from shared.kafka_security import KafkaSecurity
from shared.oidc import OidcSettings

# Only the embedded default and tests may fall back to this well-known key.
DEV_AUTH_SECRET = "whistle-embedded-dev-secret-never-use-in-production"

# Words that mark a value as an example to be replaced (deploy manifests, docs, tutorials).
_PLACEHOLDER_MARKS = (
    "replace-me",
    "replace_me",
    "replaceme",
    "change-me",
    "change_me",
    "changeme",
    "changeit",
    "placeholder",
    "your-secret",
    "example",
)
# A random key of 32+ characters has far more distinct characters than this.
_MIN_DISTINCT_CHARACTERS = 10


def weak_secret(secret: str) -> str | None:
    """Why ``secret`` must not sign tokens in production, or None if it may."""
    if not secret:
        return "it is not set"
    if secret == DEV_AUTH_SECRET:
        return "it is the development default"
    lowered = secret.lower()
    if any(mark in lowered for mark in _PLACEHOLDER_MARKS):
        return "it is a placeholder (an example value to replace)"
    if len(secret) < 32:
        return "it is shorter than 32 characters"
    if len(set(secret)) < _MIN_DISTINCT_CHARACTERS:
        return "it has too few distinct characters to be random"
    return None


class BaseServiceSettings(KafkaSecurity, OidcSettings):
    """Fields every service has. A service's ``config.Settings`` adds only its own. The
    Kafka connection's TLS/SASL fields (``KAFKA_SECURITY_PROTOCOL``…) come from
    ``KafkaSecurity``, the external identity provider's (``OIDC_ISSUER``…) from
    ``OidcSettings``."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str
    environment: Literal["embedded", "test", "production"] = "production"

    http_host: str = "0.0.0.0"
    http_port: int = 8000
    # Prometheus metrics on a port of their own (Kubernetes: 9464), so that what routes to
    # the HTTP port (the console's Ingress) never exposes them; unset, ``GET /metrics`` is
    # served on the HTTP port (the embedded default, compose).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The proxies whose X-Forwarded-For / -Proto are believed (uvicorn's proxy headers):
    # addresses or networks, comma-separated ("*": any). A request's client address (the
    # residents' rate limit counts by it) is then the one the proxy saw. Behind the gateway
    # or an ingress controller that is not on the same host (Kubernetes, compose), set the
    # pod or container network, or every resident counts as the gateway.
    forwarded_allow_ips: str = "127.0.0.1,::1"

    database_url: SecretStr = Field(description="postgresql://user:password@host:port/db")
    db_pool_min_size: int = Field(default=1, ge=1)
    db_pool_max_size: int = Field(default=10, ge=1)
    db_connect_attempts: int = Field(default=20, ge=1)

    kafka_bootstrap_servers: str = "localhost:9092"
    # Idempotent producer: on for real Kafka; the embedded Tansu broker does not support it.
    kafka_idempotent_producer: bool = True
    kafka_request_timeout_ms: int = Field(default=30_000, ge=1_000)
    # How long a consumer's fetch may wait at the broker for new messages. The broker
    # (Tansu, measured by bench-e2e) does not answer a waiting fetch early, so aiokafka's
    # default 500 ms cost ~117 ms per hop at p50; 25 ms costs a few % of a core when idle.
    kafka_fetch_max_wait_ms: int = Field(default=25, ge=1, le=10_000)
    kafka_connect_attempts: int = Field(default=20, ge=1)
    # A consumer handles up to consumer_batch_size messages it received together in one
    # database transaction and one offset commit (1: one by one); a message that fails goes
    # the one-by-one way. An idle consumer looks for new messages every
    # consumer_batch_wait_ms (each look is also bounded by kafka_fetch_max_wait_ms).
    consumer_batch_size: int = Field(default=100, ge=1, le=10_000)
    consumer_batch_wait_ms: int = Field(default=5, ge=1, le=10_000)
    # Attempts for a message whose handler fails deterministically before it goes to the
    # dead-letter topic. Transient faults (database restarting, broker away; see
    # shared/faults.py) are waited out for up to consumer_transient_retry_seconds first;
    # every retry backs off exponentially, never longer than consumer_max_backoff_seconds.
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_transient_retry_seconds: float = Field(default=600.0, gt=0)
    consumer_max_backoff_seconds: float = Field(default=10.0, gt=0)
    # A dead-letter publish is tried this many times, then the message is parked in the
    # consumer's database (parked_events). A copy above dead_letter_max_bytes is truncated
    # in the topic and parked whole.
    dead_letter_publish_attempts: int = Field(default=5, ge=1)
    dead_letter_max_bytes: int = Field(default=1_000_000, ge=10_000)

    outbox_poll_interval_seconds: float = Field(default=2.0, gt=0)
    outbox_batch_size: int = Field(default=100, ge=1)
    # The relay claims rows for outbox_lease_seconds (another replica takes them over once it
    # has passed) and gives each publish outbox_publish_timeout_seconds; the lease must cover
    # at least two publish timeouts. A row failing with a non-transient error (too large,
    # cannot be encoded) is parked after outbox_max_attempts; timeouts and a broker away back
    # off but never park. Each failure backs off from outbox_retry_base_seconds, doubling,
    # at most outbox_retry_cap_seconds.
    outbox_lease_seconds: float = Field(default=120.0, gt=0, le=86_400)
    outbox_publish_timeout_seconds: float = Field(default=30.0, gt=0, le=3_600)
    outbox_max_attempts: int = Field(default=5, ge=1, le=1_000)
    outbox_retry_base_seconds: float = Field(default=1.0, gt=0, le=3_600)
    outbox_retry_cap_seconds: float = Field(default=60.0, gt=0, le=86_400)
    # Sent outbox rows are kept this long for inspection, then purged (never unsent ones).
    outbox_retention_hours: float = Field(default=72, gt=0)
    # Handled event ids are remembered this long; keep it above the broker's retention so
    # that any redelivery is still recognised as a duplicate.
    inbox_retention_days: float = Field(default=30, gt=0)

    log_level: str = "INFO"
    log_json: bool = True
    # One ``http_request`` line per request (shared/access_log.py); false turns it off.
    access_log: bool = True

    # Bearer tokens: HS256 with a shared secret, or RS256 (services verify with the public
    # key; only the token issuer holds the private key).
    auth_algorithm: Literal["HS256", "RS256"] = "HS256"
    auth_secret: SecretStr | None = None
    auth_public_key: str | None = None
    auth_private_key: SecretStr | None = None
    auth_issuer: str = "whistle"
    auth_audience: str = "whistle"
    # OpenAPI/AsyncAPI pages: open by default in the embedded and test modes only.
    docs_open: bool | None = None
    # Largest request body accepted (413 beyond it).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    @property
    def dev_mode(self) -> bool:
        return self.environment in ("embedded", "test")

    @property
    def docs_enabled(self) -> bool:
        return self.dev_mode if self.docs_open is None else self.docs_open

    @model_validator(mode="after")
    def _metrics_port_is_its_own(self) -> BaseServiceSettings:
        if self.metrics_port is not None and self.metrics_port == self.http_port:
            raise ValueError(
                f"METRICS_PORT must differ from HTTP_PORT ({self.http_port}): metrics are "
                "served on a port of their own, or unset METRICS_PORT to serve them on "
                "the HTTP port"
            )
        return self

    @model_validator(mode="after")
    def _refuse_weak_keys(self) -> BaseServiceSettings:
        if self.dev_mode:
            return self
        if self.auth_algorithm == "HS256":
            secret = self.auth_secret.get_secret_value() if self.auth_secret else ""
            if reason := weak_secret(secret):
                raise ValueError(
                    f"AUTH_SECRET is refused: {reason}. Outside the embedded dev mode it must "
                    "be a random secret of at least 32 characters, e.g. "
                    "`openssl rand -base64 48` (the development default and placeholders "
                    "are refused)"
                )
        elif not self.auth_public_key:
            raise ValueError("AUTH_PUBLIC_KEY (PEM) must be set for RS256")
        return self

    @model_validator(mode="after")
    def _issuers_differ(self) -> BaseServiceSettings:
        if self.oidc_issuer and self.oidc_issuer == self.auth_issuer:
            raise ValueError(
                f"OIDC_ISSUER and AUTH_ISSUER are both {self.auth_issuer!r}: a token's issuer "
                "says which keys verify it, so the external provider needs its own"
            )
        return self

    @model_validator(mode="after")
    def _outbox_lease_covers_publishes(self) -> BaseServiceSettings:
        if self.outbox_lease_seconds < 2 * self.outbox_publish_timeout_seconds:
            raise ValueError(
                f"OUTBOX_LEASE_SECONDS ({self.outbox_lease_seconds:g}) must be at least twice "
                f"OUTBOX_PUBLISH_TIMEOUT_SECONDS ({self.outbox_publish_timeout_seconds:g}), "
                f"i.e. >= {2 * self.outbox_publish_timeout_seconds:g}: a relay starts no "
                "publish that could outlast its claim, and a shorter lease lets another "
                "replica take rows over while they are still being published"
            )
        if self.outbox_retry_cap_seconds < self.outbox_retry_base_seconds:
            raise ValueError(
                f"OUTBOX_RETRY_CAP_SECONDS ({self.outbox_retry_cap_seconds:g}) must be >= "
                f"OUTBOX_RETRY_BASE_SECONDS ({self.outbox_retry_base_seconds:g})"
            )
        return self

    def token_keys(self) -> TokenKeys:
        if self.auth_algorithm == "RS256":
            private = self.auth_private_key.get_secret_value() if self.auth_private_key else None
            return TokenKeys(
                "RS256", self.auth_public_key, private, self.auth_issuer, self.auth_audience
            )
        secret = self.auth_secret.get_secret_value() if self.auth_secret else DEV_AUTH_SECRET
        return TokenKeys("HS256", secret, secret, self.auth_issuer, self.auth_audience)
