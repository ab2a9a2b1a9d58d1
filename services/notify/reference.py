"""Keeps the names messages need (an adapter): areas from intake, categories from dispatch.

Events carry codes; a person reads names. Intake's ``GET /areas/features`` (the jurisdiction
as GeoJSON, every area's name) and dispatch's ``GET /categories`` (the catalogue) are public
reference data: fetched at start and every ``REFERENCE_REFRESH_SECONDS``; a failed fetch is
retried with capped exponential backoff and jitter (tenacity, each failure logged) while
the last good copy stays in use. Each document is taken on its own, so categories are named
while intake is away and the other way round.

Kept in memory, not in notify's database: a few thousand names, cheap to fetch again, each
replica holding its own copy with nothing to keep consistent, no migration and no table
duplicating what intake and dispatch own. What memory loses is a restart while intake or
dispatch is down: messages then read as codes until they are back — the fallback every
message has anyway. The consumer waits for the first attempt a few seconds at most, so
that the first messages after a start are named when the owners are up.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any

import httpx
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from services.notify.domain.names import NO_NAMES, Names

log = structlog.get_logger()

FIRST_LOAD_WAIT_SECONDS = 3.0
RETRY_CAP_SECONDS = 60.0


class ReferenceNames:
    def __init__(
        self,
        intake_url: str,
        dispatch_url: str,
        *,
        area_root: str = "",
        every: float = 300.0,
        timeout: float = 10.0,
    ) -> None:
        self._areas_url = intake_url.rstrip("/") + "/areas/features"
        self._area_params = {"root": area_root} if area_root else {}
        self._categories_url = dispatch_url.rstrip("/") + "/categories"
        self._every = every
        self._timeout = timeout
        self._names = NO_NAMES
        self._tried = asyncio.Event()  # the first refresh was attempted (either way)
        self._task: asyncio.Task | None = None

    @property
    def known(self) -> Names:
        return self._names

    async def names(self) -> Names:
        """The names known now; right after a start, once the first fetch was tried (a few
        seconds at most: a message never waits longer for a name)."""
        if not self._tried.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tried.wait(), FIRST_LOAD_WAIT_SECONDS)
        return self._names

    # -- fetching ----------------------------------------------------------------------------

    async def refresh(self, client: httpx.AsyncClient) -> None:
        """Fetch both documents once; keep what came; raise the first failure."""
        try:
            results = await asyncio.gather(
                self._refresh_areas(client),
                self._refresh_categories(client),
                return_exceptions=True,
            )
        finally:
            self._tried.set()
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def _refresh_areas(self, client: httpx.AsyncClient) -> None:
        doc = await _get(client, self._areas_url, self._area_params)
        areas = {
            str(f["properties"]["code"]): str(f["properties"]["name"]) for f in doc["features"]
        }
        self._names = replace(self._names, areas=areas)
        log.info(
            "reference_areas_loaded",
            areas=len(areas),
            url=self._areas_url,
            root=self._area_params.get("root"),
        )

    async def _refresh_categories(self, client: httpx.AsyncClient) -> None:
        doc = await _get(client, self._categories_url)
        names = {str(c["code"]): str(c["name"]) for c in doc}
        parents = {str(c["code"]): str(c["parent_code"]) for c in doc if c.get("parent_code")}
        self._names = replace(self._names, categories=names, parents=parents)
        log.info("reference_categories_loaded", categories=len(names), url=self._categories_url)

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        cap = min(RETRY_CAP_SECONDS, self._every)

        def failed(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "reference_names_refresh_failed",
                attempt=state.attempt_number,
                error=repr(exc),
                retry_in_seconds=round(state.upcoming_sleep, 1),
                detail="messages name what is known and show codes for the rest",
            )

        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            while True:
                # No stop: a background refresh keeps trying, each attempt bounded by the
                # timeout and the pause between attempts capped.
                async for attempt in AsyncRetrying(
                    wait=wait_exponential_jitter(initial=1, max=cap, jitter=1),
                    retry=retry_if_exception_type(Exception),
                    before_sleep=failed,
                ):
                    with attempt:
                        await self.refresh(client)
                await asyncio.sleep(self._every)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reference-names")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _get(client: httpx.AsyncClient, url: str, params: dict[str, str] | None = None) -> Any:
    resp = await client.get(url, params=params)
    resp.raise_for_status()
    return resp.json()
