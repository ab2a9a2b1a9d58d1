from __future__ import annotations

from pydantic import Field

from shared.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "tracking"
    http_port: int = 8103
    # Every clock comes from the SLA policy pinned at dispatch (category × priority). This
    # overrides the sign-for limit (签收/报到时限) with calendar time — short clocks for demos
    # and tests — and is the sign-for limit when no policy version is in force (30 minutes
    # when unset).
    sign_for_deadline_seconds: float | None = Field(default=None, gt=0)
    # The timer scheduler sleeps until the next timer is due, at most this long; a timer armed
    # due sooner than that wakes it at once (NOTIFY within repository.timers.WAKE_HORIZON, so
    # no longer than that).
    timer_poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    timer_batch_size: int = Field(default=100, ge=1)
    # A backlog of due timers (a burst due at once) is fired this many batches at a time, each
    # in its own transaction on its own connection of the pool.
    timer_parallel_batches: int = Field(default=2, ge=1)
    # The boards' live stream (GET /boards/stream): how often a replica looks for new changes
    # (one query for all its open streams; a stream reads only when there is something new),
    # and how often a stream sends a heartbeat comment while nothing changes.
    board_stream_poll_seconds: float = Field(default=1.0, gt=0)
    board_stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # The feed behind the stream keeps a week of changes: a browser away longer misses what was
    # forgotten meanwhile (the boards themselves always show the current state).
    board_feed_retention_hours: float = Field(default=168.0, gt=0)
    # The resolution forecasts (预计办结时间): how often a replica re-forecasts the open cases
    # whose expected time passed without a resolution, so none shown stays in the past.
    forecast_sweep_seconds: float = Field(default=60.0, gt=0)
