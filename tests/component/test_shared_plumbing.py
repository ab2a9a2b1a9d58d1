"""The shared plumbing on real PostgreSQL and the real broker: migrations, outbox relay,
inbox, consumer retries and the dead-letter topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from faststream.kafka import KafkaBroker

from shared import db, migrations, outbox
from shared.broker import EventConsumer, on, start_broker
from shared.contract import CaseClosed, Priority, Topics, new_event
from shared.faults import RetryPolicy
from shared.outbox import OutboxRelay
from tests.helpers import eventually, publish_raw, read_topic


def closed_event(case_id: uuid.UUID | None = None, note: str = "ok"):
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
    )


# --- migrations -------------------------------------------------------------------------


async def test_migrations_apply_once_and_refuse_an_edited_file(empty_db, tmp_path: Path):
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "0001_init.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    sources = [("shared", migrations.SHARED_MIGRATIONS), ("svc", folder)]
    conn = await db.connect_once(empty_db)
    try:
        first = await migrations.apply(conn, sources)
        shared = [f"shared/{p.name}" for p in sorted(migrations.SHARED_MIGRATIONS.glob("*.sql"))]
        assert first == [*shared, "svc/0001_init.sql"]
        assert await migrations.apply(conn, sources) == []
        (folder / "0002_more.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
        assert await migrations.apply(conn, sources) == ["svc/0002_more.sql"]
        (folder / "0001_init.sql").write_text("CREATE TABLE things (id bigint PRIMARY KEY);")
        with pytest.raises(migrations.MigrationError, match="edited"):
            await migrations.apply(conn, sources)
    finally:
        await conn.close()


async def test_concurrent_migrators_apply_each_migration_once(empty_db, tmp_path: Path):
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "0001_init.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    sources = [("shared", migrations.SHARED_MIGRATIONS), ("svc", folder)]
    conns = [await db.connect_once(empty_db) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrations.apply(c, sources) for c in conns))
        total = len(list(migrations.SHARED_MIGRATIONS.glob("*.sql"))) + 1
        assert sorted(len(r) for r in results) == [0, 0, total]
    finally:
        for c in conns:
            await c.close()


async def test_bad_migration_file_name_is_refused(tmp_path: Path):
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match=r"NNNN_name\.sql"):
        migrations.load("svc", tmp_path)


# --- outbox -----------------------------------------------------------------------------


@pytest.fixture
async def outbox_db(empty_db, pool_factory):
    conn = await db.connect_once(empty_db)
    await migrations.apply(conn, [("shared", migrations.SHARED_MIGRATIONS)])
    await conn.close()
    return empty_db, await pool_factory(empty_db)


async def test_outbox_add_requires_a_transaction(outbox_db):
    _, pool = outbox_db
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="transaction"):
            await outbox.add(conn, closed_event())


async def test_rolled_back_state_change_publishes_nothing(outbox_db):
    _, pool = outbox_db
    with pytest.raises(ZeroDivisionError):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, closed_event())
            1 / 0  # noqa: B018 - the state change fails after the event was written
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_relay_marks_sent_only_what_the_broker_acknowledged(outbox_db):
    dsn, pool = outbox_db
    case = uuid.uuid4()
    events = [closed_event(case, note=str(i)) for i in range(3)]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, *events)
    published: list[tuple[str, bytes]] = []
    fail = {"on": True}

    async def publish(topic, key, value, headers):
        if fail["on"]:
            raise ConnectionError("broker away")
        published.append((topic, value))

    relay = OutboxRelay(
        pool, dsn, publish, service="test", batch_size=10, poll_interval=0.1, retry_base=0
    )
    assert await relay.publish_batch() == 0
    row = await pool.fetchrow(
        "SELECT attempts, last_error, sent_at FROM outbox ORDER BY id LIMIT 1"
    )
    assert row["sent_at"] is None and row["attempts"] == 1 and "broker away" in row["last_error"]
    fail["on"] = False
    # One case's events leave in one round, one after the other, oldest first.
    assert [await relay.publish_batch() for _ in range(2)] == [3, 0]
    notes = [json.loads(v)["payload"]["note"] for _, v in published]
    assert notes == ["0", "1", "2"]
    assert await relay.backlog() == 0


async def test_a_failure_inside_a_case_holds_back_its_later_events(outbox_db):
    dsn, pool = outbox_db
    case = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, *(closed_event(case, note=str(i)) for i in range(3)))
    published: list[str] = []
    refuse = {"1"}

    async def publish(topic, key, value, headers):
        note = json.loads(value)["payload"]["note"]
        if note in refuse:
            raise ConnectionError("partition leader moved")
        published.append(note)

    relay = OutboxRelay(pool, dsn, publish, service="test", retry_base=0)
    assert await relay.publish_batch() == 1  # "0" went; "1" failed; "2" must not overtake it
    assert published == ["0"]
    refuse.clear()
    assert await relay.publish_batch() == 2
    assert published == ["0", "1", "2"]


async def test_two_relays_share_rows_without_doubling_or_reordering(outbox_db):
    dsn, pool = outbox_db
    cases = [uuid.uuid4() for _ in range(20)]
    async with pool.acquire() as conn, conn.transaction():
        for c in cases:
            await outbox.add(conn, *(closed_event(c, note=str(i)) for i in range(3)))
    published: list[dict] = []

    async def publish(topic, key, value, headers):
        await asyncio.sleep(0.001)
        published.append(json.loads(value))

    relays = [
        OutboxRelay(pool, dsn, publish, service="test", batch_size=7, poll_interval=0.05)
        for _ in range(2)
    ]

    async def drain(relay):
        while await relay.backlog():
            await relay.publish_batch()

    await asyncio.gather(*(drain(r) for r in relays))
    assert len(published) == 60
    assert len({p["event_id"] for p in published}) == 60
    for c in cases:
        assert [p["payload"]["note"] for p in published if p["case_id"] == str(c)] == [
            "0",
            "1",
            "2",
        ]


async def test_housekeeping_purges_only_old_sent_rows_and_old_inbox_ids(outbox_db):
    dsn, pool = outbox_db
    events = [closed_event() for _ in range(3)]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, *events)
        await conn.execute(
            "UPDATE outbox SET sent_at = now() - interval '4 days' WHERE event_id = $1",
            events[0].event_id,
        )
        await conn.execute(
            "UPDATE outbox SET sent_at = now() WHERE event_id = $1", events[1].event_id
        )
        await conn.execute(
            "UPDATE outbox SET created_at = now() - interval '9 days' WHERE event_id = $1",
            events[2].event_id,
        )  # old but unsent
        await conn.executemany(
            "INSERT INTO inbox (consumer, event_id, type, handled_at) VALUES ('c', $1, 't', $2)",
            [
                (uuid.uuid4(), datetime.now(UTC) - timedelta(days=31)),
                (uuid.uuid4(), datetime.now(UTC)),
            ],
        )
    relay = OutboxRelay(pool, dsn, lambda *a: None, service="test")
    assert await relay.housekeeping() == (1, 1)
    left = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM outbox")}
    assert left == {events[1].event_id, events[2].event_id}
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 1


async def test_relay_wakes_on_notify(outbox_db):
    dsn, pool = outbox_db
    got = asyncio.Event()

    async def publish(topic, key, value, headers):
        got.set()

    relay = OutboxRelay(pool, dsn, publish, service="test", poll_interval=30)
    relay.start()
    try:
        await asyncio.sleep(0.5)  # let it LISTEN and find nothing
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, closed_event())
        await asyncio.wait_for(got.wait(), timeout=5)  # far sooner than the 30 s poll
    finally:
        await relay.stop()
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


# --- consumer: inbox, retries, dead letters ---------------------------------------------


@pytest.fixture
async def consumer_setup(outbox_db, kafka_server):
    _, pool = outbox_db
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (event_id uuid, note text)")
    broker = KafkaBroker(kafka_server.bootstrap)
    calls: list[str] = []

    async def handler(conn: asyncpg.Connection, event):
        calls.append(event.payload.note)
        if event.payload.note == "flaky" and calls.count("flaky") < 3:
            raise RuntimeError("flaky bug")
        if event.payload.note == "always-broken":
            raise RuntimeError("always broken")
        await conn.execute(
            "INSERT INTO effects VALUES ($1, $2)", event.event_id, event.payload.note
        )

    group = f"test-{uuid.uuid4().hex[:8]}"
    consumer = EventConsumer(
        service="test",
        name=group,
        pool=lambda: pool,
        broker=broker,
        routes=[on(CaseClosed, handler)],
        policy=RetryPolicy(max_attempts=3),
    )
    topic = f"test.events.{group}"
    consumer.subscribe(topic, description="test")
    await start_broker(broker, 5)
    yield pool, kafka_server.bootstrap, topic, calls, group
    await broker.stop()


async def test_duplicate_delivery_has_one_effect_and_failures_retry_or_dead_letter(consumer_setup):
    pool, bootstrap, topic, calls, group = consumer_setup
    once = closed_event(note="once")
    for _ in range(2):
        await publish_raw(bootstrap, topic, once.to_bytes(), b"k")
    await publish_raw(bootstrap, topic, closed_event(note="flaky").to_bytes(), b"k")
    await publish_raw(bootstrap, topic, b"{not json", b"k")
    await publish_raw(bootstrap, topic, closed_event(note="always-broken").to_bytes(), b"k")
    await publish_raw(bootstrap, topic, closed_event(note="last").to_bytes(), b"k")

    async def effects():
        rows = await pool.fetch("SELECT note FROM effects")
        notes = sorted(r["note"] for r in rows)
        return notes if "last" in notes else None

    notes = await eventually(effects, timeout=60, message="consumer handled the stream")
    assert notes == ["flaky", "last", "once"]  # 'once' delivered twice, one effect
    assert calls.count("flaky") == 3 and calls.count("always-broken") == 3
    dead = [
        r
        for r in await read_topic(bootstrap, Topics.DEAD_LETTER)
        if dict(r.headers).get("dlt-consumer-group") == f"whistle-test-{group}".encode()
    ]
    errors = sorted(dict(r.headers)["dlt-error-type"].decode() for r in dead)
    assert errors == ["JSONDecodeError", "RuntimeError"]
    assert any(r.value == b"{not json" for r in dead)


async def test_a_released_connection_is_not_reset_but_never_left_in_a_transaction(empty_db):
    """The pool skips asyncpg's RESET ALL round trip on release (issue 14); a transaction a
    caller left open is still rolled back, so the next checkout starts clean."""
    pool = await db.create_pool(empty_db, min_size=1, max_size=1, attempts=3)
    try:
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await conn.execute("CREATE TABLE marks (n int)")
        async with pool.acquire() as conn:  # the same backend (max_size=1)
            assert await conn.fetchval("SELECT pg_backend_pid()") == pid
        watcher = await asyncpg.connect(empty_db)
        try:
            last = await watcher.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
            assert last == "SELECT pg_backend_pid()"  # nothing ran after it on release
            async with pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                await conn.execute("INSERT INTO marks VALUES (1)")
                # released with the transaction open (a bug elsewhere): rolled back
            async with pool.acquire() as conn:
                assert not conn.is_in_transaction()
                assert await conn.fetchval("SELECT count(*) FROM marks") == 0
        finally:
            await watcher.close()
    finally:
        await pool.close()
