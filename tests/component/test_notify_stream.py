"""The in-app inbox's live stream (Server-Sent Events), on the real stack: notify runs as its
own process (``python -m services.notify serve``, uvicorn, real sockets) against the real
PostgreSQL and broker; events are published to the broker; a client reads the stream as a
browser's EventSource would.

- every new message arrives once, in order, its ``id:`` its number in the recipient's stream;
- a client that reconnects with ``Last-Event-ID`` (or ``last_event_id``) gets exactly what
  it missed;
- the numbers follow commit order: a second writer waits for the first to commit (or roll
  back, and then takes its number), so a cursor never jumps over a message still to come;
- heartbeats keep an idle stream open; SIGTERM ends open streams cleanly and the process
  exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.auth import Role
from shared.contract import CaseDispatched, Priority, new_event
from tests.conftest import free_port, migrated_database
from tests.helpers import as_user, bearer, eventually, publish_event

ROOT = Path(__file__).resolve().parents[2]
ADMIN = as_user("admin")
GRID = "YA/YA01/YA0101/YA0101-03"


# --- notify as a process -----------------------------------------------------------------------


@dataclass
class NotifyProcess:
    proc: subprocess.Popen
    url: str
    log: Path


def start_notify(dsn: str, bootstrap: str, log: Path) -> NotifyProcess:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "test",
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_IDEMPOTENT_PRODUCER": "false",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "LOG_JSON": "false",
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.5",
        "STREAM_HEARTBEAT_SECONDS": "1",
        # a long fallback poll: a live message must come through the database's notification
        "STREAM_POLL_SECONDS": "30",
    }
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.notify", "serve"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    return NotifyProcess(proc, f"http://127.0.0.1:{port}", log)


async def until_ready(p: NotifyProcess) -> None:
    async def ready():
        if p.proc.poll() is not None:
            raise AssertionError(f"notify exited: {p.log.read_text()[-3000:]}")
        try:
            async with httpx.AsyncClient() as c:
                return (await c.get(p.url + "/readyz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(ready, timeout=60, message="notify is ready")


def stop(p: NotifyProcess) -> None:
    if p.proc.poll() is None:
        p.proc.terminate()
        try:
            p.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.proc.kill()


@pytest.fixture(scope="module")
async def dsn(pg_server) -> str:
    return await migrated_database(pg_server, "notify")


@pytest.fixture(scope="module")
async def notify(dsn, kafka_server, tmp_path_factory):
    p = start_notify(dsn, kafka_server.bootstrap, tmp_path_factory.mktemp("notify") / "log")
    try:
        await until_ready(p)
        async with httpx.AsyncClient(base_url=p.url, timeout=10) as client:
            yield client, kafka_server.bootstrap, p
    finally:
        stop(p)


# --- reading a stream as EventSource does -------------------------------------------------------


@dataclass
class Sse:
    event: str = "message"
    id: str | None = None
    data: str = ""
    retry: int | None = None

    @property
    def json(self) -> dict:
        return json.loads(self.data)


@dataclass
class Reader:
    """What arrived on one stream: events and heartbeat comments, in order."""

    response: httpx.Response
    events: list[Sse] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: bool = False
    _lines: AsyncIterator[str] | None = None

    async def _next(self) -> bool:
        """Read one event or comment; False at the end of the stream."""
        assert self._lines is not None
        current, data = Sse(), []
        async for line in self._lines:
            if line == "":
                if data or current.id is not None:
                    current.data = "\n".join(data)
                    self.events.append(current)
                    return True
                continue
            if line.startswith(":"):
                self.comments.append(line)
                return True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value
            elif name == "retry":
                current.retry = int(value)
        self.ended = True
        return False

    async def until(self, predicate, timeout: float = 45.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                if not await self._next():
                    assert predicate(self), "the stream ended first"
                    return

    async def events_of(self, kind: str, n: int, timeout: float = 45.0) -> list[Sse]:
        await self.until(lambda r: len([e for e in r.events if e.event == kind]) >= n, timeout)
        return [e for e in self.events if e.event == kind]


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, recipient_id: str, who: dict[str, str], **kw
) -> AsyncIterator[Reader]:
    async with client.stream(
        "GET",
        f"/recipients/{recipient_id}/stream",
        headers={**who, **kw.pop("headers", {})},
        timeout=httpx.Timeout(10, read=60),
        **kw,
    ) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        reader = Reader(resp)
        reader._lines = resp.aiter_lines()
        yield reader


# --- helpers ---------------------------------------------------------------------------------------


def uid() -> str:
    return uuid.uuid4().hex[:8]


async def department_desk(client: httpx.AsyncClient) -> tuple[str, str]:
    dept = f"cg-{uid()}"
    resp = await client.post(
        "/recipients",
        json={
            "id": f"duty-{dept}",
            "name": "城管值班室",
            "kind": "department",
            "department_id": dept,
        },
        headers=ADMIN,
    )
    assert resp.status_code == 201, resp.text
    return f"duty-{dept}", dept


def dispatched(dept: str, case_no: str):
    return new_event(
        CaseDispatched(
            case_no=case_no,
            area_path=GRID,
            category="E0101",
            priority=Priority.NORMAL,
            assignment_id=uuid.uuid4(),
            department_id=dept,
            department_name="榆安区城市管理局",
            role="lead",
            rule_id=None,
            reason="rule",
            description="楼道堆放杂物",
        ),
        case_id=uuid.uuid4(),
        producer="dispatch",
    )


def staff(dept: str) -> dict[str, str]:
    return bearer(Role.DEPARTMENT, department_id=dept)


# --- tests -------------------------------------------------------------------------------------------


async def test_new_messages_arrive_live_in_order_and_a_reconnect_misses_nothing(notify):
    client, bootstrap, _ = notify
    rid, dept = await department_desk(client)
    async with open_stream(client, rid, staff(dept)) as stream:
        [ready] = await stream.events_of("ready", 1)
        assert ready.id == "0" and ready.json == {"recipient_id": rid, "after": 0}
        assert ready.retry == 2000  # the browser's reconnect delay
        first = [dispatched(dept, f"A{i}-{rid}") for i in range(3)]
        for e in first:
            await publish_event(bootstrap, e)
        got = await stream.events_of("message", 3)
        # numbered in the order they committed (different cases: different partitions, so
        # the broker may hand them over in any order), each once
        assert [e.id for e in got] == ["1", "2", "3"]
        assert sorted(e.json["event_id"] for e in got) == sorted(str(e.event_id) for e in first)
        [a0] = [e for e in got if e.json["event_id"] == str(first[0].event_id)]
        m = a0.json
        assert m["seq"] == int(a0.id) and m["type"] == "case.dispatched" and not m["read_at"]
        assert m["title"] == f"【派单】案件A0-{rid}已派至榆安区城市管理局"
        assert m["body_en"].startswith(f"[Dispatched] Case A0-{rid}")
        # idle: heartbeats (every second here) keep it open
        await stream.until(lambda r: len(r.comments) >= 2, timeout=10)
        assert all(c.startswith(": ping") for c in stream.comments)

    # Disconnected while two more arrive: the inbox has them …
    more = [dispatched(dept, f"B{i}-{rid}") for i in range(2)]
    for e in more:
        await publish_event(bootstrap, e)

    async def inbox_full():
        rows = (await client.get(f"/recipients/{rid}/inbox", headers=staff(dept))).json()
        return rows if len(rows) == 5 else None

    inbox = await eventually(inbox_full, message="the inbox holds all five")
    assert [m["seq"] for m in inbox] == [5, 4, 3, 2, 1]  # newest first
    # … and the browser, reconnecting with the last id it saw, gets exactly those two.
    async with open_stream(client, rid, staff(dept), headers={"Last-Event-ID": "3"}) as stream:
        got = await stream.events_of("message", 2)
        assert [e.id for e in got] == ["4", "5"]
        assert sorted(e.json["event_id"] for e in got) == sorted(str(e.event_id) for e in more)
        assert stream.events[0].event == "ready" and stream.events[0].id == "3"
    # The query parameter does the same (read the inbox, stream after its highest seq);
    # follow=false ends once caught up.
    async with open_stream(
        client, rid, staff(dept), params={"last_event_id": "4", "follow": "false"}
    ) as stream:
        await stream.until(lambda r: r.ended)
        assert [(e.event, e.id) for e in stream.events] == [("ready", "4"), ("message", "5")]
    # Without an id the stream starts after the latest message: nothing old is repeated.
    async with open_stream(client, rid, staff(dept), params={"follow": "false"}) as stream:
        await stream.until(lambda r: r.ended)
        assert [(e.event, e.id) for e in stream.events] == [("ready", "5")]
    # An id this stream never sent (a browser that followed another database) would skip
    # every message until the numbers pass it: the stream starts from the beginning instead.
    async with open_stream(
        client, rid, staff(dept), headers={"Last-Event-ID": "9000"}, params={"follow": "false"}
    ) as stream:
        await stream.until(lambda r: r.ended)
        assert [(e.event, e.id) for e in stream.events] == [
            ("ready", "0"),
            *(("message", str(n)) for n in range(1, 6)),
        ]


async def test_stream_numbers_follow_commit_order(notify, dsn):
    """A message's number is taken under a lock its transaction holds until it ends: a second
    writer for the same recipient waits; if the first rolls back, its number is reused. So a
    reader that has seen number n has seen every number below n that will ever exist."""
    client, _, _ = notify
    rid, dept = await department_desk(client)
    insert = (
        "INSERT INTO inbox_messages (recipient_id, event_id, case_id, type, title, body,"
        " title_en, body_en, link) VALUES ($1, $2, $3, 'case.dispatched', $4, '正文',"
        " 'title', 'body', '/cases/x') RETURNING id, seq"
    )
    first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        async with open_stream(client, rid, staff(dept)) as stream:
            await stream.events_of("ready", 1)
            tx1 = first.transaction()
            await tx1.start()
            row1 = await first.fetchrow(insert, rid, uuid.uuid4(), uuid.uuid4(), "一")
            later = asyncio.create_task(
                second.fetchrow(insert, rid, uuid.uuid4(), uuid.uuid4(), "二")
            )
            await asyncio.sleep(0.5)
            assert not later.done()  # the second writer waits for the first to end
            await tx1.rollback()  # … which gives its number up
            row2 = await asyncio.wait_for(later, 10)
            assert row2["seq"] == row1["seq"] == 1 and row2["id"] > row1["id"]
            [msg] = await stream.events_of("message", 1)
            assert (msg.id, msg.json["title"]) == ("1", "二")

            # committed in turn: numbers in commit order, each sent once
            tx1 = first.transaction()
            await tx1.start()
            row3 = await first.fetchrow(insert, rid, uuid.uuid4(), uuid.uuid4(), "三")
            later = asyncio.create_task(
                second.fetchrow(insert, rid, uuid.uuid4(), uuid.uuid4(), "四")
            )
            await asyncio.sleep(0.3)
            assert not later.done()
            await tx1.commit()
            row4 = await asyncio.wait_for(later, 10)
            assert (row3["seq"], row4["seq"]) == (2, 3)
            got = await stream.events_of("message", 3)
            assert [(e.id, e.json["title"]) for e in got] == [("1", "二"), ("2", "三"), ("3", "四")]
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    ("who", "params", "headers", "status", "code"),
    [
        ("other-department", {}, {}, 403, "not_your_assignment"),
        ("admin", {}, {}, 403, "role_not_allowed"),
        ("nobody", {}, {}, 401, "unauthenticated"),
        ("staff", {}, {"Last-Event-ID": "abc"}, 422, "invalid_last_event_id"),
        ("staff", {"last_event_id": "-1"}, {}, 422, "invalid_last_event_id"),
        ("staff", {"last_event_id": "²"}, {}, 422, "invalid_last_event_id"),
        ("staff", {"last_event_id": "9" * 20}, {}, 422, "invalid_last_event_id"),
        ("staff-unknown", {}, {}, 404, "recipient_not_found"),
    ],
)
async def test_stream_is_refused_before_it_opens(notify, who, params, headers, status, code):
    client, _, _ = notify
    rid, dept = await department_desk(client)
    auth = {
        "other-department": staff(f"xf-{uid()}"),
        "admin": ADMIN,
        "nobody": {},
        "staff": staff(dept),
        "staff-unknown": staff(dept),
    }[who]
    target = "nobody-here" if who == "staff-unknown" else rid
    resp = await client.get(
        f"/recipients/{target}/stream",
        params=params,
        headers={**auth, **headers, "Accept-Language": "en"},
    )
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]


async def test_a_supervisor_desk_streams_to_those_overseeing_its_area(notify):
    client, _, _ = notify
    rid = f"sup-{uid()}"
    resp = await client.post(
        "/recipients",
        json={"id": rid, "name": "迎泽街道督办", "kind": "supervisor", "area_path": "YA/YA01"},
        headers=ADMIN,
    )
    assert resp.status_code == 201
    # the street office it oversees (迎泽街道) may not: 403 supervisor_inbox
    for who, status in (
        (bearer(Role.SUPERVISOR, "YA/YA01"), 200),
        (bearer(Role.DISTRICT, "YA"), 200),
        (as_user("yingze"), 403),
        (bearer(Role.SUPERVISOR, "YA/YA03"), 403),
    ):
        for path in ("stream", "inbox"):
            resp = await client.get(
                f"/recipients/{rid}/{path}",
                params={"follow": "false"} if path == "stream" else {},
                headers=who,
            )
            assert resp.status_code == status, resp.text


async def test_a_stream_ends_when_its_token_expires(notify):
    """Authorised when it opens, a stream must not outlive its token (a revoked or disabled
    user would keep listening): it ends cleanly, the browser reconnects with a fresh one."""
    client, _, _ = notify
    rid, dept = await department_desk(client)
    started = time.monotonic()
    async with open_stream(
        client, rid, bearer(Role.DEPARTMENT, department_id=dept, ttl=3)
    ) as stream:
        await stream.events_of("ready", 1)
        await stream.until(lambda r: r.ended, timeout=15)  # raises if still open
    assert 1.5 < time.monotonic() - started < 12


async def test_shutdown_ends_open_streams_cleanly(notify):
    """SIGTERM: the open stream ends (a clean end of the response, no broken transfer) and
    the process exits at once instead of waiting for the browser to hang up. (The module's
    process is the one stopped: one notify at a time in the broker's consumer group.)"""
    client, _, p = notify
    rid, dept = await department_desk(client)
    async with open_stream(client, rid, staff(dept)) as stream:
        await stream.events_of("ready", 1)
        p.proc.send_signal(signal.SIGTERM)
        await stream.until(lambda r: r.ended, timeout=15)  # raises if cut off
    exit_code = await asyncio.to_thread(p.proc.wait, 20)
    # uvicorn re-raises the signal it caught once it has shut down
    assert exit_code in (0, -signal.SIGTERM), p.log.read_text()[-3000:]
    log = p.log.read_text()
    assert "Application shutdown complete" in log and "service_stopped" in log
    assert "without completing response" not in log
