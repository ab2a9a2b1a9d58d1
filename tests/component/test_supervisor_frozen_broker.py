"""The embedded stack's supervisor reads the broker every 2 s (its safe point). A broker that
dies or freezes in the middle of a reading must not hold the supervisor: aiokafka retries a
group coordinator without end, and a supervisor stuck so never saw the broker die and never
started a new one (a CI run's broker-crash scenario: no restart within 60 s). A private real
broker, frozen with SIGSTOP."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from types import SimpleNamespace

import pytest

from shared.broker import ensure_topics
from stack.kafka import EmbeddedKafka
from stack.supervisor import Supervisor
from tests.conftest import free_port


@pytest.fixture
def broker(tmp_path):
    kafka = EmbeddedKafka(free_port(), tmp_path / "broker.log")
    kafka.start()
    try:
        yield kafka
    finally:
        if kafka.process is not None and kafka.process.poll() is None:
            os.kill(kafka.process.pid, signal.SIGCONT)
        kafka.stop()


async def test_a_reading_of_a_frozen_broker_gives_up_and_starts_afresh(broker, tmp_path):
    await ensure_topics(broker.bootstrap)
    stack = SimpleNamespace(kafka=broker, config=SimpleNamespace(data_dir=tmp_path))
    supervisor = Supervisor(stack, sample_timeout=3)  # type: ignore[arg-type]
    assert await supervisor.sample_bounded()  # a live broker: the clients are made and read
    assert supervisor._probe is not None and supervisor._members
    assert broker.process is not None
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        ok = await asyncio.wait_for(supervisor.sample_bounded(), timeout=30)
        took = time.monotonic() - started
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)
    assert not ok and took < 3 + 5 + 2  # the reading's limit, the clients' stop, slack
    assert supervisor._probe is None and not supervisor._members  # closed: a fresh start
    assert await supervisor.sample_bounded()  # thawed: reading again works
    await supervisor._close_clients()
