"""The floor of this machine, measured on the stack's own broker and PostgreSQL server.

- one Kafka hop: produce (acks=all, awaited) → consumed by a consumer that already waits on
  the partition, messages at random moments (Poisson, ≈50/s); once with a short fetch wait and once with
  aiokafka's default ``fetch_max_wait_ms=500``, which the services' consumers use;
- produce throughput: many small messages sent without waiting for each (acks=all);
- PostgreSQL INSERT + COMMIT per second on 1 connection and on 16, in a scratch table of a
  scratch database on the same server (fsync on, as the services have it).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.e2e.stats import summary
from shared.broker import ensure_topics

FLOOR_TOPIC = "bench-floor"
FLOOR_DATABASE = "bench_floor"


async def kafka_hop(
    bootstrap: str, *, fetch_max_wait_ms: int, count: int, cap_seconds: float, gap_ms: float = 20.0
) -> dict:
    """Latency of one hop, produce → consume, in ms (``count`` messages or ``cap_seconds``)."""
    tp = TopicPartition(FLOOR_TOPIC, 0)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, client_id="bench-floor"
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_max_wait_ms,
        client_id="bench-floor",
    )
    await producer.start()
    await consumer.start()
    latencies: list[float] = []
    sent_at: dict[bytes, float] = {}
    rng = random.Random(7)
    try:
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)

        async def read() -> None:
            async for msg in consumer:
                at = time.perf_counter()
                sent = sent_at.pop(msg.value, None)
                if sent is not None:
                    latencies.append((at - sent) * 1000)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)  # the consumer is polling the partition
        deadline = time.monotonic() + cap_seconds
        try:
            # Poisson arrivals (mean gap ``gap_ms``), not one after the other: a message
            # lands anywhere in the consumer's fetch cycle, as the services' events do.
            for _ in range(count):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(rng.expovariate(1000 / gap_ms))
                token = uuid.uuid4().bytes
                sent_at[token] = time.perf_counter()
                await producer.send_and_wait(FLOOR_TOPIC, token, partition=0)
            settle = time.monotonic() + 3 + fetch_max_wait_ms / 1000
            while sent_at and time.monotonic() < settle:  # noqa: ASYNC110 - bounded wait for the last messages
                await asyncio.sleep(0.01)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    finally:
        await consumer.stop()
        await producer.stop()
    return {"fetch_max_wait_ms": fetch_max_wait_ms, **summary(latencies)}


async def kafka_produce_rate(bootstrap: str, *, messages: int, cap_seconds: float) -> dict:
    """Messages/s produced with acks=all, sent without waiting for each (batched)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", client_id="bench-floor")
    await producer.start()
    try:
        value = b"x" * 200
        started = time.perf_counter()
        deadline = time.monotonic() + cap_seconds
        sent = 0
        while sent < messages and time.monotonic() < deadline:
            batch = [
                await producer.send(FLOOR_TOPIC, value, key=str(sent + i).encode())
                for i in range(500)
            ]
            await asyncio.gather(*batch)
            sent += len(batch)
        took = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"messages": sent, "seconds": took, "per_second": sent / took, "value_bytes": len(value)}


async def pg_commits(dsn: str, *, connections: int, seconds: float) -> dict:
    """INSERT + COMMIT per second (autocommit: each INSERT is its own transaction)."""
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    try:
        await conns[0].execute(
            "CREATE TABLE IF NOT EXISTS scratch (id bigserial PRIMARY KEY, note text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        )
        await conns[0].execute("TRUNCATE scratch")
        counts = [0] * connections
        stop_at = time.perf_counter() + seconds

        async def loop(i: int, conn: asyncpg.Connection) -> None:
            while time.perf_counter() < stop_at:
                await conn.execute("INSERT INTO scratch (note) VALUES ($1)", "floor")
                counts[i] += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(i, c) for i, c in enumerate(conns)))
        took = time.perf_counter() - started
    finally:
        for c in conns:
            await c.close()
    total = sum(counts)
    return {
        "connections": connections,
        "commits": total,
        "seconds": took,
        "per_second": total / took,
        "ms_per_commit": took / total * 1000 * connections,
    }


async def measure_floor(bootstrap: str, pg_dsn: str, *, quick: bool) -> dict:
    """All the floor figures; ``quick`` shortens each measurement (a short run)."""
    await ensure_topics(bootstrap, (FLOOR_TOPIC,), partitions=1)
    seconds = 2.0 if quick else 5.0
    short = await kafka_hop(bootstrap, fetch_max_wait_ms=5, count=1000, cap_seconds=seconds)
    default = await kafka_hop(bootstrap, fetch_max_wait_ms=500, count=1000, cap_seconds=seconds)
    produce = await kafka_produce_rate(bootstrap, messages=50_000, cap_seconds=seconds)
    one = await pg_commits(pg_dsn, connections=1, seconds=seconds)
    sixteen = await pg_commits(pg_dsn, connections=16, seconds=seconds)
    return {
        "kafka_hop_short_wait": short,
        "kafka_hop_default_wait": default,
        "kafka_produce": produce,
        "pg_commit_1": one,
        "pg_commit_16": sixteen,
    }
