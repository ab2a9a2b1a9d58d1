"""The load: the fault suite's open-loop generator (``tests.faults.load.Load``: a grid worker
reports a case with an Idempotency-Key, his community whistles it; 17 grids over four
streets, 11 categories each routed district-wide to one lead department and maybe a
co-handler), reused as it is, with the time of every HTTP request recorded; and a closed-loop
variant: ``clients`` workers, each starting its next case as soon as the last one is whistled.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

from bench.e2e.stats import summary
from tests.faults.load import CATEGORIES, GRIDS, Case, Load, departments_for


class TimedLoad(Load):
    """``Load`` with each request's duration (ms) kept by kind (report, whistle) and status."""

    def __init__(self, stack, **kwargs) -> None:
        super().__init__(stack, **kwargs)
        self.http_ms: dict[str, list[float]] = defaultdict(list)
        request = self.client.request

        async def timed(method: str, url: str, **kw):
            what = "whistle" if url.endswith("/whistle") else "report"
            started = time.perf_counter()
            try:
                resp = await request(method, url, **kw)
            except Exception as exc:
                self.http_ms[f"{what} {type(exc).__name__}"].append(
                    (time.perf_counter() - started) * 1000
                )
                raise
            self.http_ms[what].append((time.perf_counter() - started) * 1000)
            return resp

        self.client.request = timed  # type: ignore[method-assign]

    def http_summary(self) -> dict:
        every = [ms for k, v in self.http_ms.items() if " " not in k for ms in v]
        return {"all": summary(every), **{k: summary(v) for k, v in sorted(self.http_ms.items())}}


class ClosedLoad(TimedLoad):
    """``clients`` workers back to back: each reports and whistles a case, then the next."""

    def __init__(self, stack, *, clients: int, **kwargs) -> None:
        super().__init__(stack, rate=1.0, **kwargs)
        self.clients = clients

    async def _drive(self) -> None:
        counter = iter(range(10**9))

        async def worker(w: int) -> None:
            while not self._stopping.is_set():
                n = next(counter)
                category = CATEGORIES[n % len(CATEGORIES)]
                case = Case(
                    key=f"{self.tag}-{n}-{uuid.uuid4().hex[:8]}",
                    grid=GRIDS[self.random.randrange(len(GRIDS))],
                    category=category,
                    departments=departments_for(category),
                    started_at=time.monotonic(),
                )
                self.stats.cases.append(case)
                await self.run_case(case)

        await asyncio.gather(*(worker(w) for w in range(self.clients)))
