"""One scenario: the steady load, a fault injected under it, then the invariants checked
once the system converged, and a row for the results table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.contract import Topics
from tests.faults.invariants import Row, converge, parked_ids
from tests.faults.load import Load, LoadStats

RATE = 20.0  # cases per second: the system saturates near 25/s on a 2-core machine


async def topic_size(bootstrap: str, topic: str = Topics.DEAD_LETTER) -> int:
    """How many records ``topic`` holds now (sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(parts)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def wait_restart(stack, what: str, since: float, timeout: float = 60.0) -> float:
    """Wait until the stack's supervisor recorded a restart of ``what`` after ``since``;
    return how long after ``since`` it came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in list(stack.restarts):
            if r.what == what and r.at >= since:
                return r.at - since
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"the supervisor did not restart {what} within {timeout:.0f}s (restarts: {stack.restarts})"
    )


async def run(
    stack,
    results: list[Row],
    name: str,
    *,
    duration: float,
    inject: Callable[[Load], Awaitable[str]] | None = None,
    faults: str = "",
    timeout: float = 150.0,
    tag: str | None = None,
    check: Callable[[Load], Awaitable[None]] | None = None,
    quiet: bool = True,
) -> tuple[Row, LoadStats]:
    """Run the load for ``duration`` seconds with ``inject(load)`` going on beside it (it
    returns a note for the table), stop the load, wait until the invariants hold and record
    the row. ``check`` runs extra assertions after convergence; ``quiet``: nothing may be
    dead-lettered or parked (no poison was sent)."""
    row = Row(scenario=name, faults=faults)
    results.append(row)
    parked_before = await parked_ids(stack)
    dead_before = await topic_size(stack.kafka.bootstrap)
    load = Load(stack, rate=RATE, tag=tag or name.split()[0])
    async with load:  # the load stops after ``duration`` even if the fault goes on
        injecting = asyncio.create_task(inject(load)) if inject is not None else None
        await asyncio.sleep(duration)
    note = await injecting if injecting is not None else ""
    stats = load.stats
    row.accepted = len(stats.accepted)
    failures = ", ".join(
        f"{k} ×{n}"
        for k, n in stats.statuses.most_common()
        if not k.endswith((" 200", " 201", " 409"))
    )
    row.notes = "; ".join(
        x
        for x in (
            note,
            f"{len(stats.cases)} started in "
            f"{stats.seconds:.0f}s, {stats.retries} retries"
            + (f" ({failures})" if failures else ""),
        )
        if x
    )
    assert not stats.failed, f"cases the load gave up on: {[c.error for c in stats.failed][:10]}"
    assert row.accepted >= 0.9 * RATE * duration * 0.5, f"too few cases accepted: {row.accepted}"
    snap, waited, failure = await converge(
        stack, stats.cases, timeout=timeout, parked_since=parked_before
    )
    row.assignments, row.clocks, row.deliveries = snap.assignments, snap.clocks, snap.deliveries
    row.duplicates, row.parked = snap.duplicates, snap.parked
    row.dead_letters = max(0, await topic_size(stack.kafka.bootstrap) - dead_before)
    row.converge = f"{waited:.1f}s" if not failure else f"no ({waited:.0f}s)"
    assert not failure, failure
    if quiet:
        assert (row.dead_letters, row.parked, snap.outbox_parked) == (0, 0, 0), (
            f"dead letters {row.dead_letters}, parked events {row.parked}, "
            f"parked outbox rows {snap.outbox_parked} without any poison"
        )
    if check is not None:
        await check(load)
    row.result = "ok"
    return row, stats
