"""The whole system on one machine: embedded PostgreSQL (one database per service), the
Tansu Kafka-protocol broker, the topics, the four services as separate processes, demo data.

Used by ``python -m stack up`` (``make up``) and by the end-to-end tests, which start their
own stack on free ports in a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared import demo
from shared.auth import Principal, Role, TokenKeys, mint
from shared.broker import ensure_topics
from shared.contract import Topics
from stack.kafka import EmbeddedKafka
from stack.postgres import EmbeddedPostgres
from stack.supervisor import Restart, Supervisor

SERVICES = ("dispatch", "intake", "tracking", "notify")
# The console's gateway (web/): one origin for browsers in front of the four services.
CONSOLE = "web"
APPS = (*SERVICES, CONSOLE)
ROOT = Path(__file__).resolve().parent.parent
# Each service's consumer groups and what they read (the services' consumers.py; group ids
# are ``whistle-<service>-<name>``, shared.broker.EventConsumer). Stopping the stack waits
# until each group has read its topics to the end (the broker keeps them in memory only).
CONSUMER_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "intake": {
        "whistle-intake-progress": (Topics.DISPATCH,),
        "whistle-intake-clocks": (Topics.TRACKING,),
    },
    "dispatch": {
        "whistle-dispatch-whistles": (Topics.INTAKE,),
        "whistle-dispatch-deadlines": (Topics.TRACKING,),
    },
    "tracking": {"whistle-tracking-timeline": (Topics.INTAKE, Topics.DISPATCH)},
    "notify": {"whistle-notify-deliveries": (Topics.INTAKE, Topics.DISPATCH, Topics.TRACKING)},
}
# The order services stop in, once everything is drained: along the flow of a case (a report
# and its whistle, the dispatch, the clocks, the messages), so that what a stopping service
# flushes on its way out is still read by those after it; notify reads everything, last.
STOP_ORDER = ("intake", "dispatch", "tracking", "notify")


@dataclass
class StackConfig:
    data_dir: Path = ROOT / ".data"
    pg_port: int = 55432
    kafka_port: int = 19092
    ports: dict[str, int] = field(
        default_factory=lambda: {
            "web": 8100,
            "intake": 8101,
            "dispatch": 8102,
            "tracking": 8103,
            "notify": 8104,
        }
    )
    # Extra environment per service (e.g. short deadlines in tests); "*" applies to all.
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    demo_data: bool = True
    log_level: str = "INFO"
    # Extra PostgreSQL server settings ("name=value"), e.g. for the benchmark's statistics.
    pg_settings: tuple[str, ...] = ()
    # Restart whatever dies (stack/supervisor.py); where its messages go besides its log.
    supervise: bool = True
    say: Any = None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"


def module_of(app: str) -> str:
    return app if app == CONSOLE else f"services.{app}"


class PortInUse(RuntimeError):
    pass


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres = EmbeddedPostgres(
            config.data_dir / "postgres",
            config.pg_port,
            config.log_dir / "postgres.log",
            settings=config.pg_settings,
        )
        self.kafka = EmbeddedKafka(config.kafka_port, config.log_dir / "broker.log")
        self.processes: dict[str, subprocess.Popen] = {}
        self._wanted: set[str] = set()  # apps that should be running (not stopped on purpose)
        self._lock = threading.Lock()
        self.supervisor = Supervisor(self, say=config.say)

    @property
    def restarts(self) -> list[Restart]:
        """What the supervisor restarted, in order."""
        return self.supervisor.restarts

    # -- addresses ------------------------------------------------------------------------

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.config.ports[service]}"

    @property
    def console_url(self) -> str:
        return self.url(CONSOLE)

    def database(self, service: str) -> str:
        return f"whistle_{service}"

    def dsn(self, service: str) -> str:
        return self.postgres.dsn(self.database(service))

    @property
    def auth_secret(self) -> str:
        """The stack's token signing secret: made once per data folder, kept there (0600)."""
        path = self.config.data_dir / "auth-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def token_keys(self) -> TokenKeys:
        return TokenKeys("HS256", self.auth_secret, self.auth_secret, "whistle", "whistle")

    def mint_demo_token(self, subject: str, ttl_seconds: int = 12 * 3600) -> str:
        user = next((u for u in demo.USERS if u.subject == subject), None)
        if user is None:
            known = ", ".join(u.subject for u in demo.USERS)
            raise KeyError(f"no demo user '{subject}'; demo users: {known}")
        principal = Principal(
            subject=user.subject,
            name=user.name,
            role=Role(user.role),
            area=user.area,
            department_id=user.department_id,
            grids=user.grids,
        )
        return mint(self.token_keys(), principal, ttl_seconds)

    def service_env(self, service: str) -> dict[str, str]:
        c = self.config
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ENVIRONMENT": "embedded",
            "SERVICE_NAME": service,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(c.ports[service]),
            "DATABASE_URL": self.dsn(service),
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "KAFKA_IDEMPOTENT_PRODUCER": "false",  # Tansu has no idempotent producer
            "LOG_LEVEL": c.log_level,
            "DISPATCH_URL": self.url("dispatch"),
            "AUTH_SECRET": self.auth_secret,
            # Links in messages and rating links point at the console.
            "PUBLIC_BASE_URL": self.console_url,
        }
        if service == CONSOLE:
            env.update({f"{s.upper()}_URL": self.url(s) for s in SERVICES})
        if service == "notify":  # area names for messages (DISPATCH_URL: category names)
            env["INTAKE_URL"] = self.url("intake")
        env.update(c.env.get("*", {}))
        env.update(c.env.get(service, {}))
        return env

    # -- lifecycle -----------------------------------------------------------------------

    def check_ports_free(self) -> None:
        """Refuse to start over another program's port, rather than talk to it by mistake."""
        c = self.config
        wanted = {"PostgreSQL": c.pg_port, "broker": c.kafka_port, **{s: c.ports[s] for s in APPS}}
        busy = []
        for what, port in wanted.items():
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(f"{what} 127.0.0.1:{port}")
        if busy:
            raise PortInUse("ports already in use by another program: " + ", ".join(busy))

    def start(self) -> None:
        c = self.config
        self.check_ports_free()
        c.log_dir.mkdir(parents=True, exist_ok=True)
        self.postgres.init()
        self.postgres.start()
        self.postgres.create_databases([self.database(s) for s in APPS])
        self.kafka.start()
        asyncio.run(ensure_topics(self.kafka.bootstrap))
        self._run_all("migrate")
        self.supervisor.recover_after_unclean_stop()
        if c.demo_data:
            self._run_all("seed-demo")
        for service in APPS:
            self.start_service(service)
        self.wait_ready()
        if c.supervise:
            self.supervisor.start()

    def _run_all(self, command: str) -> None:
        procs = {
            s: subprocess.Popen(
                [sys.executable, "-m", module_of(s), command],
                env=self.service_env(s),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            for s in APPS
        }
        for s, p in procs.items():
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                raise RuntimeError(f"{s} {command} failed:\n{out.decode(errors='replace')}")

    def start_service(self, service: str) -> None:
        with self._lock:
            log = open(self.config.log_dir / f"{service}.log", "ab")  # noqa: SIM115
            self.processes[service] = subprocess.Popen(
                [sys.executable, "-m", module_of(service), "serve"],
                env=self.service_env(service),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
            self._wanted.add(service)

    def wanted_apps(self) -> set[str]:
        with self._lock:
            return set(self._wanted)

    def halt_services(self, services: list[str], grace: float = 5.0) -> None:
        """Stop services the supervisor is about to start again (SIGTERM, then SIGKILL after
        ``grace`` seconds); they stay wanted."""
        with self._lock:
            procs = [self.processes[s] for s in services if s in self.processes]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def dead_apps(self) -> list[str]:
        """Apps that should run and have exited (the supervisor restarts them)."""
        with self._lock:
            return [s for s in APPS if s in self._wanted and self.processes[s].poll() is not None]

    def stop_service(self, service: str, *, kill: bool = False, timeout: float = 30) -> None:
        """Stop an app on purpose: the supervisor leaves it stopped until ``start_service``."""
        with self._lock:
            self._wanted.discard(service)
            proc = self.processes.get(service)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def wait_ready(self, services: tuple[str, ...] = APPS, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        pending = list(services)
        with httpx.Client(timeout=3) as client:
            while pending:
                for s in list(pending):
                    proc = self.processes.get(s)
                    if proc is not None and proc.poll() is not None:
                        raise RuntimeError(
                            f"{s} exited with {proc.returncode}; see {self.config.log_dir / s}.log"
                        )
                    try:
                        if client.get(self.url(s) + "/readyz").status_code == 200:
                            pending.remove(s)
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}")
                if pending:
                    time.sleep(0.3)

    def quiesce(self, timeout: float = 20.0, quiet: float = 1.5) -> bool:
        """Let work in flight settle before the in-memory broker goes away.

        The embedded broker keeps messages in memory, so an event published but not yet
        consumed would be lost with it. Wait (bounded) until every outbox is empty and no
        consumer group has anything left to read (``drain``) for ``quiet`` seconds. Returns
        False if it did not within ``timeout``.
        """
        return not asyncio.run(self.drain(quiet=quiet, stall=timeout, cap=timeout))

    async def backlog(
        self, services: tuple[str, ...] = SERVICES, *, outboxes: bool = True
    ) -> dict[str, int]:
        """What is still on its way, by place: each running service's outbox (unsent rows,
        parked ones and those of their case held behind them excepted: they wait for an
        operator) and each of its consumer groups' lag on each topic it reads (the end
        offsets against the group's committed offsets; nothing committed counts from 0,
        as the groups start from the earliest). Places with nothing left are left out."""
        import asyncpg
        from aiokafka import AIOKafkaConsumer, TopicPartition

        left: dict[str, int] = {}
        for s in services if outboxes else ():
            try:
                conn = await asyncpg.connect(self.dsn(s), timeout=5)
            except (OSError, asyncpg.PostgresError) as exc:
                left[f"{s} outbox (unreachable: {exc!r})"] = 1
                continue
            try:
                n = await conn.fetchval(
                    "SELECT count(*) FROM outbox o WHERE sent_at IS NULL"
                    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.key = o.key"
                    " AND p.parked_at IS NOT NULL AND p.sent_at IS NULL AND p.id <= o.id)"
                )
            finally:
                await conn.close()
            if n:
                left[f"{s} outbox"] = n
        groups = {g: t for s in services for g, t in CONSUMER_GROUPS[s].items()}
        if not groups or not self.kafka.running:
            return left
        # Committed offsets are read with a consumer in the group that neither subscribes
        # nor joins (so the group's members are left alone) and never commits: Tansu does
        # not answer the admin client's OffsetFetch.
        bootstrap = self.kafka.bootstrap
        probe = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, client_id="whistle-stack-stop", enable_auto_commit=False
        )
        await probe.start()
        try:
            topics = {t for ts in groups.values() for t in ts}
            await probe.topics()
            parts = [
                TopicPartition(t, p)
                for t in sorted(topics)
                for p in sorted(probe.partitions_for_topic(t) or ())
            ]
            ends = await probe.end_offsets(parts)
        finally:
            await probe.stop()
        for group, read in groups.items():
            member = AIOKafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=group,
                client_id="whistle-stack-stop",
                enable_auto_commit=False,
            )
            await member.start()
            try:
                for tp in parts:
                    if tp.topic not in read:
                        continue
                    done = await member.committed(tp)
                    lag = ends[tp] - max(done or 0, 0)
                    if lag > 0:
                        key = f"{group} behind on {tp.topic}"
                        left[key] = left.get(key, 0) + lag
            finally:
                await member.stop()
        return left

    async def drain(
        self,
        services: tuple[str, ...] = SERVICES,
        *,
        quiet: float = 1.5,
        stall: float = 30.0,
        cap: float = 600.0,
    ) -> dict[str, int]:
        """Wait until nothing is left on its way (``backlog``) for ``quiet`` seconds. No fixed
        limit while it shrinks: it gives up only when the backlog has not reached a new low
        for ``stall`` seconds, or after ``cap`` in all; then it says LOUDLY what is left, and
        returns it (empty: drained)."""
        started = time.monotonic()
        best: int | None = None
        best_at = clear_since = time.monotonic()
        left: dict[str, int] = {}
        while True:
            try:
                left = await self.backlog(services)
            except Exception as exc:  # the broker blinked: count it as not drained
                left = {f"broker unreachable ({exc!r})": 1}
            total = sum(left.values())
            now = time.monotonic()
            if total:
                clear_since = now
            elif now - clear_since >= quiet:
                return {}
            if best is None or total < best:
                best, best_at = total, now
            if now - best_at >= stall or now - started >= cap:
                what = ", ".join(f"{k}: {v}" for k, v in sorted(left.items()))
                why = "not shrinking" if now - best_at >= stall else f"still going after {cap:g}s"
                message = (
                    f"\n!!! STOPPING THE STACK WITH EVENTS IN FLIGHT ({why}): {what}\n"
                    "!!! what is in the broker is lost with it; outboxes keep theirs\n"
                )
                await asyncio.to_thread(self._shout, message)
                return left
            await asyncio.sleep(0.25)

    async def _stop_services(self) -> None:
        """Drain with everything running, then stop the services one by one in
        ``STOP_ORDER``, draining again after each (what it flushed on its way out is read by
        those still running) before the next."""
        running = [s for s in STOP_ORDER if self._running(s)]
        drained = True
        if running and self.kafka.running:
            drained = not await self.drain(tuple(running))
        for service in list(running):
            await asyncio.to_thread(self.stop_service, service)
            running.remove(service)
            if running and self.kafka.running:
                drained = not await self.drain(tuple(running)) and drained
        if self.kafka.running:  # an event its group never read now goes with the broker
            try:
                unread = await self.backlog(SERVICES, outboxes=False)
            except Exception as exc:
                unread = {f"broker unreachable ({exc!r})": 1}
            if unread:
                what = ", ".join(f"{k}: {v}" for k, v in sorted(unread.items()))
                await asyncio.to_thread(
                    self._shout,
                    "\n!!! EVENTS NEVER READ, LEFT IN THE "
                    f"IN-MEMORY BROKER: {what}; the next start publishes "
                    "them again from the outboxes\n",
                )
            elif drained:
                # Everything sent was read: the next start has nothing to publish again.
                self.supervisor.stopped_cleanly()

    def _shout(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        with open(self.config.log_dir / "stack-stop.log", "a") as f:
            f.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + message)

    def _running(self, service: str) -> bool:
        proc = self.processes.get(service)
        return proc is not None and proc.poll() is None

    def stop(self) -> None:
        """Stop everything we started without losing an event: the front door first (no new
        requests), then drain — every outbox sent and every consumer group caught up with
        the topics it reads — and stop the services one by one, draining after each
        (``_stop_services``); then the broker (in memory: nothing is left in it by then),
        then the database. If draining stops making progress, it says so loudly and goes on."""
        self.stop_service(CONSOLE)
        asyncio.run(self._stop_services())
        for service in SERVICES:
            self.stop_service(service)
        self.supervisor.stop()  # from here on a broker or database going away is ours
        self.kafka.stop()
        self.postgres.stop()
