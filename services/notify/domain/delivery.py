"""Delivery rules beyond one attempt: when a channel has failed for good (fall back to the
next one), and how to stay inside a robot's rate limit (a digest instead of dropped
messages)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.notify.domain.core import DeliveryStatus, status_after_failure

RATE_WINDOW = timedelta(minutes=1)


def after_failure(
    attempts: int, max_attempts: int, *, permanent: bool, gone: bool = False
) -> DeliveryStatus:
    """After ``attempts`` failed scheduled attempts: try again later, or give this channel up
    (dead: kept, replayable; the next channel takes over). A permanent refusal (a wrong key,
    a 4xx, a refused address) or a vanished endpoint gives up at once: trying the same
    settings again cannot help."""
    if permanent:
        return DeliveryStatus.DEAD
    return status_after_failure(attempts, max_attempts, gone=gone)


class RobotPlan(StrEnum):
    EACH = "each"  # room for every pending message: send them one by one
    DIGEST = "digest"  # not enough room: send one digest (汇总) carrying them all
    WAIT = "wait"  # no room at all: hold them until the window has room again


@dataclass(frozen=True)
class Pacing:
    plan: RobotPlan
    wait_until: datetime | None = None


def pace_robot(pending: int, sent_times: list[datetime], now: datetime, limit: int) -> Pacing:
    """How to send ``pending`` due messages to one robot that took messages at
    ``sent_times`` (a sliding minute). A robot takes about ``limit`` a minute and drops
    (or refuses) the rest, so when more are due than there is room for, they go as one
    digest; when there is no room, they wait for the oldest send to leave the window."""
    recent = sorted(t for t in sent_times if t > now - RATE_WINDOW)
    room = limit - len(recent)
    if room <= 0:
        return Pacing(RobotPlan.WAIT, recent[-limit] + RATE_WINDOW if recent else now)
    if pending <= room:
        return Pacing(RobotPlan.EACH)
    return Pacing(RobotPlan.DIGEST)


def robot_destination(kind: str, url: str | None) -> str:
    """One robot's identity for its rate window (recipients may share a robot): a hash of
    its URL, so that the key in it is not copied around."""
    return kind + ":" + hashlib.sha256((url or "").encode()).hexdigest()[:24]
