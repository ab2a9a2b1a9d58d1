from __future__ import annotations

from shared.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "dispatch"
    http_port: int = 8102
