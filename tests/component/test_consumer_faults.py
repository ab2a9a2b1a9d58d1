"""Fault injection on the consumer side, on the real PostgreSQL and the real broker: events
this build does not know are parked and replayed later, a dead-letter copy the broker
refuses is parked instead of blocking the partition, deterministic errors are dead-lettered
after bounded attempts, and a database restart is waited out without loss."""

from __future__ import annotations

import asyncio
import errno
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import asyncpg
import pytest
from aiokafka.errors import UnsupportedVersionError
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from shared import db, dead_letter, migrations, parking
from shared.broker import EventConsumer, Route, on, start_broker
from shared.contract import EVENT_TYPES, CaseClosed, EventPayload, Priority, Topics, new_event
from shared.faults import RetryPolicy
from tests.helpers import eventually, publish_raw, read_topic

FAST = RetryPolicy(
    max_attempts=3,
    initial_backoff_seconds=0.05,
    max_backoff_seconds=0.5,
    transient_retry_seconds=120,
    dead_letter_publish_attempts=3,
)


def closed(note: str, case_id: uuid.UUID | None = None) -> bytes:
    return new_event(
        CaseClosed(
            case_no="YA-1",
            area_path="YA/YA01",
            category="E0101",
            priority=Priority.NORMAL,
            note=note,
        ),
        case_id=case_id or uuid.uuid4(),
        producer="test",
    ).to_bytes()


def variant(note: str, *, type: str, version: int, **extra: Any) -> bytes:
    """An event as a newer producer would send it: a type or version this build lacks."""
    data = json.loads(closed(note))
    data.update(type=type, version=version)
    data["payload"].update(extra)
    return json.dumps(data).encode()


class CaseClosedV2(CaseClosed):
    VERSION: ClassVar[int] = 2
    survey: str


class CaseTeleported(EventPayload):
    TYPE: ClassVar[str] = "case.teleported"
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = Topics.INTAKE
    note: str


class Setup:
    def __init__(self, pool: asyncpg.Pool, bootstrap: str) -> None:
        self.pool = pool
        self.bootstrap = bootstrap
        self.group = f"test-{uuid.uuid4().hex[:8]}"
        self.topic = f"test.faults.{self.group}"
        self.calls: list[str] = []
        self.failures: dict[str, BaseException] = {}
        self.routes: list[Route] = [on(CaseClosed, self.handler)]
        self.brokers: list[KafkaBroker] = []

    async def handler(self, conn: asyncpg.Connection, event) -> None:
        note = event.payload.note
        self.calls.append(note)
        if note in self.failures:
            raise self.failures[note]
        await conn.execute("INSERT INTO effects VALUES ($1, $2)", event.event_id, note)

    def build(self, broker: KafkaBroker, policy: RetryPolicy = FAST) -> EventConsumer:
        return EventConsumer(
            service="test",
            name=self.group,
            pool=lambda: self.pool,
            broker=broker,
            routes=self.routes,
            policy=policy,
        )

    async def consumer(self, policy: RetryPolicy = FAST, **broker_options: Any) -> EventConsumer:
        broker = KafkaBroker(self.bootstrap, **broker_options)
        consumer = self.build(broker, policy)
        consumer.subscribe(self.topic, description="test")
        await start_broker(broker, 5)
        self.brokers.append(broker)
        return consumer

    async def publish(self, *values: bytes) -> None:
        for value in values:  # one key: one partition, in this order
            await publish_raw(self.bootstrap, self.topic, value, b"k")

    async def notes(self) -> list[str]:
        return sorted(r["note"] for r in await self.pool.fetch("SELECT note FROM effects"))

    async def handled(self, note: str, timeout: float = 60) -> list[str]:
        async def probe() -> list[str] | None:
            notes = await self.notes()
            return notes if note in notes else None

        return await eventually(probe, timeout=timeout, message=f"{note!r} handled")

    async def dead_letters(self) -> list[Any]:
        return [
            r
            for r in await read_topic(self.bootstrap, Topics.DEAD_LETTER)
            if dict(r.headers).get("dlt-consumer-group") == f"whistle-test-{self.group}".encode()
        ]

    async def parked(self) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT * FROM parked_events WHERE consumer = $1 ORDER BY id", self.group
        )


@pytest.fixture
async def setup(empty_db, pool_factory, kafka_server):
    conn = await db.connect_once(empty_db)
    await migrations.apply(conn, [("shared", migrations.SHARED_MIGRATIONS)])
    await conn.execute("CREATE TABLE effects (event_id uuid, note text)")
    await conn.close()
    s = Setup(await pool_factory(empty_db), kafka_server.bootstrap)
    yield s
    for broker in s.brokers:
        await broker.stop()


def parked_metric(group: str, reason: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "whistle_events_parked_total", {"service": "test", "consumer": group, "reason": reason}
        )
        or 0.0
    )


async def test_unknown_types_and_versions_are_parked_visibly_and_replayed_later(setup):
    consumer = await setup.consumer()
    v2 = variant("v2", type=CaseClosed.TYPE, version=2, survey="yes")
    teleported = variant("teleported", type="case.teleported", version=1)
    with capture_logs() as logs:
        await setup.publish(closed("first"), v2, teleported, closed("last"))
        assert await setup.handled("last") == ["first", "last"]

    rows = await setup.parked()
    assert [(r["type"], r["version"], r["reason"]) for r in rows] == [
        ("case.closed", 2, "unknown_version"),
        ("case.teleported", 1, "unknown_type"),
    ]
    assert [bytes(r["value"]) for r in rows] == [v2, teleported]  # the raw message, whole
    assert [r["offset"] for r in rows] == sorted(r["offset"] for r in rows)
    assert all(
        r["topic"] == setup.topic
        and bytes(r["key"]) == b"k"
        and r["parked_at"]
        and r["replayed_at"] is None
        for r in rows
    )
    assert parked_metric(setup.group, "unknown_version") == 1
    assert parked_metric(setup.group, "unknown_type") == 1
    warnings = [e for e in logs if e["event"] == "event_parked"]
    assert [(w["log_level"], w["reason"]) for w in warnings] == [
        ("warning", "unknown_version"),
        ("warning", "unknown_type"),
    ]
    assert await setup.dead_letters() == []

    # The same message parked again (a redelivery) is still one row.
    again = parking.Received(setup.topic, rows[0]["partition"], rows[0]["offset"], b"k", v2)
    assert (
        await parking.park(setup.pool, setup.group, again, reason="unknown_version")
        == rows[0]["id"]
    )
    assert len(await setup.parked()) == 2

    # Before the build knows them, a replay leaves them parked.
    assert await consumer.replay_parked() == {"parked": 2}
    assert len(await parking.pending(setup.pool, setup.group)) == 2

    # A newer build knows both and handles them: the replay re-feeds them, once.
    EVENT_TYPES[(CaseClosed.TYPE, 2)] = CaseClosedV2
    EVENT_TYPES[(CaseTeleported.TYPE, 1)] = CaseTeleported
    try:
        # ... and routes them (a new version is a new class: it needs its own route)
        setup.routes += [on(CaseClosedV2, setup.handler), on(CaseTeleported, setup.handler)]
        newer = setup.build(KafkaBroker(setup.bootstrap))
        assert await newer.replay_parked(dry_run=True) == {"would_replay": 2}
        assert await newer.replay_parked() == {"handled": 2}
        assert await setup.notes() == ["first", "last", "teleported", "v2"]
        assert await newer.replay_parked() == {}
        assert await newer.replay_parked(ids=[rows[0]["id"]]) == {}  # replayed already
    finally:
        del EVENT_TYPES[(CaseClosed.TYPE, 2)]
        del EVENT_TYPES[(CaseTeleported.TYPE, 1)]
    outcomes = [(r["replay_outcome"], r["replayed_at"] is not None) for r in await setup.parked()]
    assert outcomes == [("handled", True), ("handled", True)]


async def test_an_oversize_dead_letter_copy_is_truncated_and_parked_whole(setup):
    await setup.consumer()
    # Near the producer's 1 MiB limit: accepted on its way in, but its dead-letter copy
    # with the error headers is over the limit (the old consumer looped on it forever).
    huge = closed("huge" + "x" * 1_045_000)
    assert 1_040_000 < len(huge) < 1_047_000
    setup.failures["huge" + "x" * 1_045_000] = RuntimeError("cannot handle " + "y" * 3000)
    started = time.monotonic()
    await setup.publish(huge, closed("last"))
    assert await setup.handled("last") == ["last"]
    print(f"oversize: partition moved on after {time.monotonic() - started:.1f} s")

    [row] = await setup.parked()
    assert row["reason"] == "dead_letter_oversize" and bytes(row["value"]) == huge
    assert "cannot handle" in row["error"]
    [dead] = await setup.dead_letters()
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlt-truncated"] == "true" and headers["dlt-parked-id"] == str(row["id"])
    assert headers["dlt-original-bytes"] == str(len(huge))
    assert len(dead.value) < FAST.dead_letter_max_bytes and huge.startswith(dead.value)
    assert parked_metric(setup.group, "dead_letter_oversize") == 1


async def test_a_dead_letter_the_broker_refuses_is_parked_and_the_partition_moves_on(setup):
    # This consumer's producer may send 20 kB at most: every dead-letter copy of the
    # 30 kB message is refused, whatever the retries.
    await setup.consumer(max_request_size=20_000)
    big = "big" + "x" * 30_000
    setup.failures[big] = RuntimeError("bug")
    await setup.publish(closed(big), closed("last"))
    assert await setup.handled("last") == ["last"]
    [row] = await setup.parked()
    assert (
        row["reason"] == "dead_letter_failed" and json.loads(row["value"])["payload"]["note"] == big
    )
    assert "RuntimeError: bug" in row["error"] and "MessageSizeTooLargeError" in row["error"]
    assert setup.calls.count(big) == FAST.max_attempts
    assert await setup.dead_letters() == []
    assert parked_metric(setup.group, "dead_letter_failed") == 1


async def test_deterministic_errors_are_dead_lettered_after_bounded_attempts(setup):
    # Each of these was taken for an infrastructure fault and retried forever.
    setup.failures.update(
        {
            "interface": asyncpg.exceptions.InterfaceError(
                "cannot perform operation: another operation is in progress"
            ),
            "no-file": FileNotFoundError(errno.ENOENT, "no such template"),
            "bare-os": OSError(errno.EIO, "input/output error"),
            "timeout": TimeoutError("query took too long"),
            "kafka": UnsupportedVersionError("the broker does not speak this"),
        }
    )
    await setup.consumer()
    await setup.publish(*(closed(n) for n in setup.failures), closed("last"))
    assert await setup.handled("last", timeout=90) == ["last"]
    for note in setup.failures:
        assert setup.calls.count(note) == FAST.max_attempts, note
    dead = await setup.dead_letters()
    assert sorted(dict(r.headers)["dlt-error-type"].decode() for r in dead) == sorted(
        [
            "InterfaceError",
            "FileNotFoundError",
            "OSError",
            "TimeoutError",
            "UnsupportedVersionError",
        ]
    )
    assert await setup.parked() == []
    # Each copy is kept in the consumer's database too (a broker loss takes the topic).
    kept = await dead_letter.copies_since(setup.pool, datetime.now(UTC) - timedelta(hours=1))
    assert sorted((k, v, h["dlt-error-type"]) for k, v, h in kept) == sorted(
        (r.key, r.value, dict(r.headers)["dlt-error-type"].decode()) for r in dead
    )


async def test_a_database_restart_is_waited_out_without_loss(setup, pg_server):
    setup.failures["deadlock"] = asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
    await setup.consumer()
    await setup.publish(closed("before"))
    await setup.handled("before")
    # A transient error (a deadlock) is retried past the deterministic bound...
    setup.calls.clear()
    await setup.publish(closed("deadlock"))
    await eventually(
        lambda: asyncio.sleep(0, setup.calls.count("deadlock") > FAST.max_attempts),
        timeout=30,
        message="deadlock retried beyond max_attempts",
    )
    del setup.failures["deadlock"]
    await setup.handled("deadlock")

    with capture_logs() as logs:
        await asyncio.to_thread(pg_server.stop)
        try:
            await setup.publish(*(closed(f"during-{i}") for i in range(5)))
            await asyncio.sleep(15)  # the database stays away for a while
        finally:
            await asyncio.to_thread(pg_server.start)
        back = time.monotonic()
        notes = await eventually(
            lambda: _all_handled(setup, 5), timeout=60, message="events handled after restart"
        )
    waited = time.monotonic() - back
    print(f"database restart: all handled {waited:.1f} s after it was back")
    assert notes.count("before") == 1 and notes.count("deadlock") == 1
    assert sorted(n for n in notes if n.startswith("during")) == [f"during-{i}" for i in range(5)]
    # Capped backoff: the consumer tried again soon after the database came back (the
    # old backoff, doubling up to 30 s, slept some 9 s more after a 15 s outage).
    assert waited < 5
    retries = [e for e in logs if e["event"] == "event_handling_retry"]
    assert retries and all(e["transient"] for e in retries)
    assert (
        max(e["wait_seconds"] for e in retries)
        <= FAST.max_backoff_seconds + FAST.initial_backoff_seconds
    )
    assert await setup.dead_letters() == [] and await setup.parked() == []


async def _all_handled(setup: Setup, count: int) -> list[str] | None:
    try:
        notes = await setup.notes()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    return notes if sum(n.startswith("during") for n in notes) == count else None
