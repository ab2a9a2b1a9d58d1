"""Reading a service's event log for a replay: every partition of the topics its consumers
hear, from the earliest offset up to the end offsets taken when the replay starts. Manual
assignment and no consumer group: nothing is committed, the live groups' offsets are never
touched."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.kafka_security import KafkaSecurity, client_options
from shared.parking import Received


async def _partitions(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    tps: list[TopicPartition] = []
    for topic in sorted(set(topics)):
        found = consumer.partitions_for_topic(topic)
        if found is None:
            await consumer._client.force_metadata_update()  # first contact
            found = consumer.partitions_for_topic(topic) or set()
        tps += [TopicPartition(topic, p) for p in sorted(found)]
    return tps


async def read_log(
    bootstrap: str,
    topics: Iterable[str],
    *,
    wait_seconds: float = 120.0,
    security: KafkaSecurity | None = None,
) -> list[Received]:
    """Every record of ``topics`` up to the end offsets now, ordered by the broker's timestamp
    (then topic, partition, offset): one case's events from one producer keep their order; the
    handlers tolerate the rest arriving in another order, as they do live. ``security``: how
    to connect; by default the ``KAFKA_SECURITY_PROTOCOL``… environment, as the service's
    own broker does (the replay command runs with the service's environment)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **client_options(security if security is not None else KafkaSecurity()),
    )
    try:
        await consumer.start()  # a failed start still closes the client (finally)
        tps = await _partitions(consumer, topics)
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > starts[tp]}
        found: list[tuple[int, Received]] = []
        async with asyncio.timeout(wait_seconds):
            while pending:
                batch = await consumer.getmany(*pending, timeout_ms=500)
                for tp, records in batch.items():
                    for r in records:
                        if r.offset < ends[tp]:  # what came after the start is not replayed
                            found.append((r.timestamp, _received(r)))
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
        found.sort(key=lambda f: (f[0], f[1].topic, f[1].partition, f[1].offset))
        return [r for _, r in found]
    finally:
        await consumer.stop()


def _received(r: ConsumerRecord[bytes, bytes]) -> Received:
    return Received(r.topic, r.partition, r.offset, r.key, r.value or b"", list(r.headers or ()))
