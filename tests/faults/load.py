"""An open-loop load generator over the real HTTP API: at a fixed rate, a grid worker reports
a case (intake, with an Idempotency-Key) and his community whistles it (intake), whatever
the system is going through. A request that fails (connection refused or reset, 5xx, a
timeout) is retried with the same key until a bounded deadline; every case whose report
was accepted (2xx) is recorded, with the departments the routing rules send it to."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from shared.auth import Principal, Role, mint
from shared.demo import ROUTING_RULES

# Grids spread over the four streets (and so over the cases' keys and partitions).
GRIDS = [
    "YA/YA01/YA0101/YA0101-01",
    "YA/YA01/YA0101/YA0101-05",
    "YA/YA01/YA0102/YA0102-02",
    "YA/YA01/YA0103/YA0103-04",
    "YA/YA01/YA0104/YA0104-07",
    "YA/YA02/YA0201/YA0201-02",
    "YA/YA02/YA0202/YA0202-03",
    "YA/YA02/YA0203/YA0203-06",
    "YA/YA02/YA0204/YA0204-01",
    "YA/YA03/YA0301/YA0301-02",
    "YA/YA03/YA0302/YA0302-04",
    "YA/YA03/YA0303/YA0303-08",
    "YA/YA03/YA0304/YA0304-05",
    "YA/YA04/YA0401/YA0401-03",
    "YA/YA04/YA0402/YA0402-09",
    "YA/YA04/YA0403/YA0403-02",
    "YA/YA04/YA0404/YA0404-06",
]
# Categories with a district-wide routing rule of their own (no compound's property company
# or street office is more specific anywhere): one lead, some with a co-handler.
CATEGORIES = [
    "E0101",
    "C0101",
    "E0201",
    "C0104",
    "E0105",
    "E0403",
    "C0204",
    "E0303",
    "C0103",
    "E0402",
    "C0503",
]
IN_FLIGHT = 48  # requests at once, at most
RULES = {category: (lead, *co) for category, _, lead, co in ROUTING_RULES}


def departments_for(category: str) -> frozenset[str]:
    """Where the demo routing rules send a case of ``category`` anywhere in the district."""
    return frozenset(RULES[category])


@dataclass
class Case:
    key: str
    grid: str
    category: str
    departments: frozenset[str]
    started_at: float
    case_id: str | None = None
    whistled: bool = False
    report_attempts: int = 0
    whistle_attempts: int = 0
    error: str | None = None

    @property
    def grid_code(self) -> str:
        return self.grid.rsplit("/", 1)[1]

    @property
    def community(self) -> str:
        return self.grid.rsplit("/", 1)[0]


@dataclass
class LoadStats:
    cases: list[Case] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    seconds: float = 0.0

    @property
    def accepted(self) -> list[Case]:
        return [c for c in self.cases if c.case_id is not None]

    @property
    def failed(self) -> list[Case]:
        return [c for c in self.cases if c.error is not None]


class Identities:
    """Bearer tokens of made-up grid workers (one per grid) and community secretaries,
    signed with the stack's key (the services verify tokens only)."""

    def __init__(self, stack) -> None:
        keys = stack.token_keys()
        self.worker: dict[str, dict[str, str]] = {}
        self.community: dict[str, dict[str, str]] = {}
        for grid in GRIDS:
            code = grid.rsplit("/", 1)[1]
            worker = Principal(
                subject=f"fault-gw-{code}",
                name=f"压测网格员{code}",
                role=Role.GRID_WORKER,
                area=grid,
                grids=(grid,),
            )
            self.worker[grid] = _bearer(mint(keys, worker, 6 * 3600))
            community = grid.rsplit("/", 1)[0]
            if community not in self.community:
                who = Principal(
                    subject=f"fault-cm-{community.rsplit('/', 1)[1]}",
                    name="压测社区",
                    role=Role.COMMUNITY,
                    area=community,
                )
                self.community[community] = _bearer(mint(keys, who, 6 * 3600))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def report_body(case: Case) -> dict:
    return {
        "grid_code": case.grid_code,
        "category": case.category,
        "priority": "normal",
        "description": f"压测 fault-load {case.key}",
        "location": {"address": "压测地址"},
    }


class Load:
    """``async with Load(stack, rate=20) as load: ...`` runs the load in the background until
    the block ends (or ``stop()``); then waits (bounded) for the cases in flight."""

    def __init__(
        self,
        stack,
        *,
        rate: float = 20.0,
        tag: str = "load",
        give_up_after: float = 150.0,
        seed: int = 13,
    ) -> None:
        self.stack = stack
        self.rate = rate
        self.tag = tag
        self.give_up_after = give_up_after
        self.ids = Identities(stack)
        self.stats = LoadStats()
        self.random = random.Random(seed)
        self._tasks: set[asyncio.Task] = set()
        self._driver: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        # Requests in flight are bounded by a semaphore below the pool's size, so that no
        # request ever queues inside httpx's pool (whose queue costs quadratic CPU when
        # hundreds of retries pile up during a fault and starves this event loop).
        self._in_flight = asyncio.Semaphore(IN_FLIGHT)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=3.0),
            limits=httpx.Limits(
                max_connections=IN_FLIGHT + 8, max_keepalive_connections=IN_FLIGHT + 8
            ),
        )

    async def __aenter__(self) -> Load:
        self.started = time.monotonic()
        self._driver = asyncio.create_task(self._drive())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def stop(self, wait: float = 180.0) -> LoadStats:
        """Stop starting cases; wait for those in flight (each gives up on its own)."""
        if self._driver is None:
            return self.stats
        self._stopping.set()
        await self._driver
        self._driver = None
        self.stats.seconds = time.monotonic() - self.started
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=wait)
        for t in self._tasks:
            t.cancel()
        await self.client.aclose()
        return self.stats

    async def _drive(self) -> None:
        """Open loop: case n starts at ``n / rate`` seconds, however the earlier ones fare."""
        start = time.monotonic()
        for n in itertools.count():
            due = start + n / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            category = CATEGORIES[n % len(CATEGORIES)]
            case = Case(
                key=f"{self.tag}-{n}-{uuid.uuid4().hex[:8]}",
                grid=GRIDS[self.random.randrange(len(GRIDS))],
                category=category,
                departments=departments_for(category),
                started_at=time.monotonic(),
            )
            self.stats.cases.append(case)
            task = asyncio.create_task(self.run_case(case))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(
        self,
        case: Case,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        json: dict | None = None,
        what: str,
    ) -> httpx.Response | None:
        """One request, retried while it fails for a reason a fault explains; None when the
        case's deadline passed."""
        backoff = 0.25
        while True:
            try:
                async with self._in_flight:
                    resp = await self.client.request(method, url, headers=headers, json=json)
                self.stats.statuses[f"{what} {resp.status_code}"] += 1
                if resp.status_code < 500 and resp.status_code != 429:
                    return resp
            except httpx.HTTPError as exc:
                self.stats.statuses[f"{what} {type(exc).__name__}"] += 1
            self.stats.retries += 1
            if time.monotonic() - case.started_at > self.give_up_after:
                case.error = f"{what}: gave up after {self.give_up_after:.0f}s"
                return None
            await asyncio.sleep(backoff * (0.5 + self.random.random()))
            backoff = min(backoff * 2, 2.0)

    async def run_case(self, case: Case) -> None:
        intake = self.stack.url("intake")
        worker = {**self.ids.worker[case.grid], "Idempotency-Key": case.key}
        case.report_attempts += 1
        resp = await self._send(
            case, "POST", f"{intake}/cases", headers=worker, json=report_body(case), what="report"
        )
        if resp is None:
            return
        if resp.status_code not in (200, 201):
            case.error = f"report {resp.status_code}: {resp.text[:200]}"
            return
        case.case_id = resp.json()["id"]
        await self.whistle(case)

    async def whistle(self, case: Case) -> None:
        """社区吹哨. The whistle has no key: a retry after an unanswered attempt may find the
        case whistled already (409 invalid_state), which is the outcome wanted."""
        intake = self.stack.url("intake")
        community = self.ids.community[case.community]
        case.whistle_attempts += 1
        resp = await self._send(
            case,
            "POST",
            f"{intake}/cases/{case.case_id}/whistle",
            headers=community,
            json={"note": "压测吹哨"},
            what="whistle",
        )
        if resp is None:
            return
        if resp.status_code == 200 or (resp.status_code == 409 and "invalid_state" in resp.text):
            case.whistled = True
        else:
            case.error = f"whistle {resp.status_code}: {resp.text[:200]}"
