"""Consumers handle what they receive together in batches (issue 14): one database
transaction and one offset commit for many messages, with the one-by-one guarantees kept —
each event's effect once, per-key order, a failing handler retried with its failed try
counted and then dead-lettered, a message that does not parse dead-lettered alone. On the
real embedded PostgreSQL and broker."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared import db, inbox, migrations
from shared.broker import EventConsumer, make_broker, on, start_broker
from shared.contract import CaseClosed, Priority, Topics, new_event
from shared.faults import RetryPolicy
from shared.settings import BaseServiceSettings
from tests.helpers import eventually, read_topic


def closed(case_id: uuid.UUID, note: str):
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
async def shared_db(empty_db, pool_factory):
    conn = await db.connect_once(empty_db)
    await migrations.apply(conn, [("shared", migrations.SHARED_MIGRATIONS)])
    await conn.execute(
        "CREATE TABLE effects (seq bigserial, event_id uuid, case_id uuid,"
        " note text, txid bigint DEFAULT txid_current())"
    )
    await conn.close()
    return await pool_factory(empty_db)


async def test_claim_many_claims_each_event_once_even_twice_in_one_statement(shared_db):
    pool = shared_db
    a, b = closed(uuid.uuid4(), "a"), closed(uuid.uuid4(), "b")
    async with pool.acquire() as conn, conn.transaction():
        assert await inbox.claim(conn, "c", a)
        assert await inbox.claim_many(conn, "c", [a, b, b]) == {b.event_id}
        assert await inbox.claim_many(conn, "c", [a, b]) == set()
        assert await inbox.claim_many(conn, "other", [a]) == {a.event_id}


async def test_batches_keep_every_guarantee_of_one_by_one(shared_db, kafka_server):
    pool = shared_db
    group = f"batch-{uuid.uuid4().hex[:8]}"
    topic = f"test.events.{group}"
    settings = BaseServiceSettings(
        service_name="test",
        environment="test",
        database_url="postgresql://x@127.0.0.1/x",
        kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False,
        consumer_batch_size=50,
        consumer_batch_wait_ms=5,
    )
    broker = make_broker(settings)
    calls: Counter[str] = Counter()

    async def handler(conn: asyncpg.Connection, event) -> None:
        note = event.payload.note
        calls[note] += 1
        if note == "flaky" and calls[note] < 3:
            raise RuntimeError("flaky bug")
        if note == "always-broken":
            raise RuntimeError("always broken")
        await conn.execute(
            "INSERT INTO effects (event_id, case_id, note) VALUES ($1, $2, $3)",
            event.event_id,
            event.case_id,
            note,
        )

    consumer = EventConsumer(
        service="test",
        name=group,
        pool=lambda: pool,
        broker=broker,
        routes=[on(CaseClosed, handler)],
        policy=RetryPolicy(max_attempts=3, initial_backoff_seconds=0.01),
    )
    consumer.subscribe(topic, description="test")

    # 20 cases × 30 events, in order per case; one event sent twice, a flaky and a broken
    # handler and a message that does not parse in the middle of the stream.
    cases = [uuid.uuid4() for _ in range(20)]
    stream: list[tuple[bytes, bytes]] = []
    twice = closed(cases[0], "twice")
    for i in range(30):
        for c in cases:
            stream.append((str(c).encode(), closed(c, f"{c}:{i:02d}").to_bytes()))
        if i == 10:
            stream.append((str(cases[1]).encode(), twice.to_bytes()))
            stream.append((str(cases[2]).encode(), closed(cases[2], "flaky").to_bytes()))
        if i == 12:
            stream.append((str(cases[1]).encode(), twice.to_bytes()))
            stream.append((str(cases[3]).encode(), b"{not json"))
        if i == 15:
            stream.append((str(cases[4]).encode(), closed(cases[4], "always-broken").to_bytes()))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in stream:  # all in the topic before the consumer starts
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()

    await start_broker(broker, 5)
    try:

        async def all_handled():
            n = await pool.fetchval("SELECT count(*) FROM effects")
            return n if n == 20 * 30 + 2 else None

        await eventually(all_handled, timeout=90, message="every event handled")
    finally:
        await broker.stop()

    rows = await pool.fetch("SELECT event_id, case_id, note, txid FROM effects ORDER BY seq")
    assert Counter(r["note"] for r in rows)["twice"] == 1
    assert len({r["event_id"] for r in rows}) == len(rows)  # each effect once
    by_case: dict[uuid.UUID, list[str]] = defaultdict(list)
    for r in rows:
        if r["note"] not in ("twice", "flaky"):
            by_case[r["case_id"]].append(r["note"])
    assert all(notes == sorted(notes) and len(notes) == 30 for notes in by_case.values())
    assert calls["flaky"] == 3 and calls["always-broken"] == 3  # the batch's try counted
    transactions = len({r["txid"] for r in rows})
    assert transactions < len(rows) / 5, f"{transactions} transactions for {len(rows)} events"
    dead = [
        r
        for r in await read_topic(kafka_server.bootstrap, Topics.DEAD_LETTER)
        if dict(r.headers).get("dlt-consumer-group") == f"whistle-test-{group}".encode()
    ]
    assert sorted(dict(r.headers)["dlt-error-type"].decode() for r in dead) == [
        "JSONDecodeError",
        "RuntimeError",
    ]
