"""What intake's routes share."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from services.intake.config import Settings
from shared.service import runtime


def settings(request: Request) -> Settings:
    """The running intake's settings (its app is built from intake's own Settings)."""
    return cast(Settings, runtime(request).settings)
