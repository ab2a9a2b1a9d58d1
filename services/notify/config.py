from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator

from shared.settings import BaseServiceSettings

# Only the embedded default and tests may fall back to this well-known key.
DEV_SECRETS_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"whistle-notify-embedded-dev-secrets-never-use-in-production").digest()
).decode()


class Settings(BaseServiceSettings):
    service_name: str = "notify"
    http_port: int = 8104

    # The console's address as its users reach it (e.g. https://whistle.example.gov.cn): every
    # link in a message starts with it, so a link read in a robot's group chat, an email or an
    # SMS opens the console at the assignment or case (deep link). Empty: links are bare paths
    # (/cases/…), which only work inside the console — outside the embedded mode notify warns
    # about it at start (see ``missing_public_base_url``).
    public_base_url: str = ""

    # Names a person reads in a message instead of codes: areas (street › community › grid)
    # from intake's public GET /areas/features, categories from dispatch's public
    # GET /categories. Kept in memory, fetched at start and every reference_refresh_seconds;
    # a failed fetch is retried with capped exponential backoff while the last good copy (or,
    # before the first, the codes) stays in use — messages never wait for intake or dispatch.
    # reference_area_root: the subtree whose names are kept (e.g. YA); empty: every district.
    intake_url: str = "http://localhost:8101"
    dispatch_url: str = "http://localhost:8102"
    reference_area_root: str = Field(
        default="", max_length=300, pattern=r"^([A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*)?$"
    )
    reference_refresh_seconds: float = Field(default=300.0, gt=0)

    # Deliveries on every channel but the inbox: each attempt has its own timeout; a claim
    # tries a few times in line (short, jittered pauses) while the failure looks transient,
    # then the delivery is scheduled again with capped exponential backoff and jitter; after
    # delivery_max_attempts scheduled attempts (at once for a permanent refusal) the channel
    # is given up — the delivery is kept as 'dead', replayable — and the recipient's next
    # channel takes over.
    delivery_timeout_seconds: float = Field(default=5, gt=0)
    delivery_inline_attempts: int = Field(default=3, ge=1, le=10)
    delivery_max_attempts: int = Field(default=6, ge=1)
    delivery_backoff_base_seconds: float = Field(default=30.0, gt=0)
    delivery_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # A claimed delivery is invisible to other replicas for this long (it must outlast the
    # in-line attempts); if the worker's process dies mid-send, another one takes it at once
    # (shared.liveness), if it only hangs, after the lease.
    delivery_lease_seconds: float = Field(default=120.0, gt=0)
    delivery_max_in_flight: int = Field(default=100, ge=1)
    # Group robots (WeCom, DingTalk, Feishu) take about 20 messages a minute; more due than
    # that go as one digest (汇总) instead of being dropped.
    robot_messages_per_minute: int = Field(default=20, ge=1)

    # Webhooks, robots, SMS gateways and SMTP hosts may be loopback, link-local or private
    # addresses only if this is on (channels.targets: refused when set, 422, and at delivery
    # for what the name resolves to). Unset: on in the embedded and test modes (their
    # receivers listen on 127.0.0.1), off in production.
    channel_allow_private_targets: bool | None = None

    delivery_poll_interval_seconds: float = Field(default=1.0, gt=0)
    delivery_batch_size: int = Field(default=50, ge=1)

    # Channel secrets are sealed at rest (Fernet): comma-separated keys, the newest first
    # (it seals; all of them open). Rotate by putting a new key first; once every replica
    # has restarted (each re-seals at start), drop the old one. Make a key with
    # ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.
    # Outside the embedded dev mode it must be set.
    channel_secrets_keys: SecretStr | None = None

    # The live stream (SSE): a heartbeat comment this often keeps proxies from closing an
    # idle stream; a stream looks for new messages at least this often even if the database
    # notification that wakes it was missed.
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    stream_poll_seconds: float = Field(default=5.0, gt=0)
    stream_batch_size: int = Field(default=100, ge=1, le=1000)

    @property
    def allow_private_targets(self) -> bool:
        if self.channel_allow_private_targets is None:
            return self.dev_mode
        return self.channel_allow_private_targets

    def secrets_keys(self) -> list[str]:
        raw = self.channel_secrets_keys.get_secret_value() if self.channel_secrets_keys else ""
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        return keys or [DEV_SECRETS_KEY]

    @model_validator(mode="after")
    def _lease_outlasts_a_claim(self) -> Settings:
        one_claim = self.delivery_inline_attempts * (self.delivery_timeout_seconds + 2)
        if self.delivery_lease_seconds < one_claim:
            raise ValueError(
                f"delivery_lease_seconds ({self.delivery_lease_seconds}) must be at least "
                f"{one_claim}: the in-line attempts of one claim must finish within the lease"
            )
        if self.delivery_backoff_max_seconds < self.delivery_backoff_base_seconds:
            raise ValueError(
                "delivery_backoff_max_seconds must be >= delivery_backoff_base_seconds"
            )
        self._check_secrets_keys()
        return self

    @field_validator("public_base_url")
    @classmethod
    def _console_address(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        if url:
            parts = urlsplit(url)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.query
                or parts.fragment
                or " " in url
            ):
                raise ValueError(
                    f"PUBLIC_BASE_URL '{value}' must be the console's http(s) address, e.g. "
                    "https://whistle.example.gov.cn (links in messages start with it)"
                )
        return url

    @property
    def missing_public_base_url(self) -> bool:
        """Outside the embedded/test mode a message link without the console's address is a
        bare path no robot, mail client or phone can open."""
        return not self.dev_mode and not self.public_base_url

    def _check_secrets_keys(self) -> None:
        keys = self.secrets_keys()
        if not self.dev_mode and (self.channel_secrets_keys is None or DEV_SECRETS_KEY in keys):
            raise ValueError(
                "CHANNEL_SECRETS_KEYS must be set (Fernet keys, the newest first) outside the "
                "embedded dev mode (the development default is refused)"
            )
        for i, key in enumerate(keys):
            try:
                Fernet(key)
            except ValueError:
                raise ValueError(
                    f"CHANNEL_SECRETS_KEYS: key {i + 1} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes)"
                ) from None
