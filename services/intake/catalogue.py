"""Keeps intake's replica of the category catalogue in step with dispatch, its owner.

Fetched over dispatch's HTTP API at start and then periodically, with bounded, jittered
retries; the last good copy stays in use while dispatch is away.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import structlog
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential_jitter

from services.intake import handlers, repository
from shared.service import Runtime

log = structlog.get_logger()


class CatalogueSync:
    def __init__(self, rt: Runtime, dispatch_url: str, every: float) -> None:
        self._rt = rt
        self._url = dispatch_url.rstrip("/") + "/categories"
        self._every = every
        self._task: asyncio.Task | None = None

    async def sync_once(self) -> int:
        async with httpx.AsyncClient(timeout=5) as client:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(5),
                wait=wait_exponential_jitter(multiplier=0.5, max=5, jitter=0.5),
                reraise=True,
            ):
                with attempt:
                    resp = await client.get(self._url)
                    resp.raise_for_status()
        rows = [(c["code"], c["name"], c.get("parent_code")) for c in resp.json()]
        if rows:
            await handlers.sync_categories(self._rt.get_pool(), rows)
        log.info("catalogue_synced", categories=len(rows))
        return len(rows)

    async def _run(self) -> None:
        while True:
            try:
                await self.sync_once()
                await asyncio.sleep(self._every)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("catalogue_sync_failed", error=repr(exc), url=self._url)
                await asyncio.sleep(min(self._every, 2.0))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="catalogue-sync")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def catalogue_loaded(rt: Runtime) -> None:
    """Readiness: intake cannot check a report's category before it has the catalogue."""
    async with rt.get_pool().acquire() as conn:
        if await repository.category_count(conn) == 0:
            raise RuntimeError("category catalogue not yet synced from dispatch")
