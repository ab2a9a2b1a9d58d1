"""What notify's component tests share: notify on real PostgreSQL and the real broker (one
app a test module: the Kafka group join is the slow part), a real local HTTP endpoint that
records what it receives, and the steps most tests take — a desk added, a case event built
and published, the inbox and the delivery log read.

Two apps: ``notify`` delivers at once with short backoffs (test_notify.py,
test_notify_recipients.py; test_notify_templates.py takes it, and test_notify_names.py some
helpers, through test_notify); ``notify_on_clock`` runs on a clock the test moves on, so
that backoff, quiet hours and a robot's rate window pass without sleeping
(test_notify_delivery.py, test_notify_subscriptions.py). Each yields ``(client, dsn,
bootstrap)``. Every test uses its own department ids, recipients and webhook paths, so tests
do not see each other's deliveries.

A test module takes the app as ``notify = notify_fixtures.notify`` (or
``notify = notify_fixtures.notify_on_clock`` with ``clock = notify_fixtures.clock``)."""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.notify.config import Settings
from services.notify.main import create_app
from shared.auth import Role
from shared.contract import CaseDispatched, CaseOverdue, Envelope, Priority, new_event
from tests.conftest import migrated_database
from tests.helpers import as_user, bearer, fetch, running_app

ADMIN = as_user("admin")
CONSOLE = "https://whistle.example.gov.cn"  # PUBLIC_BASE_URL: links in messages start with it
NOWHERE = "http://127.0.0.1:9"  # refuses connections: no reference names
GRID = "YA/YA01/YA0101/YA0101-03"

# --- a real webhook endpoint ---------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # the sender gave up on a hanging request: a broken pipe is expected


class Endpoint:
    """An HTTP server on 127.0.0.1: ``/ok/...`` answers 204; ``/fail/N/...`` answers 500 to
    the first N requests, then 200; ``/reject/...`` answers 400 until ``accept`` is called;
    ``/hang/...`` answers only after the sender gave up."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.accepted: set[str] = set()
        self.opened: list[str] = []  # paths, as requests arrive (before they are answered)
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = endpoint._decide(self.path)
                with endpoint._lock:
                    endpoint.opened.append(self.path)
                if status == 0:
                    time.sleep(8)
                    status = 204
                with endpoint._lock:
                    endpoint.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                            status,
                        )
                    )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _decide(self, path: str) -> int:
        kind = path.strip("/").split("/")[0]
        if kind == "fail":
            failures = int(path.strip("/").split("/")[1])
            with self._lock:
                seen = sum(1 for r in self.received if r.path == path)
            return 500 if seen < failures else 200
        if kind == "reject":
            return 200 if path in self.accepted else 400
        if kind == "hang":
            return 0
        return 204

    async def started(self, path: str) -> int:
        with self._lock:
            return self.opened.count(path)

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="module")
def endpoint():
    ep = Endpoint()
    yield ep
    ep.close()


# --- the apps ----------------------------------------------------------------------------------


def settings(dsn: str, bootstrap: str, **delivery: Any) -> Settings:
    return Settings(
        environment="test",
        database_url=dsn,
        kafka_bootstrap_servers=bootstrap,
        kafka_idempotent_producer=False,
        log_json=False,
        outbox_poll_interval_seconds=0.5,
        # no intake or dispatch here (not whatever runs on their default ports): messages
        # show codes; test_notify_names shows them named
        intake_url=NOWHERE,
        dispatch_url=NOWHERE,
        **delivery,
    )


@pytest.fixture(scope="module")
async def notify(pg_server, kafka_server):
    """Three tries in line, then two scheduled ones a second or two apart."""
    dsn = await migrated_database(pg_server, "notify")
    app = create_app(
        settings(
            dsn,
            kafka_server.bootstrap,
            delivery_poll_interval_seconds=0.2,
            delivery_timeout_seconds=2,
            delivery_inline_attempts=3,
            delivery_max_attempts=3,
            delivery_backoff_base_seconds=1.0,
            delivery_backoff_max_seconds=2.0,
            delivery_lease_seconds=15,
            public_base_url=CONSOLE + "/",
        )
    )
    async with running_app(app) as client:
        yield client, dsn, kafka_server.bootstrap


class Clock:
    """Real time plus an offset that only moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def notify_on_clock(pg_server, kafka_server, clock):
    """One try at a time, backoffs of 30 s and more, three robot messages a minute: on
    ``clock``, which the test moves on."""
    dsn = await migrated_database(pg_server, "notify")
    app = create_app(
        settings(
            dsn,
            kafka_server.bootstrap,
            delivery_poll_interval_seconds=0.1,
            delivery_timeout_seconds=6,
            delivery_inline_attempts=1,
            delivery_max_attempts=3,
            delivery_backoff_base_seconds=30,
            delivery_backoff_max_seconds=60,
            delivery_lease_seconds=10,
            robot_messages_per_minute=3,
            public_base_url=CONSOLE,
        ),
        clock=clock,
    )
    async with running_app(app) as client:
        yield client, dsn, kafka_server.bootstrap


async def snapshot(dsn: str) -> dict[str, str]:
    """What the API may change (the worker moves attempts and statuses on its own)."""
    rows = await fetch(
        dsn,
        """
        SELECT (SELECT md5(string_agg(r::text, '|' ORDER BY id)) FROM recipients r) AS recipients,
               (SELECT md5(string_agg(id || ':' || coalesce(read_at::text, ''), '|' ORDER BY id))
                  FROM inbox_messages) AS inbox,
               (SELECT md5(string_agg(id || ':' || replays, '|' ORDER BY id))
                  FROM deliveries) AS deliveries,
               (SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM subscriptions s)
                  AS subscriptions,
               (SELECT md5(string_agg(t::text, '|' ORDER BY kind, locale))
                  FROM message_templates t) AS templates,
               (SELECT revision FROM message_template_revision)::text AS template_revision""",
    )
    return dict(rows[0])


def uid() -> str:
    return uuid.uuid4().hex[:8]


# --- who is asking, and who hears ---------------------------------------------------------------


def staff(department_id: str) -> dict[str, str]:
    """A member of staff of the department ``department_id``."""
    return bearer(Role.DEPARTMENT, department_id=department_id)


def overseer(area: str) -> dict[str, str]:
    """A supervisor (督办) of the area subtree ``area``."""
    return bearer(Role.SUPERVISOR, area)


async def add_recipient(client, **fields) -> dict:
    resp = await client.post("/recipients", json=fields, headers=ADMIN)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def desk(
    client, dept: str | None = None, *, rid: str | None = None, name: str = "城管值班室", **extra
) -> str:
    """A department's desk (``duty-<dept>`` unless ``rid`` is given; a fresh department
    unless ``dept`` is): its id."""
    dept = dept or f"cg-{uid()}"
    rid = rid or f"duty-{dept}"
    await add_recipient(client, id=rid, name=name, kind="department", department_id=dept, **extra)
    return rid


async def area_desk(client, rid: str, kind: str, area: str, name: str) -> str:
    """A supervisor's, community's or grid worker's desk over ``area``: its id."""
    await add_recipient(client, id=rid, name=name, kind=kind, area_path=area)
    return rid


async def inbox_of(client, recipient_id: str, who: dict[str, str], **params) -> list[dict]:
    resp = await client.get(f"/recipients/{recipient_id}/inbox", params=params, headers=who)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def deliveries(client, **params) -> list[dict]:
    """The delivery log (admin's view), filtered by ``params``."""
    resp = await client.get("/deliveries", params=params, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- case events, as their producers publish them ------------------------------------------------


def facts(area: str, **kw: Any) -> dict[str, Any]:
    """The case facts every event carries (case number, area, category, priority), and ``kw``."""
    return {
        "case_no": kw.pop("case_no", "YA20261122-0101"),
        "area_path": area,
        "category": kw.pop("category", "E0101"),
        "priority": kw.pop("priority", Priority.NORMAL),
        **kw,
    }


def dispatched_in(area: str, dept: str, case_id: uuid.UUID | None = None, **kw: Any) -> Envelope:
    """A dispatch to ``dept`` as its lead, as dispatch publishes it; ``kw`` as in ``facts`` or
    fields of the event."""
    fields = {
        "assignment_id": uuid.uuid4(),
        "department_id": dept,
        "department_name": "榆安区城市管理局",
        "role": "lead",
        "rule_id": None,
        "reason": "rule",
        "description": "楼道堆放杂物",
        **kw,
    }
    return new_event(
        CaseDispatched(**facts(area, **fields)),
        case_id=case_id or uuid.uuid4(),
        producer="dispatch",
    )


def dispatched(
    department_id: str, *, case_id: uuid.UUID | None = None, case_no: str = "YA20261122-0001"
) -> Envelope:
    """A dispatch of case ``case_no`` (E0101, in GRID) by the routing rule."""
    return dispatched_in(
        GRID,
        department_id,
        case_id,
        case_no=case_no,
        rule_id=6,
        reason="E0101 × YA → cg",
        description="楼下空地乱堆建筑垃圾",
    )


def overdue_in(area: str, dept: str, case_id: uuid.UUID | None = None, **kw: Any) -> Envelope:
    """A resolve deadline ``dept`` missed, as tracking publishes it; ``kw`` as in
    ``dispatched_in``."""
    fields = {
        "assignment_id": uuid.uuid4(),
        "department_id": dept,
        "department_name": "榆安区城市管理局",
        "clock": "resolve",
        "due_at": datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
        **kw,
    }
    return new_event(
        CaseOverdue(**facts(area, **fields)),
        case_id=case_id or uuid.uuid4(),
        producer="tracking",
    )
