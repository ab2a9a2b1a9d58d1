"""After a broker lost what it held (issue 13, points 6 and 9): ``outbox.republish`` makes
every row sent since a point unsent again, the relay publishes them again in order, and a
relay that hears back from the lost broker after that can no longer mark its rows sent.
On real PostgreSQL and the real broker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import KafkaBroker

from shared import outbox
from shared.contract import CaseClosed, Priority, new_event
from shared.outbox import OutboxRelay
from tests.helpers import read_topic


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
async def pool(shared_migrated_db, pool_factory):
    return await pool_factory(shared_migrated_db)


async def write(pool, topic: str, events) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, *events)
        await conn.execute("UPDATE outbox SET topic = $1 WHERE sent_at IS NULL", topic)


def relay_for(pool, dsn, broker: KafkaBroker) -> OutboxRelay:
    async def publish(topic, key, value, headers):
        await broker.publish(value, topic, key=key, headers=headers)

    return OutboxRelay(
        pool,
        dsn,
        publish,
        service="test-republish",
        batch_size=100,
        publish_timeout=5,
        lease=timedelta(seconds=15),
    )


async def test_rows_sent_since_the_safe_point_are_published_again_in_order(
    pool, empty_db, kafka_server
):
    topic = f"test.republish.{uuid.uuid4().hex[:8]}"
    case = uuid.uuid4()
    broker = KafkaBroker(kafka_server.bootstrap)
    await broker.start()
    try:
        relay = relay_for(pool, empty_db, broker)
        await write(pool, topic, [closed(case, "before-1"), closed(case, "before-2")])
        assert await relay.publish_batch() == 2
        # Everything up to here was read by every consumer: the safe point.
        await pool.execute("UPDATE outbox SET sent_at = now() - interval '1 minute'")
        safe_point = datetime.now(UTC) - timedelta(seconds=30)
        await write(pool, topic, [closed(case, f"after-{i}") for i in range(3)])
        await write(pool, topic, [closed(uuid.uuid4(), "other")])
        assert await relay.publish_batch() == 4

        dry = await outbox.republish(pool, safe_point, dry_run=True)
        assert (dry.rows, dry.in_flight) == (4, 0)
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0

        done = await outbox.republish(pool, safe_point)
        assert done.rows == 4
        assert done.oldest_kept is not None and done.oldest_kept < safe_point
        unsent = await pool.fetch(
            "SELECT payload->'payload'->>'note' AS note FROM outbox"
            " WHERE sent_at IS NULL ORDER BY id"
        )
        assert [r["note"] for r in unsent] == ["after-0", "after-1", "after-2", "other"]

        assert await relay.publish_batch() == 4
        records = await read_topic(kafka_server.bootstrap, topic)
        notes = [r.value for r in records if r.key == str(case).encode()]
        notes = [json.loads(v)["payload"]["note"] for v in notes]
        # The first copies, then the same three again in the same order; nothing before
        # the safe point twice.
        assert notes == [
            "before-1",
            "before-2",
            "after-0",
            "after-1",
            "after-2",
            "after-0",
            "after-1",
            "after-2",
        ]
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    finally:
        await broker.stop()


async def test_a_relay_cannot_mark_rows_sent_once_their_claim_was_voided(
    pool, empty_db, kafka_server
):
    """The window a republish closes: the lost broker acknowledged a row, its relay marks it
    sent only after the republish ran. That late mark must not count (the row is gone with
    the broker) — the row stays unsent and goes to the new broker."""
    topic = f"test.republish.{uuid.uuid4().hex[:8]}"
    await write(pool, topic, [closed(uuid.uuid4(), "in-flight")])
    acked = []

    async def publish_then_broker_lost(topic, key, value, headers):
        acked.append(value)
        # The broker died after acknowledging; the operator (or the stack) republishes
        # before this relay gets to mark the row.
        await outbox.republish(pool, datetime.now(UTC) - timedelta(minutes=5))

    relay = OutboxRelay(
        pool,
        empty_db,
        publish_then_broker_lost,
        service="test-late-mark",
        publish_timeout=5,
        lease=timedelta(seconds=15),
    )
    assert await relay.publish_batch() == 1  # the relay thinks it sent it
    assert len(acked) == 1
    row = await pool.fetchrow("SELECT sent_at, claimed_by FROM outbox")
    assert row["sent_at"] is None and row["claimed_by"] is None

    broker = KafkaBroker(kafka_server.bootstrap)
    await broker.start()
    try:
        assert await relay_for(pool, empty_db, broker).publish_batch() == 1
    finally:
        await broker.stop()
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") == 1
    assert len(await read_topic(kafka_server.bootstrap, topic)) == 1
