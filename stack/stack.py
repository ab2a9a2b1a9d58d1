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
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared import demo
from shared.auth import Principal, Role, TokenKeys, mint
from shared.broker import ensure_topics
from stack.kafka import EmbeddedKafka
from stack.postgres import EmbeddedPostgres

SERVICES = ("dispatch", "intake", "tracking", "notify")
# The console's gateway (web/): one origin for browsers in front of the four services.
CONSOLE = "web"
APPS = (*SERVICES, CONSOLE)
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StackConfig:
    data_dir: Path = ROOT / ".data"
    pg_port: int = 55432
    kafka_port: int = 19092
    ports: dict[str, int] = field(default_factory=lambda: {
        "web": 8100, "intake": 8101, "dispatch": 8102, "tracking": 8103, "notify": 8104,
    })
    # Extra environment per service (e.g. short deadlines in tests); "*" applies to all.
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    demo_data: bool = True
    log_level: str = "INFO"

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
            config.data_dir / "postgres", config.pg_port, config.log_dir / "postgres.log"
        )
        self.kafka = EmbeddedKafka(config.kafka_port, config.log_dir / "broker.log")
        self.processes: dict[str, subprocess.Popen] = {}

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
        principal = Principal(subject=user.subject, name=user.name, role=Role(user.role),
                              area=user.area, department_id=user.department_id, grids=user.grids)
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
        wanted = {"PostgreSQL": c.pg_port, "broker": c.kafka_port,
                  **{s: c.ports[s] for s in APPS}}
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
        if c.demo_data:
            self._run_all("seed-demo")
        for service in APPS:
            self.start_service(service)
        self.wait_ready()

    def _run_all(self, command: str) -> None:
        procs = {
            s: subprocess.Popen(
                [sys.executable, "-m", module_of(s), command], env=self.service_env(s),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
            )
            for s in APPS
        }
        for s, p in procs.items():
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                raise RuntimeError(f"{s} {command} failed:\n{out.decode(errors='replace')}")

    def start_service(self, service: str) -> None:
        log = open(self.config.log_dir / f"{service}.log", "ab")  # noqa: SIM115
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", module_of(service), "serve"],
            env=self.service_env(service), stdout=log, stderr=subprocess.STDOUT,
            cwd=ROOT, start_new_session=True,
        )

    def stop_service(self, service: str, *, kill: bool = False, timeout: float = 30) -> None:
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
        consumer has handled anything for ``quiet`` seconds. Returns False on timeout.
        """
        return asyncio.run(self._quiesce(timeout, quiet))

    async def _quiesce(self, limit: float, quiet: float) -> bool:
        import asyncpg

        deadline = time.monotonic() + limit
        last: tuple[int, float] | None = None
        stable_since = time.monotonic()
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                backlog = 0
                handled = 0.0
                for s in SERVICES:
                    try:
                        conn = await asyncpg.connect(self.dsn(s), timeout=2)
                        try:
                            # Parked rows and those of their case held behind them wait
                            # for an operator's re-drive: they will not settle by waiting.
                            backlog += await conn.fetchval(
                                "SELECT count(*) FROM outbox o WHERE sent_at IS NULL"
                                " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.key = o.key"
                                " AND p.parked_at IS NOT NULL AND p.sent_at IS NULL"
                                " AND p.id <= o.id)")
                        finally:
                            await conn.close()
                        text = (await client.get(self.url(s) + "/metrics")).text
                        handled += sum(
                            float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                            if line.startswith("whistle_events_consumed_total{")
                        )
                    except (OSError, asyncpg.PostgresError, httpx.HTTPError):
                        continue  # a service that is already down has nothing to settle
                state = (backlog, handled)
                if backlog or state != last:
                    last, stable_since = state, time.monotonic()
                elif time.monotonic() - stable_since >= quiet:
                    return True
                await asyncio.sleep(0.25)
        return False

    def stop(self) -> None:
        """Stop everything we started: let in-flight events settle, then the services (they
        finish in-flight work and flush their outbox), then the broker, then the database."""
        self.stop_service(CONSOLE)  # the front door first: no new requests
        if any(p.poll() is None for p in self.processes.values()) and self.kafka.running:
            self.quiesce()
        for service in reversed(SERVICES):
            proc = self.processes.get(service)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for service in reversed(SERVICES):
            self.stop_service(service)
        self.kafka.stop()
        self.postgres.stop()
