"""The embedded stack keeps itself up (issue 13, point 6; stack/supervisor.py): the events a
dead broker held that no one had read yet are published again from the outboxes, with its
dead letters; and a stack that went down without a clean stop publishes them again at its
next start. (Killed services and a PostgreSQL fast stop under load: tests/faults.) On its
own stack (it kills things), in a temporary folder."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from stack.stack import APPS, Stack, StackConfig
from tests.conftest import free_port
from shared.contract import Topics
from tests.e2e.cases import report_and_whistle
from tests.helpers import publish_raw, read_topic

pytestmark = pytest.mark.e2e


def config_for(data_dir, ports=None) -> StackConfig:
    return StackConfig(
        data_dir=data_dir,
        pg_port=free_port(),
        kafka_port=free_port(),
        ports=ports or {s: free_port() for s in APPS},
        env={"*": {"OUTBOX_POLL_INTERVAL_SECONDS": "0.5"}},
        demo_data=True,
        say=lambda line: None,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    s = Stack(config_for(tmp_path_factory.mktemp("supervised")))
    try:
        s.start()
        yield s
    finally:
        s.stop()


async def wait_for(check, timeout: float = 60.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        await asyncio.sleep(0.5)


def restarted(stack: Stack, what: str, after: float) -> bool:
    return any(r.what == what and r.at > after for r in stack.restarts)


async def messages(stack: Stack, case_ids: list[str]) -> dict[str, set[tuple[str, str]]]:
    """Per case, the (recipient, type) of notify's inbox messages."""
    conn = await asyncpg.connect(stack.dsn("notify"))
    try:
        rows = await conn.fetch(
            "SELECT case_id::text, recipient_id, type FROM inbox_messages"
            " WHERE case_id = ANY($1::uuid[])",
            case_ids,
        )
        doubled = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE case_id = ANY($1::uuid[])"
            " GROUP BY event_id, recipient_id, channel HAVING count(*) > 1) d",
            case_ids,
        )
    finally:
        await conn.close()
    assert doubled == 0, "a message was delivered twice to one recipient on one channel"
    found: dict[str, set[tuple[str, str]]] = {c: set() for c in case_ids}
    for r in rows:
        found[r["case_id"]].add((r["recipient_id"], r["type"]))
    return found


async def assignments(stack: Stack, case_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(stack.dsn("dispatch"))
    try:
        rows = await conn.fetch(
            "SELECT case_id::text, count(*) AS n FROM assignments"
            " WHERE case_id = ANY($1::uuid[]) GROUP BY case_id",
            case_ids,
        )
    finally:
        await conn.close()
    return {r["case_id"]: r["n"] for r in rows}


async def delivered_like(stack: Stack, control: str, cases: list[str]) -> bool:
    """Each case got the same messages as the control case (same grid, same category)."""
    found = await messages(stack, [control, *cases])
    return bool(found[control]) and all(found[c] == found[control] for c in cases)


async def test_events_unread_when_the_broker_dies_are_published_again(stack):
    """notify is frozen, so what intake and dispatch publish stays unread in the broker;
    the broker is killed (SIGKILL): without republishing from the outboxes those messages
    would never reach the departments."""
    async with httpx.AsyncClient(timeout=20) as http:
        control = (await report_and_whistle(http, stack, f"control {uuid.uuid4()}"))["id"]
        await wait_for(lambda: delivered_like(stack, control, []), 60, "control delivered")
        os.kill(stack.processes["notify"].pid, signal.SIGSTOP)
        try:
            lost = [(await report_and_whistle(http, stack, f"unread {i}"))["id"] for i in range(3)]
            await wait_for(
                lambda: _all_dispatched(stack, lost), 60, "dispatched while notify is frozen"
            )
            # dispatch's relay has sent the assignments (they wait unread in the broker)
            await wait_for(lambda: outbox_sent(stack, "dispatch"), 60, "dispatch's outbox sent")
            assert (await messages(stack, lost)) == {c: set() for c in lost}
            # And a dead letter: the dead-letter topic dies with the broker too.
            await publish_raw(stack.kafka.bootstrap, Topics.INTAKE, poison, b"poison")
            await wait_for(lambda: poisoned(stack, RUNNING), 60, "the poison dead-lettered")
            before = time.monotonic()
            os.kill(stack.kafka.process.pid, signal.SIGKILL)
            await wait_for(
                lambda: asyncio.sleep(0, restarted(stack, "broker", before)), 60, "broker restarted"
            )
        finally:
            os.kill(stack.processes["notify"].pid, signal.SIGCONT)
        [restart] = [r for r in stack.restarts if r.what == "broker" and r.at > before]
        assert restart.republished > 0
        # dispatch's and tracking's consumers (not frozen) dead-lettered it before the kill;
        # the new broker's dead-letter topic has their copies again.
        assert await poisoned(stack, RUNNING)
        await wait_for(
            lambda: delivered_like(stack, control, lost),
            90,
            "the unread events delivered after the broker came back",
        )
        assert await assignments(stack, lost) == {c: 1 for c in lost}
        # And the loop works on the new broker.
        after = (await report_and_whistle(http, stack, f"new broker {uuid.uuid4()}"))["id"]
        await wait_for(
            lambda: delivered_like(stack, control, [after]),
            90,
            "a new case delivered on the new broker",
        )


poison = f"not json {uuid.uuid4()}".encode()


RUNNING = {"whistle-dispatch-whistles", "whistle-tracking-timeline"}  # intake's readers


async def poisoned(stack: Stack, groups: set[str]) -> bool:
    """Each of ``groups`` has its dead letter of ``poison`` in the dead-letter topic."""
    records = await read_topic(stack.kafka.bootstrap, Topics.DEAD_LETTER, timeout=3)
    return groups <= {
        dict(r.headers)["dlt-consumer-group"].decode() for r in records if r.value == poison
    }


async def outbox_sent(stack: Stack, service: str) -> bool:
    """Everything ``service`` wrote to its outbox has been published to the broker."""
    conn = await asyncpg.connect(stack.dsn(service))
    try:
        return not await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    finally:
        await conn.close()


async def _all_dispatched(stack: Stack, cases: list[str]) -> bool:
    return len(await assignments(stack, cases)) == len(cases)


async def test_after_a_crash_of_the_whole_stack_the_next_start_publishes_again(stack):
    """The machine goes down (everything SIGKILLed, no clean stop) while notify had not read
    the last events: the next start over the same data folder publishes them again."""
    async with httpx.AsyncClient(timeout=20) as http:
        control = (await report_and_whistle(http, stack, f"control {uuid.uuid4()}"))["id"]
        await wait_for(lambda: delivered_like(stack, control, []), 60, "control delivered")
        os.kill(stack.processes["notify"].pid, signal.SIGSTOP)
        lost = [(await report_and_whistle(http, stack, f"crash {i}"))["id"] for i in range(2)]
        await wait_for(lambda: _all_dispatched(stack, lost), 60, "dispatched")
        await wait_for(lambda: outbox_sent(stack, "dispatch"), 60, "dispatch's outbox sent")
    stack.supervisor.stop()
    for proc in [*stack.processes.values(), stack.kafka.process, stack.postgres.process]:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert not stack.supervisor.safe_point.clean
    again = Stack(config_for(stack.config.data_dir, stack.config.ports))
    try:
        await asyncio.to_thread(again.start)
        await wait_for(
            lambda: delivered_like(again, control, lost),
            90,
            "the unread events delivered after the restart",
        )
    finally:
        await asyncio.to_thread(again.stop)
    assert again.supervisor.safe_point.clean  # a clean stop: nothing to publish next time
