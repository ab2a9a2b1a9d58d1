"""Scenario 5: poison messages of every kind on every input topic, on every partition,
under the steady load. Malformed, wrong-schema and oversize messages end in the dead-letter
topic once per consuming group (the oversize copy truncated, its full copy parked); unknown
types and versions are parked in each consuming service's parked_events; the load's events
that came later on the same partitions were handled (its cases all converge)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from shared.contract import Topics
from stack.stack import CONSUMER_GROUPS
from tests.faults import scenario
from tests.faults.invariants import _fetch
from tests.faults.load import Load
from tests.helpers import eventually, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

PARTITIONS = 3
OVERSIZE_BYTES = 1_020_000  # near the producer's 1 MiB limit; its dead-letter copy is not
DEAD_LETTERED = ("invalid_json", "wrong_schema", "oversize")
PARKED = {"unknown_type": "unknown_type", "unknown_version": "unknown_version"}
# topic → [(service, consumer name, group id)] of the groups that read it
READERS: dict[str, list[tuple[str, str, str]]] = {}
for _service, _groups in CONSUMER_GROUPS.items():
    for _group, _topics in _groups.items():
        for _topic in _topics:
            READERS.setdefault(_topic, []).append(
                (_service, _group.removeprefix(f"whistle-{_service}-"), _group)
            )
INPUT_TOPICS = sorted(READERS)


def partition_of(key: bytes) -> int:
    """The partition the producers' default partitioner (murmur2) gives ``key``."""
    return DefaultPartitioner()(key, list(range(PARTITIONS)), list(range(PARTITIONS)))


def key_on(partition: int) -> bytes:
    while True:
        key = str(uuid.uuid4()).encode()
        if partition_of(key) == partition:
            return key


def envelope(key: bytes, type_: str, version: int, payload: dict) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "version": version,
        "case_id": key.decode(),
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "poison",
        "payload": payload,
    }


def poison(kind: str, key: bytes) -> bytes:
    facts = {
        "case_no": "YA-POISON",
        "area_path": "YA/YA01/YA0101/YA0101-01",
        "category": "E0101",
        "priority": "normal",
    }
    if kind == "invalid_json":
        return b'{"type": "case.whistled", "version": 1, "payload": {'
    if kind == "wrong_schema":
        return json.dumps(
            {
                "type": "case.whistled",
                "version": 1,
                "event_id": "not-a-uuid",
                "case_id": key.decode(),
                "payload": "nothing",
            }
        ).encode()
    if kind == "unknown_type":
        return json.dumps(envelope(key, "case.teleported", 1, facts)).encode()
    if kind == "unknown_version":
        return json.dumps(envelope(key, "case.whistled", 99, facts)).encode()
    assert kind == "oversize"  # a known event whose address is far too long for its schema
    body = envelope(
        key,
        "case.whistled",
        1,
        {
            **facts,
            "grid_code": "YA0101-01",
            "description": "超长",
            "departments": [],
            "location": {"address": ""},
        },
    )
    room = OVERSIZE_BYTES - len(json.dumps(body).encode())
    body["payload"]["location"]["address"] = "x" * room
    return json.dumps(body).encode()


async def send_poison(bootstrap: str) -> list[dict]:
    """Every kind on every partition of every input topic; returns what was sent where."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=1_048_576)
    await producer.start()
    sent = []
    try:
        for topic in INPUT_TOPICS:
            for p in range(PARTITIONS):
                for kind in (*DEAD_LETTERED, *PARKED):
                    key = key_on(p)
                    value = poison(kind, key)
                    meta = await producer.send_and_wait(topic, value, key=key, partition=p)
                    sent.append(
                        {
                            "topic": topic,
                            "partition": p,
                            "offset": meta.offset,
                            "kind": kind,
                            "bytes": len(value),
                        }
                    )
    finally:
        await producer.stop()
    return sent


async def dead_letters(bootstrap: str) -> dict[tuple[str, int, int, str], list[dict[str, str]]]:
    """The dead-letter topic's records by (original topic, partition, offset, group)."""
    out: dict[tuple[str, int, int, str], list[dict[str, str]]] = {}
    for r in await read_topic(bootstrap, Topics.DEAD_LETTER, timeout=10):
        h = {k: v.decode() for k, v in r.headers}
        where = (
            h["dlt-original-topic"],
            int(h["dlt-original-partition"]),
            int(h["dlt-original-offset"]),
            h["dlt-consumer-group"],
        )
        out.setdefault(where, []).append({**h, "bytes": str(len(r.value))})
    return out


async def parked_rows(stack) -> dict[tuple[str, str, int, int], list[str]]:
    """Every service's parked events by (consumer, topic, partition, offset) → reasons."""
    out: dict[tuple[str, str, int, int], list[str]] = {}
    for service in CONSUMER_GROUPS:
        for r in await _fetch(
            stack.dsn(service),
            'SELECT consumer, topic, "partition", "offset", reason FROM parked_events',
        ):
            out.setdefault((r["consumer"], r["topic"], r["partition"], r["offset"]), []).append(
                r["reason"]
            )
    return out


async def test_poison_is_dead_lettered_or_parked_and_blocks_nothing(stack, results):
    sent: list[dict] = []
    poisoned_at: list[float] = []

    async def inject(load: Load) -> str:
        await asyncio.sleep(3)
        poisoned_at.append(time.monotonic())
        sent.extend(await send_poison(stack.kafka.bootstrap))
        kinds = Counter(s["kind"] for s in sent)
        return (
            f"{len(sent)} poison messages ({', '.join(f'{n} {k}' for k, n in kinds.items())}"
            f") on {len(INPUT_TOPICS)} topics × {PARTITIONS} partitions"
        )

    async def check(load: Load) -> None:
        expect_dlt = {
            (s["topic"], s["partition"], s["offset"], group): s
            for s in sent
            if s["kind"] in DEAD_LETTERED
            for _, _, group in READERS[s["topic"]]
        }
        expect_parked = {
            (name, s["topic"], s["partition"], s["offset"]): s
            for s in sent
            if s["kind"] in PARKED
            for _, name, _ in READERS[s["topic"]]
        }

        async def all_there():
            dlt, parked = await dead_letters(stack.kafka.bootstrap), await parked_rows(stack)
            missing = [k for k in expect_dlt if k not in dlt]
            missing += [k for k in expect_parked if k not in parked]
            return (dlt, parked) if not missing else None

        dlt, parked = await eventually(
            all_there,
            timeout=60,
            interval=1,
            message="every poison message dead-lettered or parked",
        )
        for where, s in expect_dlt.items():
            copies = dlt[where]
            assert len(copies) == 1, (where, copies)  # once per consuming group
            h = copies[0]
            if s["kind"] == "oversize":  # truncated; the whole message parked
                assert h.get("dlt-truncated") == "true" and int(h["bytes"]) < s["bytes"], h
                assert int(h["dlt-original-bytes"]) == s["bytes"], h
                name = next(n for _, n, g in READERS[s["topic"]] if g == where[3])
                assert parked[(name, *where[:3])] == ["dead_letter_oversize"]
            else:
                assert "dlt-truncated" not in h, h
            assert h["dlt-error-type"] in ("ValidationError", "JSONDecodeError"), h
        for where, s in expect_parked.items():
            assert parked[where] == [PARKED[s["kind"]]], (where, parked[where])
        # The load's events that came after the poison, on every partition, were handled.
        later = Counter(
            partition_of(c.case_id.encode())
            for c in load.stats.accepted
            if c.started_at > poisoned_at[0] + 1
        )
        assert set(later) == set(range(PARTITIONS)), later

    ran, _ = await scenario.run(
        stack,
        results,
        "poison (5)",
        duration=12,
        inject=inject,
        faults="5 kinds × 3 topics × 3 partitions",
        check=check,
        quiet=False,
        tag="poison",
    )
    # Each group reading a topic: 3 dead letters per partition; 2 unknown ones parked, and
    # the oversize one's full copy.
    expected_dlt = len(DEAD_LETTERED) * sum(PARTITIONS * len(READERS[t]) for t in INPUT_TOPICS)
    expected_parked = (len(PARKED) + 1) * sum(PARTITIONS * len(READERS[t]) for t in INPUT_TOPICS)
    assert ran.dead_letters == expected_dlt, (ran.dead_letters, expected_dlt)
    assert ran.parked == expected_parked, (ran.parked, expected_parked)
