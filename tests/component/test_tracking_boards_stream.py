"""The boards' live stream on real PostgreSQL: first the feed behind it (nothing skipped when
commits come out of order, workers stopped, old changes forgotten), then the service on the
real broker, served by uvicorn on a loopback port so the Server-Sent Events stream can be
followed live, resumed and shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.tracking import handlers
from services.tracking.repository.boards import BoardFilter
from services.tracking.stream import BoardStreams
from shared.auth import Role
from shared.contract import (
    CaseProgressed,
    CaseResolved,
    CaseSignedFor,
)
from tests.component import tracking_fixtures
from tests.component.tracking_fixtures import (
    COMMAND,
    LIFT,
    MON,
    at,
    dispatched,
    drain,
    record,
    record_now,
    step,
)
from tests.helpers import as_user, bearer, eventually

pool = tracking_fixtures.pool  # a migrated, seeded tracking database per test
service = tracking_fixtures.service  # tracking served on the broker, one for the module

# --- the feed behind the stream: nothing skipped when commits come out of order -----------------


async def test_a_change_that_commits_after_a_later_one_is_still_served_in_order(pool):
    everyone = BoardFilter(None)
    start = await handlers.feed_start(pool)
    one, one_a = uuid.uuid4(), uuid.uuid4()
    two, two_a = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(one, one_a, MON), dispatched(two, two_a, MON, LIFT, "dt"))
    got, position = await drain(pool, everyone, start)
    # in the order they committed (and, within a transaction, were written)
    assert got[:2] == [("started", "YA-A", "sign_for"), ("started", "YA-A", "resolve")]
    assert sorted(got[2:]) == [
        ("started", "YA-L", "on_site"),
        ("started", "YA-L", "resolve"),
        ("started", "YA-L", "sign_for"),
    ]

    # T1 takes its sequence number first but commits last
    slow = await pool.acquire()
    tx = slow.transaction()
    await tx.start()
    await slow.execute(
        "UPDATE clocks SET due_at = due_at + interval '1 hour'"
        " WHERE assignment_id = $1 AND clock = 'resolve'",
        one_a,
    )
    await record(pool, step(CaseSignedFor, two, two_a, at(0, 9, 5), LIFT, "dt"))
    # the later change is committed, but is held back while T1 may still commit before it
    held, still = await drain(pool, everyone, position)
    assert held == [] and still == position
    await tx.commit()
    await pool.release(slow)
    got, position = await drain(pool, everyone, position)
    assert got == [("moved", "YA-A", "resolve"), ("stopped", "YA-L", "sign_for")]

    # a rolled-back change never appears
    conn = await pool.acquire()
    tx = conn.transaction()
    await tx.start()
    await conn.execute("UPDATE clocks SET state = 'stopped' WHERE assignment_id = $1", one_a)
    await tx.rollback()
    await pool.release(conn)
    await record(pool, step(CaseSignedFor, one, one_a, at(0, 9, 6)))
    got, _ = await drain(pool, everyone, position)
    assert got == [("stopped", "YA-A", "sign_for")]

    # a filter skips what it does not want, and the position still moves on past it
    lift_only = BoardFilter(("YA/YA02",))
    got, end = await drain(pool, lift_only, start)
    assert {no for _, no, _ in got} == {"YA-L"} and end > position
    everything, last = await drain(pool, everyone, start)
    assert len(everything) == 8 and last == end


@pytest.mark.parametrize("watching", [True, False], ids=["watching the tip", "polling"])
async def test_stopping_the_worker_ends_every_open_stream(pool, watching):
    """The app's lifespan stops BoardStreams: open streams end instead of hanging. Bound to
    the pool, one watch of the feed's tip wakes them; unbound, each polls."""
    streams = BoardStreams(poll_interval=0.05)
    if watching:
        streams.bind(lambda: pool)
    streams.start()
    start = await handlers.feed_start(pool)
    got: list[str] = []

    async def follow():
        async for message in streams.follow(pool, BoardFilter(None), start):
            got.append(message.event)

    readers = [asyncio.create_task(follow()) for _ in range(3)]

    async def all_open():
        return streams.open_streams == 3

    await eventually(all_open, timeout=10, interval=0.02, message="three streams open")
    await record(pool, dispatched(uuid.uuid4(), uuid.uuid4(), MON))

    async def heard():
        return got.count("started") == 6

    await eventually(heard, timeout=10, interval=0.02, message="each heard both clocks start")
    await asyncio.wait_for(streams.stop(), 5)
    await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert streams.open_streams == 0 and got.count("ready") == 3


async def test_the_feed_forgets_changes_older_than_its_retention(pool):
    start = await handlers.feed_start(pool)
    old, new = uuid.uuid4(), uuid.uuid4()
    await record(pool, dispatched(uuid.uuid4(), old, MON), dispatched(uuid.uuid4(), new, MON))
    await pool.execute(
        "UPDATE board_feed SET recorded_at = now() - interval '8 days' WHERE assignment_id = $1",
        old,
    )
    week_ago = datetime.now(UTC) - timedelta(days=7)
    assert await handlers.purge_feed(pool, week_ago, batch=1) == 2  # batch after batch
    got, _ = await drain(pool, BoardFilter(None), start)
    assert [change for change, _, _ in got] == ["started", "started"]  # the new one's
    assert await handlers.purge_feed(pool, week_ago) == 0


# --- the live stream ------------------------------------------------------------------------------


async def _read(resp: httpx.Response, events: list[dict], comments: list[str]) -> None:
    event: dict = {}
    async for line in resp.aiter_lines():
        if not line:
            if event:
                events.append(event)
            event = {}
        elif line.startswith(":"):
            comments.append(line)
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[name] = json.loads(value) if name == "data" else value


@asynccontextmanager
async def listening(client, headers=COMMAND, last_event_id=None, **params):
    """Follow the stream in the background: (events, heartbeat comments, reader task)."""
    events: list[dict] = []
    comments: list[str] = []
    if last_event_id:
        headers = {**headers, "Last-Event-ID": last_event_id}
    async with client.stream(
        "GET",
        "/boards/stream",
        params=params,
        headers=headers,
        timeout=httpx.Timeout(30, read=None),
    ) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(_read(resp, events, comments))
        try:
            yield events, comments, reader
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def arrived(events, n, message):
    async def probe():
        return len(events) >= n

    await eventually(probe, timeout=20, interval=0.05, message=message)


def changes(events):
    return [(e["event"], e["data"]["clock"]) for e in events if e["event"] != "ready"]


async def test_the_stream_resumes_after_last_event_id_and_misses_nothing(service):
    client, pool = service.client, service.pool
    department = f"sse-{uuid.uuid4().hex[:6]}"
    case, assignment = uuid.uuid4(), uuid.uuid4()
    facts = {**LIFT, "case_no": "YA-S"}
    now = datetime.now(UTC)
    async with listening(client, department_id=department) as (events, comments, _):
        await arrived(events, 1, "ready")
        assert events[0]["event"] == "ready" and events[0]["id"] == events[0]["data"]["position"]
        await record_now(service, dispatched(case, assignment, now, facts, department))
        await client.post(
            f"/cases/{case}/urge", json={"note": "请尽快到场"}, headers=as_user("supervisor")
        )
        await arrived(events, 5, "three clocks started and an urging")
        assert sorted(changes(events)[:3]) == [
            ("started", "on_site"),
            ("started", "resolve"),
            ("started", "sign_for"),
        ]
        assert changes(events)[3] == ("urged", None)
        urging = events[4]["data"]
        assert (urging["count"], urging["note"], urging["case_no"]) == (1, "请尽快到场", "YA-S")
        assert urging["department_id"] == department and urging["urge_count"] == 1

        async def heartbeat():
            return comments

        await eventually(heartbeat, timeout=5, message="a heartbeat comment")
        last_seen = events[-1]["id"]

    # while nobody listens: the sign-for stops, another urging, the on-site clock stops
    await record_now(
        service,
        step(CaseSignedFor, case, assignment, now + timedelta(minutes=1), facts, department),
    )
    await client.post(
        f"/cases/{case}/urge", json={"note": "到场了吗"}, headers=as_user("supervisor")
    )
    await record_now(
        service,
        step(
            CaseProgressed,
            case,
            assignment,
            now + timedelta(minutes=2),
            facts,
            department,
            note="已到现场",
        ),
    )

    async with listening(client, last_event_id=last_seen, department_id=department) as (
        resumed,
        _,
        _,
    ):
        await arrived(resumed, 4, "the changes missed while away")
        assert resumed[0]["event"] == "ready" and resumed[0]["id"] == last_seen
        assert changes(resumed) == [
            ("stopped", "sign_for"),
            ("urged", None),
            ("stopped", "on_site"),
        ]
        assert resumed[2]["data"]["count"] == 2

        # a change that took its sequence number first but commits last is not passed over
        other, other_a = uuid.uuid4(), uuid.uuid4()
        await record_now(
            service, dispatched(other, other_a, now, {**facts, "case_no": "YA-T"}, department)
        )
        await arrived(resumed, 7, "the other case's clocks started")
        slow = await pool.acquire()
        tx = slow.transaction()
        await tx.start()
        await slow.execute(
            "UPDATE clocks SET due_at = due_at + interval '1 hour'"
            " WHERE assignment_id = $1 AND clock = 'resolve'",
            other_a,
        )
        await record_now(
            service,
            step(
                CaseResolved,
                case,
                assignment,
                now + timedelta(minutes=3),
                facts,
                department,
                result="已修复",
            ),
        )
        await asyncio.sleep(0.5)  # the stream polls every 0.1 s: the resolution is held back
        assert len(resumed) == 7
        await tx.commit()
        await pool.release(slow)
        await arrived(resumed, 9, "both, in commit order")
        assert [(e["event"], e["data"]["case_no"], e["data"]["clock"]) for e in resumed[7:]] == [
            ("moved", "YA-T", "resolve"),
            ("stopped", "YA-S", "resolve"),
        ]
        ids = [e["id"] for e in resumed[1:]]

    # nothing missed, nothing twice: every feed row of both assignments was sent exactly once
    rows = await pool.fetch(
        "SELECT txid::text || '-' || seq AS id FROM board_feed"
        " WHERE assignment_id = ANY($1::uuid[]) ORDER BY txid, seq",
        [assignment, other_a],
    )
    sent = [e["id"] for e in events[1:]] + ids
    assert sent == [r["id"] for r in rows]
    # a replay from the start without following ends once caught up, with the same ids
    replay = await client.get(
        "/boards/stream",
        headers=COMMAND,
        params={"department_id": department, "last_event_id": events[0]["id"], "follow": "false"},
    )
    replayed: list[dict] = []
    await _read_text(replay.text, replayed)
    assert [e["id"] for e in replayed[1:]] == sent


async def _read_text(text: str, events: list[dict]) -> None:
    class Lines:
        async def aiter_lines(self):
            for line in text.splitlines():
                yield line
            yield ""

    await _read(Lines(), events, [])  # type: ignore[arg-type]


async def test_the_stream_ends_when_its_token_expires(service):
    """A stream is authorised when it opens: it must not outlive the token (a revoked user
    would keep listening). It ends cleanly; the browser reconnects with a fresh token."""
    app = service.server.config.app
    started = time.monotonic()
    async with listening(service.client, headers=bearer(Role.DISTRICT, "YA", ttl=3)) as (
        events,
        _,
        reader,
    ):
        await arrived(events, 1, "ready")
        await asyncio.wait_for(reader, 15)  # ended by the server, heartbeats notwithstanding
    assert 1.5 < time.monotonic() - started < 12
    assert app.state.board_streams.open_streams == 0


async def test_shutting_the_server_down_ends_its_open_streams_cleanly(service):
    """Last in the module: it stops the module's server. (A second replica would do, but it
    would join the consumer group, and leaving the group half-rebalanced slows the next
    module's start on the shared broker.)"""
    app = service.server.config.app
    async with listening(service.client) as (events, _, reader):
        await arrived(events, 1, "ready")
        assert app.state.board_streams.open_streams == 1
        service.server.should_exit = True  # what SIGTERM does
        await asyncio.wait_for(reader, 10)  # the stream ended, not cut off at the timeout
    await asyncio.wait_for(asyncio.shield(service.serving), 30)  # the server stopped too
    assert app.state.board_streams.open_streams == 0
