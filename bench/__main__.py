"""``make bench``: figures for the backbone, on the real embedded servers.

- outbox relay throughput: events written by many transactions, published to the broker
  and marked sent (one relay, then two relays sharing the rows);
- the same with one busy case (every event has the same key: strict per-case order);
- tracking's KPI query over 20,000 cases (``bench/kpi.py``).

``make bench`` then runs ``bench/timers.py`` and ``bench/queries.py``: the board, inbox and KPI
queries as cases grow to 1,000,000.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from faststream.kafka import KafkaBroker

from bench import embedded_postgres, free_port
from bench.kpi import bench_kpi

from shared import db, migrations, outbox
from shared.broker import ensure_topics, publisher_for
from shared.contract import CaseClosed, Priority, new_event
from shared.outbox import OutboxRelay
from stack.kafka import EmbeddedKafka


def _event(case_id: uuid.UUID, i: int):
    return new_event(
        CaseClosed(
            case_no=f"YA-{i}",
            area_path="YA/YA01/YA0101/YA0101-01",
            category="E0101",
            priority=Priority.NORMAL,
            note="bench",
        ),
        case_id=case_id,
        producer="bench",
    )


async def _fill(pool, cases: int, per_case: int) -> int:
    ids = [uuid.uuid4() for _ in range(cases)]
    async with pool.acquire() as conn:
        for n in range(per_case):
            async with conn.transaction():
                await outbox.add(conn, *(_event(c, n) for c in ids))
    return cases * per_case


async def _drain(relays: list[OutboxRelay]) -> None:
    async def one(relay: OutboxRelay) -> None:
        while await relay.backlog():
            await relay.publish_batch()

    await asyncio.gather(*(one(r) for r in relays))


async def bench_relay(dsn: str, bootstrap: str) -> None:
    conn = await db.connect_once(dsn)
    await migrations.apply(conn, [("shared", migrations.SHARED_MIGRATIONS)])
    await conn.close()
    pool = await db.create_pool(dsn, max_size=10)
    broker = KafkaBroker(bootstrap, acks="all")
    await broker.start()
    publish = publisher_for(broker)
    try:
        for label, cases, per_case, replicas in [
            ("many cases, 1 relay", 1000, 5, 1),
            ("many cases, 2 relays", 1000, 5, 2),
            ("one busy case, 1 relay", 1, 500, 1),
        ]:
            await pool.execute("TRUNCATE outbox")
            total = await _fill(pool, cases, per_case)
            relays = [
                OutboxRelay(pool, dsn, publish, service="bench", batch_size=200)
                for _ in range(replicas)
            ]
            started = time.perf_counter()
            await _drain(relays)
            took = time.perf_counter() - started
            sent = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL")
            assert sent == total, (sent, total)
            print(
                f"outbox relay  {label:<24} {total:>6} events in {took:6.2f} s"
                f"  = {total / took:8.0f} events/s"
            )
        # Latency of one event: commit -> relay woken by NOTIFY -> broker ack -> marked sent.
        await pool.execute("TRUNCATE outbox")
        relay = OutboxRelay(pool, dsn, publish, service="bench", poll_interval=30)
        relay.start()
        await asyncio.sleep(0.5)
        latencies = []
        for i in range(50):
            t0 = time.perf_counter()
            async with pool.acquire() as c, c.transaction():
                await outbox.add(c, _event(uuid.uuid4(), i))
            while await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):  # noqa: ASYNC110 - polling the database is the measurement
                await asyncio.sleep(0.001)
            latencies.append((time.perf_counter() - t0) * 1000)
        await relay.stop()
        latencies.sort()
        print(
            f"outbox relay  commit→published (NOTIFY wake-up, 50 events): "
            f"median {statistics.median(latencies):.1f} ms, p95 {latencies[int(0.95 * 50)]:.1f} ms"
        )
    finally:
        await broker.stop()
        await pool.close()


def main() -> None:
    with embedded_postgres("bench", "bench_kpi") as pg, tempfile.TemporaryDirectory() as tmp:
        kafka = EmbeddedKafka(free_port(), Path(tmp) / "broker.log")
        kafka.start()
        try:
            asyncio.run(ensure_topics(kafka.bootstrap))
            asyncio.run(bench_relay(pg.dsn("bench"), kafka.bootstrap))
            asyncio.run(bench_kpi(pg.dsn("bench_kpi")))
        finally:
            kafka.stop()


if __name__ == "__main__":
    main()
