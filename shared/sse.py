"""Live streams (Server-Sent Events) end when the token that opened them expires.

A stream is authorised once, when it opens; without an end it would keep a revoked or
disabled user (or a stolen token) listening for as long as the connection lasts. The
console's gateway cuts the streams it proxies; each service cuts its own too, since a
service may be reached without the gateway. The browser then reconnects with a fresh
token and ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import structlog

log = structlog.get_logger()
T = TypeVar("T")


async def until_expiry(
    events: AsyncIterator[T], expires_at: float | None, *, clock: Callable[[], float] = time.time
) -> AsyncIterator[T]:
    """``events`` until ``expires_at`` (epoch seconds), then a clean end. Only the wait for
    the next event is bounded (never the consumer's send of the last one)."""
    try:
        while True:
            if expires_at is None:
                event = await anext(events)
            else:
                remaining = expires_at - clock()
                if remaining <= 0:
                    log.info("stream_ended_token_expired")
                    return
                try:
                    async with asyncio.timeout(remaining):
                        event = await anext(events)
                except TimeoutError:
                    log.info("stream_ended_token_expired")
                    return
            yield event
    except StopAsyncIteration:
        return
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
