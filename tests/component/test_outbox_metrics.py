"""The outbox gauges the alert rules read (deploy/monitoring): the age of the oldest row still
waiting, which ignores parked rows (they have their own alert) and drops to 0 once
everything is out. On the real embedded PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from shared import metrics, outbox
from shared.contract import CaseClosed, Priority, new_event
from shared.outbox import OutboxRelay


def closed(case_id: uuid.UUID):
    return new_event(
        CaseClosed(
            case_no="YA-M1", area_path="YA/YA01", category="E0101", priority=Priority.NORMAL
        ),
        case_id=case_id,
        producer="test",
    )


@pytest.fixture
async def pool(shared_migrated_db, pool_factory):
    return await pool_factory(shared_migrated_db)


def gauge(collector, service: str) -> float:
    return collector.labels(service)._value.get()


async def test_oldest_unsent_age_backlog_and_parked(pool):
    service = f"m{uuid.uuid4().hex[:6]}"
    published: list[bytes] = []

    async def publish(topic: str, key: bytes, value: bytes, headers: dict[str, str]) -> None:
        published.append(key)

    relay = OutboxRelay(pool, "unused", publish, service=service)
    assert await relay.backlog() == 0
    assert gauge(metrics.OUTBOX_OLDEST_UNSENT, service) == 0

    waiting, parked = uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, closed(parked))
        await outbox.add(conn, closed(waiting))
    # Written 10 minutes ago; the parked row even earlier.
    await pool.execute(
        "UPDATE outbox SET created_at = now() - interval '10 minutes' WHERE key = $1", str(waiting)
    )
    await pool.execute(
        "UPDATE outbox SET created_at = now() - interval '1 hour', parked_at = now()"
        " WHERE key = $1",
        str(parked),
    )
    assert await relay.backlog() == 2
    assert 600 <= gauge(metrics.OUTBOX_OLDEST_UNSENT, service) < 660
    assert gauge(metrics.OUTBOX_PARKED, service) == 1

    assert await relay.publish_batch() == 1  # the waiting row; the parked one stays
    assert published == [str(waiting).encode()]
    assert await relay.backlog() == 1
    assert gauge(metrics.OUTBOX_OLDEST_UNSENT, service) == 0


async def test_outside_tracing_rows_carry_no_trace_context(pool):
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, closed(uuid.uuid4()))
    assert await pool.fetchval("SELECT trace_context FROM outbox") is None
