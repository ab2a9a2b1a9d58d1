"""Outbox relay under faults, on real PostgreSQL and the real broker (issue 13, points 4-5):
poisoned rows are parked while the rest flows, parked rows can be re-driven, no transaction
is open while the broker hangs, a relay that dies mid-publish is taken over — at once when
its process is gone, after its lease when its session lingers — at-least-once, nothing lost — and a row failing only with timeouts is never parked.
The relay's knobs come from the OUTBOX_* settings."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import uuid
from datetime import timedelta

import asyncpg
import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from shared import metrics, outbox
from shared.contract import CaseClosed, Priority, new_event
from shared.outbox import OutboxRelay
from shared.service import outbox_relay
from shared.settings import BaseServiceSettings
from tests.helpers import eventually, read_topic

# aiokafka refuses a record above its 1 MiB max_request_size (Tansu auto-creates topics, so
# an unknown topic is no poison here): MessageSizeTooLargeError, which no retry cures.
OVERSIZE = 1_100_000


def closed_event(case_id: uuid.UUID, note: str):
    return new_event(
        CaseClosed(
            case_no="YA-1",
            area_path="YA/YA01",
            category="E0101",
            priority=Priority.NORMAL,
            note=note,
        ),
        case_id=case_id,
        producer="test",
    )


@pytest.fixture
async def outbox_db(shared_migrated_db, pool_factory):
    return shared_migrated_db, await pool_factory(shared_migrated_db)


async def write(pool, topic: str, events) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, *events)
        await conn.execute("UPDATE outbox SET topic = $1", topic)


def broker_publisher(broker: KafkaBroker):
    async def publish(topic, key, value, headers):
        await broker.publish(value, topic, key=key, headers=headers)

    return publish


async def test_poisoned_rows_are_parked_the_rest_flows_and_a_redrive_publishes(
    outbox_db, kafka_server
):
    dsn, pool = outbox_db
    topic = f"test.outbox.{uuid.uuid4().hex[:8]}"
    poisoned_cases = [uuid.uuid4() for _ in range(10)]
    good_cases = [uuid.uuid4() for _ in range(20)]
    # A batch-size of poisoned rows at the head (the old relay stopped here forever), two
    # later events of the first poisoned case, then 200 good rows.
    await write(pool, topic, [closed_event(c, "x" * OVERSIZE) for c in poisoned_cases])
    await write(pool, topic, [closed_event(poisoned_cases[0], f"after-{i}") for i in range(2)])
    await write(pool, topic, [closed_event(c, str(i)) for i in range(10) for c in good_cases])

    broker = KafkaBroker(kafka_server.bootstrap)
    await broker.start()
    try:
        relay = OutboxRelay(
            pool,
            dsn,
            broker_publisher(broker),
            service="test-poison",
            batch_size=10,
            max_attempts=3,
            retry_base=0.05,
            retry_cap=0.2,
            publish_timeout=5,
            lease=timedelta(seconds=15),
        )
        started = time.monotonic()

        async def settled():
            await relay.publish_batch()
            return await pool.fetchval(
                "SELECT count(*) = 200 FROM outbox WHERE sent_at IS NOT NULL"
            ) and await pool.fetchval(
                "SELECT count(*) = 10 FROM outbox WHERE parked_at IS NOT NULL"
            )

        await eventually(settled, timeout=60, interval=0.05, message="good rows flowed")
        took = time.monotonic() - started
        parked = await outbox.parked(pool)
        assert {r["key"] for r in parked} == {str(c) for c in poisoned_cases}
        assert all(r["attempts"] == 3 and "MessageSizeTooLarge" in r["last_error"] for r in parked)
        # The poisoned case's later events are held behind it: neither sent nor parked.
        held = await pool.fetch(
            "SELECT payload->'payload'->>'note' AS note, parked_at, sent_at"
            " FROM outbox WHERE key = $1 ORDER BY id",
            str(poisoned_cases[0]),
        )
        assert [(h["note"][:6], h["parked_at"] is None, h["sent_at"]) for h in held][1:] == [
            ("after-", True, None),
            ("after-", True, None),
        ]
        assert await relay.publish_batch() == 0  # nothing more moves on its own
        assert await relay.backlog() == 12
        assert metrics.OUTBOX_PARKED.labels("test-poison")._value.get() == 10

        records = await read_topic(kafka_server.bootstrap, topic)
        values = [json.loads(r.value) for r in records]
        assert len(values) == 200 and len({v["event_id"] for v in values}) == 200
        for c in good_cases:
            assert [v["payload"]["note"] for v in values if v["case_id"] == str(c)] == [
                str(i) for i in range(10)
            ]
        print(f"\n200 good rows published, 10 poisoned parked after 3 attempts in {took:.1f}s")
    finally:
        await broker.stop()

    # The operator raises the producer's limit and re-drives the first poisoned row: it goes
    # out once, then the two events held behind it, in order.
    big = KafkaBroker(kafka_server.bootstrap, max_request_size=4_000_000)
    await big.start()
    try:
        relay = OutboxRelay(
            pool,
            dsn,
            broker_publisher(big),
            service="test-poison",
            retry_base=0.05,
            retry_cap=0.2,
            publish_timeout=5,
            lease=timedelta(seconds=15),
        )
        first = parked[0]["id"]
        assert await outbox.redrive(pool, [first]) == [first]
        assert await relay.publish_batch() == 3
        assert await relay.publish_batch() == 0
    finally:
        await big.stop()
    records = await read_topic(kafka_server.bootstrap, topic)
    case0 = [
        json.loads(r.value)["payload"]["note"]
        for r in records
        if json.loads(r.value)["case_id"] == str(poisoned_cases[0])
    ]
    assert [n[:6] for n in case0] == ["xxxxxx", "after-", "after-"]
    assert case0[1:] == ["after-0", "after-1"]
    assert len(await outbox.parked(pool)) == 9


async def test_no_transaction_while_the_broker_hangs_and_a_dead_relays_rows_are_taken_over(
    outbox_db,
):
    dsn, pool = outbox_db
    cases = [uuid.uuid4() for _ in range(2)]
    await write(pool, "test.hang", [closed_event(c, str(i)) for c in cases for i in range(3)])
    ids = {r["event_id"]: r["id"] for r in await pool.fetch("SELECT event_id, id FROM outbox")}

    delivered: list[dict] = []
    entered = asyncio.Event()
    never = asyncio.Event()

    async def acks_then_hangs(topic, key, value, headers):
        delivered.append(json.loads(value))  # the broker has it...
        entered.set()
        await never.wait()  # ...and the relay never hears back, then dies

    async def healthy(topic, key, value, headers):
        delivered.append(json.loads(value))

    lease = timedelta(seconds=3)
    a = OutboxRelay(pool, dsn, acks_then_hangs, service="test", lease=lease, publish_timeout=1.5)
    b = OutboxRelay(pool, dsn, healthy, service="test", lease=lease, publish_timeout=1.5)
    # A's host vanishes without closing its database session (no FIN reaches the server):
    # its liveness lingers, so only the lease frees its rows. (A relay whose session is gone
    # is taken over at once — the next test.)
    lingering = await asyncpg.connect(dsn)
    await a.hold_liveness(lingering)
    stuck = asyncio.create_task(a.publish_batch())
    await asyncio.wait_for(entered.wait(), 5)
    claimed_at = time.monotonic()
    await asyncio.sleep(0.3)
    # While A waits on the broker: no transaction of the relay is open, its rows are leased.
    open_xacts = await pool.fetch(
        "SELECT state, xact_start FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND (xact_start IS NOT NULL"
        " OR state LIKE 'idle in transaction%')"
    )
    assert open_xacts == []
    tracked = "SELECT count(*) FROM outbox WHERE claimed_by = '+' || $1::text"  # with liveness
    assert await pool.fetchval(tracked, a.relay_id) == 6
    # A dies between publish and mark (the task is cancelled before its timeout fires).
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert await b.publish_batch() == 0  # the lease still holds

    async def taken_over():
        return await b.publish_batch()

    assert await eventually(taken_over, timeout=10, interval=0.1) == 6
    waited = time.monotonic() - claimed_at
    assert waited >= lease.total_seconds() - 0.5
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    by_event: dict[str, int] = {}
    for d in delivered:
        by_event[d["event_id"]] = by_event.get(d["event_id"], 0) + 1
    # Nothing lost; the two rows A got out before dying are sent again once (at-least-once).
    assert len(by_event) == 6 and sorted(by_event.values()) == [1, 1, 1, 1, 2, 2]
    for c in cases:
        later = [d["payload"]["note"] for d in delivered[2:] if d["case_id"] == str(c)]
        assert later == ["0", "1", "2"]
    assert len(ids) == 6
    await lingering.close()
    print(f"\nrelay B took over A's 6 leased rows after {waited:.1f}s (lease 3 s)")


# A service process with a started relay whose broker takes the first record of each case
# and never answers: it dies (or freezes) between publishing and marking sent.
_VICTIM = """
import asyncio, sys
from datetime import timedelta
from shared import db
from shared.outbox import OutboxRelay

async def main(dsn):
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    async def hangs(topic, key, value, headers):
        await asyncio.Event().wait()
    relay = OutboxRelay(pool, dsn, hangs, service="victim", lease=timedelta(seconds=120))
    relay.start()
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1]))
"""


async def test_a_killed_relays_rows_are_taken_over_at_once_a_frozen_ones_only_after_its_lease(
    outbox_db,
):
    """The crash a single-replica service lives through: killed mid-publish, restarted as a
    new relay. Its successor must not wait out the dead relay's 120 s lease — a supervisor's
    overdue alert would be two minutes late — but a relay that is only frozen (alive, its
    session open) keeps its claims."""
    from tests.conftest import ROOT

    dsn, pool = outbox_db
    cases = [uuid.uuid4() for _ in range(2)]
    await write(pool, "test.killed", [closed_event(c, str(i)) for c in cases for i in range(3)])
    victim = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _VICTIM, dsn, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:

        async def claimed() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE claimed_by LIKE '+victim-%'"  # with liveness
            )
            return n == 6

        await eventually(claimed, timeout=30, message="the victim relay claimed the rows")
        delivered: list[dict] = []

        async def healthy(topic, key, value, headers):
            delivered.append(json.loads(value))

        successor = OutboxRelay(pool, dsn, healthy, service="test", lease=timedelta(seconds=120))
        # Frozen, not dead: its claims hold (for up to the lease).
        victim.send_signal(signal.SIGSTOP)
        for _ in range(10):
            assert await successor.publish_batch() == 0
            await asyncio.sleep(0.2)
        victim.kill()
        await victim.wait()
        killed_at = time.monotonic()

        async def taken_over() -> int:
            return await successor.publish_batch()

        assert await eventually(taken_over, timeout=15, interval=0.1) == 6
        waited = time.monotonic() - killed_at
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        for c in cases:
            notes = [d["payload"]["note"] for d in delivered if d["case_id"] == str(c)]
            assert notes == ["0", "1", "2"]  # each case in order
        print(f"\nrelay killed mid-publish: its 6 rows went {waited:.2f}s later (lease 120 s)")
    finally:
        if victim.returncode is None:
            victim.kill()
            await victim.wait()


async def test_a_publish_that_times_out_releases_its_case_and_backs_off(outbox_db):
    dsn, pool = outbox_db
    case = uuid.uuid4()
    await write(pool, "test.slow", [closed_event(case, str(i)) for i in range(2)])
    calls = 0

    async def hangs(topic, key, value, headers):
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()

    relay = OutboxRelay(
        pool,
        dsn,
        hangs,
        service="test",
        publish_timeout=0.3,
        lease=timedelta(seconds=2),
        retry_base=30,
        max_attempts=1,
    )
    started = time.monotonic()
    assert await relay.publish_batch() == 0
    assert time.monotonic() - started < 1.5  # bounded by the publish timeout
    rows = await pool.fetch(
        "SELECT attempts, claimed_by, parked_at, next_attempt_at > now()"
        " AS backing_off FROM outbox ORDER BY id"
    )
    # A timeout is transient: backed off, never parked, even at max_attempts; row 2 released.
    assert [tuple(r) for r in rows] == [(1, None, None, True), (0, None, None, None)]
    assert await relay.publish_batch() == 0 and calls == 1  # the case waits for its head


# --- the relay's knobs are settings (OUTBOX_*) ----------------------------------------------

RELAY_SETTINGS = (
    "outbox_lease_seconds",
    "outbox_publish_timeout_seconds",
    "outbox_max_attempts",
    "outbox_retry_base_seconds",
    "outbox_retry_cap_seconds",
)


def settings(**values) -> BaseServiceSettings:
    values = {"database_url": "postgresql://u:p@127.0.0.1:9/x", **values}
    return BaseServiceSettings(service_name="test-relay", environment="test", **values)


async def never_called(topic, key, value, headers):
    raise AssertionError("not published")


def knobs(relay: OutboxRelay) -> tuple:
    return (
        relay._lease,
        relay._publish_timeout,
        relay._max_attempts,
        relay._retry_base,
        relay._retry_cap,
    )


def test_the_relay_is_built_from_the_outbox_settings(monkeypatch) -> None:
    for name in RELAY_SETTINGS:
        monkeypatch.delenv(name.upper(), raising=False)
    defaults = outbox_relay(settings(), None, never_called)
    assert knobs(defaults) == (timedelta(seconds=120), 30.0, 5, 1.0, 60.0)
    # The environment's names, as in docker-compose and Kubernetes.
    for name, value in zip(RELAY_SETTINGS, ("45", "20", "7", "0.5", "15"), strict=True):
        monkeypatch.setenv(name.upper(), value)
    relay = outbox_relay(settings(outbox_batch_size=7), None, never_called)
    assert knobs(relay) == (timedelta(seconds=45), 20.0, 7, 0.5, 15.0)
    assert relay._batch_size == 7 and relay.relay_id.startswith("test-relay-")


def test_a_lease_shorter_than_two_publish_timeouts_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError) as refused:
        settings(outbox_lease_seconds=50, outbox_publish_timeout_seconds=30)
    message = str(refused.value)
    assert (
        "OUTBOX_LEASE_SECONDS (50) must be at least twice OUTBOX_PUBLISH_TIMEOUT_SECONDS"
        " (30), i.e. >= 60" in message
    )
    # Only the default timeout given: the lease alone can be too short as well.
    with pytest.raises(ValidationError, match=re.escape("OUTBOX_LEASE_SECONDS (59)")):
        settings(outbox_lease_seconds=59)
    with pytest.raises(
        ValidationError, match=re.escape("OUTBOX_RETRY_CAP_SECONDS (0.5) must be >=")
    ):
        settings(outbox_retry_base_seconds=2, outbox_retry_cap_seconds=0.5)
    # Exactly two publish timeouts is enough, and the relay takes it as well.
    edge = settings(outbox_lease_seconds=60, outbox_publish_timeout_seconds=30)
    assert knobs(outbox_relay(edge, None, never_called))[:2] == (timedelta(seconds=60), 30.0)


@pytest.mark.parametrize("name", RELAY_SETTINGS)
@pytest.mark.parametrize("value", [0, -1, "nan", "soon"])
def test_nonsense_relay_settings_are_refused(name: str, value) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(**{name: value})
    assert name in str(refused.value)


# --- timeouts never park; a deterministic error parks after OUTBOX_MAX_ATTEMPTS -------------


async def test_a_row_failing_only_with_timeouts_is_never_parked_a_poisoned_one_is(outbox_db):
    """Many rounds past max_attempts: the case whose head only ever times out (the broker's
    KafkaTimeoutError, or no answer within the publish timeout) keeps its row unparked with
    its attempts growing and its later rows held; the case whose head is too large is parked
    after exactly max_attempts; every other case's rows flow in every round. Once the broker
    answers again the timed-out case goes out, in order."""
    dsn, pool = outbox_db
    timing_out, poisoned, good = uuid.uuid4(), uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
    await write(pool, "test.timeouts", [closed_event(timing_out, f"t{i}") for i in range(3)])
    await write(pool, "test.timeouts", [closed_event(poisoned, f"p{i}") for i in range(2)])
    calls = {"timeout": 0, "poison": 0}
    delivered: list[dict] = []
    broker_back = False
    n = 0  # the round

    def hangs(n: int) -> bool:  # every third round no answer, else the broker's timeout
        return n % 3 == 0

    async def flaky(topic, key, value, headers):
        event = json.loads(value)
        if event["case_id"] == str(timing_out) and not broker_back:
            calls["timeout"] += 1
            if not hangs(n):
                raise KafkaTimeoutError()  # retried in the round, then given up
            await asyncio.Event().wait()  # no answer: the relay's publish timeout fires
        if event["case_id"] == str(poisoned):
            calls["poison"] += 1
            raise MessageSizeTooLargeError()
        delivered.append(event)

    max_attempts, rounds = 3, 8
    relay = outbox_relay(
        settings(
            database_url=dsn,
            outbox_max_attempts=max_attempts,
            outbox_retry_base_seconds=0.001,
            outbox_retry_cap_seconds=0.01,
            outbox_publish_timeout_seconds=1,
            outbox_lease_seconds=5,
        ),
        pool,
        flaky,
    )
    parked_before = metrics.OUTBOX_PARKED_TOTAL.labels("test-relay")._value.get()
    started = time.monotonic()
    for n in range(1, rounds + 1):
        # New events of the healthy cases arrive every round; backoff is over at once.
        await write(pool, "test.timeouts", [closed_event(c, f"g{n}") for c in good])
        await pool.execute("UPDATE outbox SET next_attempt_at = NULL WHERE sent_at IS NULL")
        assert await relay.publish_batch() == len(good)
        head = await pool.fetchrow(
            "SELECT attempts, parked_at, last_error FROM outbox WHERE key = $1 ORDER BY id LIMIT 1",
            str(timing_out),
        )
        assert head["parked_at"] is None and head["attempts"] == n
        assert head["last_error"] == ("TimeoutError()" if hangs(n) else "KafkaTimeoutError()")
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE key = ANY($1::text[]) AND sent_at IS NULL",
                [str(c) for c in good],
            )
            == 0
        )
    took = time.monotonic() - started

    rows = {
        (r["key"], r["note"]): r
        for r in await pool.fetch(
            "SELECT key, payload->'payload'->>'note' AS note, attempts, parked_at, sent_at,"
            " last_error FROM outbox WHERE key = ANY($1::text[])",
            [str(timing_out), str(poisoned)],
        )
    }
    t0, p0 = rows[(str(timing_out), "t0")], rows[(str(poisoned), "p0")]
    assert t0["parked_at"] is None and t0["attempts"] == rounds > max_attempts
    assert p0["parked_at"] is not None and p0["attempts"] == max_attempts
    assert "MessageSizeTooLarge" in p0["last_error"]
    assert calls["poison"] == max_attempts  # not tried again once parked
    # Each case's later rows wait behind its head: neither tried, sent nor parked.
    for held in (("t1", "t2"), ("p1",)):
        for note in held:
            row = rows[(str(timing_out if note[0] == "t" else poisoned), note)]
            assert (row["attempts"], row["parked_at"], row["sent_at"]) == (0, None, None)
    assert [r["key"] for r in await outbox.parked(pool)] == [str(poisoned)]
    assert metrics.OUTBOX_PARKED_TOTAL.labels("test-relay")._value.get() == parked_before + 1
    for c in good:
        assert [d["payload"]["note"] for d in delivered if d["case_id"] == str(c)] == [
            f"g{n}" for n in range(1, rounds + 1)
        ]

    # The broker answers again: the case that only timed out goes out whole, in order.
    broker_back = True
    await pool.execute("UPDATE outbox SET next_attempt_at = NULL WHERE sent_at IS NULL")
    assert await relay.publish_batch() == 3
    assert [d["payload"]["note"] for d in delivered if d["case_id"] == str(timing_out)] == [
        "t0",
        "t1",
        "t2",
    ]
    assert await relay.backlog() == 2  # the parked row and the one held behind it
    print(
        f"\n{rounds} rounds: timed-out row unparked at {rounds} attempts, poisoned row"
        f" parked at {max_attempts}, {rounds * len(good)} other rows flowed in {took:.1f}s"
    )


async def test_claims_without_liveness_wait_for_their_lease_claims_of_a_gone_session_do_not(
    outbox_db,
):
    """A claim under a bare id (a relay of an earlier release during a rolling upgrade, or
    one whose connection is down) says nothing about liveness: only its lease frees it. A
    tracked claim ('+' id) whose session is gone is free at once."""
    dsn, pool = outbox_db
    old, gone = uuid.uuid4(), uuid.uuid4()
    await write(pool, "test.names", [closed_event(old, "old"), closed_event(gone, "gone")])
    await pool.execute(
        "UPDATE outbox SET claimed_until = now() + interval '1 minute',"
        " claimed_by = CASE WHEN key = $1 THEN 'intake-oldrelease' ELSE '+intake-gone' END",
        str(old),
    )
    delivered: list[dict] = []

    async def publish(topic, key, value, headers):
        delivered.append(json.loads(value))

    relay = OutboxRelay(pool, dsn, publish, service="test")
    session = await asyncpg.connect(dsn)
    try:
        await relay.hold_liveness(session)
        assert await relay.publish_batch() == 1
        assert await relay.publish_batch() == 0
    finally:
        await session.close()
    assert [d["case_id"] for d in delivered] == [str(gone)]
    assert await pool.fetchval("SELECT claimed_by FROM outbox WHERE key = $1", str(old)) == (
        "intake-oldrelease"
    )
