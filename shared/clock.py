"""The time the district lives in. Standard library only.

Instants are stored and carried as aware UTC datetimes; what a person reads (a case
number's date, a message's time, a KPI day) is in Beijing time (北京时间, Asia/Shanghai)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def local_day(at: datetime) -> str:
    """``at``'s date in Beijing time as ``YYYYMMDD`` (a UTC evening is the next day here)."""
    return at.astimezone(BEIJING).strftime("%Y%m%d")
