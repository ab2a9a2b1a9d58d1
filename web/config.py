from __future__ import annotations

from pydantic import Field

from shared.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "web"
    http_port: int = 8100
    # Where the gateway finds the four services (internal addresses).
    intake_url: str = "http://localhost:8101"
    dispatch_url: str = "http://localhost:8102"
    tracking_url: str = "http://localhost:8103"
    notify_url: str = "http://localhost:8104"
    upstream_timeout_seconds: float = Field(default=30.0, gt=0)
    # The console's address as users reach it (links in messages, rating links, cookies).
    public_base_url: str = "http://127.0.0.1:8100"
    # Sign-in: short-lived access tokens, refresh tokens rotated on every use.
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=24 * 3600)
    refresh_token_ttl_hours: float = Field(default=12, gt=0, le=24 * 30)
    # After this many wrong passwords in a row a user waits login_lock_minutes.
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_minutes: float = Field(default=15, gt=0)
    # The demo users' password (seed-demo only; never used outside the embedded mode).
    demo_password: str = "whistle-demo"
    # Photos (≤ 5 MiB) and their multipart envelope pass through to intake.
    max_body_bytes: int = Field(default=6 * 1024 * 1024, ge=1024)

    def upstreams(self) -> dict[str, str]:
        return {
            "intake": self.intake_url,
            "dispatch": self.dispatch_url,
            "tracking": self.tracking_url,
            "notify": self.notify_url,
        }

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")
