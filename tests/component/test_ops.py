"""The operators' commands (shared/ops.py, issue 13 point 9) on the real PostgreSQL and
broker: a dead-lettered message is listed with its error, a dry run changes nothing, a
replay by id handles it once (a second replay is a no-op), and parked events and parked
outbox rows are re-driven."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker

from shared import db, migrations, ops, outbox, parking
from shared.broker import EventConsumer, on, start_broker
from shared.contract import CaseClosed, Priority, new_event
from shared.faults import RetryPolicy
from shared.outbox import OutboxRelay
from shared.service import Runtime, create_service_app
from shared.settings import BaseServiceSettings
from tests.conftest import migrated_database
from tests.helpers import eventually, publish_raw, read_topic

ROOT = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(
    max_attempts=2,
    initial_backoff_seconds=0.05,
    max_backoff_seconds=0.2,
    transient_retry_seconds=30,
    dead_letter_publish_attempts=3,
)


def closed(note: str) -> bytes:
    return new_event(
        CaseClosed(
            case_no="YA-1",
            area_path="YA/YA01",
            category="E0101",
            priority=Priority.NORMAL,
            note=note,
        ),
        case_id=uuid.uuid4(),
        producer="test",
    ).to_bytes()


class Service:
    """A small service: one consumer whose handler records notes (and fails on demand)."""

    def __init__(self, dsn: str, bootstrap: str) -> None:
        self.dsn = dsn
        self.bootstrap = bootstrap
        self.name = f"c{uuid.uuid4().hex[:8]}"
        self.topic = f"test.ops.{self.name}"
        self.failing: set[str] = set()

    def settings(self) -> BaseServiceSettings:
        return BaseServiceSettings(
            service_name="opstest",
            environment="test",
            database_url=self.dsn,
            kafka_bootstrap_servers=self.bootstrap,
            kafka_idempotent_producer=False,
            log_json=False,
            log_level="WARNING",
        )

    async def handler(self, conn, event) -> None:
        if event.payload.note in self.failing:
            raise RuntimeError(f"cannot handle {event.payload.note}")
        await conn.execute(
            "INSERT INTO effects VALUES ($1, $2)", event.event_id, event.payload.note
        )

    def consumer(self, broker: KafkaBroker, pool) -> EventConsumer:
        c = EventConsumer(
            service="opstest",
            name=self.name,
            pool=pool,
            broker=broker,
            routes=[on(CaseClosed, self.handler)],
            policy=FAST,
        )
        c.subscribe(self.topic, description="test")
        return c

    def create_app(self, settings: BaseServiceSettings):
        def register(rt: Runtime) -> None:
            self.consumer(rt.broker, rt.get_pool)

        return create_service_app(
            settings, title="ops test", description="ops test", routers=[], consumers=register
        )

    async def ops(self, capsys, *argv: str) -> Any:
        capsys.readouterr()
        code = await ops.amain(
            ["--json", *argv], settings=self.settings, create_app=self.create_app
        )
        assert code == 0
        return json.loads(capsys.readouterr().out)

    async def notes(self) -> list[str]:
        pool = await db.connect_once(self.dsn)
        try:
            return sorted(r["note"] for r in await pool.fetch("SELECT note FROM effects"))
        finally:
            await pool.close()


@pytest.fixture
async def service(empty_db, kafka_server):
    conn = await db.connect_once(empty_db)
    await migrations.apply(conn, [("shared", migrations.SHARED_MIGRATIONS)])
    await conn.execute("CREATE TABLE effects (event_id uuid, note text)")
    await conn.close()
    return Service(empty_db, kafka_server.bootstrap)


async def test_dead_letters_are_listed_replayed_by_id_once_and_a_dry_run_changes_nothing(
    service, pool_factory, capsys
):
    # The live consumer dead-letters "bad" (its handler fails) and moves on to "last".
    service.failing.add("bad")
    pool = await pool_factory(service.dsn)
    broker = KafkaBroker(service.bootstrap)
    service.consumer(broker, lambda: pool)
    await start_broker(broker, 5)
    try:
        for note in ("bad", "last"):
            await publish_raw(service.bootstrap, service.topic, closed(note), b"k")
        await eventually(lambda: _has(service, "last"), timeout=60, message="last handled")
    finally:
        await broker.stop()
    assert await service.notes() == ["last"]

    [listed] = await service.ops(capsys, "dead-letters", "list")
    assert listed["consumer"] == service.name and listed["type"] == CaseClosed.TYPE
    assert listed["error"] == "RuntimeError: cannot handle bad"
    assert listed["origin"].startswith(service.topic) and listed["handled_since"] is False
    dl_id = listed["id"]
    assert await service.ops(
        capsys, "dead-letters", "list", "--consumer", service.name, "--since", "1h"
    ) == [listed]
    shown = await service.ops(capsys, "dead-letters", "show", dl_id)
    assert shown["body"]["payload"]["note"] == "bad"
    assert shown["headers"]["dlt-error-type"] == "RuntimeError"

    # A dry run says what it would do and does nothing.
    [dry] = await service.ops(capsys, "dead-letters", "replay", dl_id, "--dry-run")
    assert dry["outcome"] == "would_replay"
    assert await service.notes() == ["last"]

    # The bug is fixed: the replay handles it, once; a second replay is a no-op.
    service.failing.clear()
    [done] = await service.ops(capsys, "dead-letters", "replay", dl_id)
    assert done["outcome"] == "handled"
    assert await service.notes() == ["bad", "last"]
    [again] = await service.ops(
        capsys, "dead-letters", "replay", "--from", "0", "--consumer", service.name
    )
    assert again["id"] == dl_id and again["outcome"] == "duplicate"
    assert await service.notes() == ["bad", "last"]
    [listed] = await service.ops(capsys, "dead-letters", "list", "--consumer", service.name)
    assert listed["handled_since"] is True
    [dry] = await service.ops(capsys, "dead-letters", "replay", dl_id, "--dry-run")
    assert dry["outcome"] == "already_handled"

    # The table for people.
    capsys.readouterr()
    await ops.amain(
        ["dead-letters", "list", "--consumer", service.name],
        settings=service.settings,
        create_app=service.create_app,
    )
    table = capsys.readouterr().out
    assert dl_id in table and "RuntimeError: cannot handle bad" in table


async def _has(service: Service, note: str) -> bool:
    return note in await service.notes()


async def test_parked_events_are_listed_and_replayed(service, pool_factory, capsys):
    pool = await pool_factory(service.dsn)
    # A message whose dead-letter copy the broker kept refusing: parked whole.
    message = parking.Received(service.topic, 0, 7, b"k", closed("parked"))
    parked_id = await parking.park(
        pool,
        service.name,
        message,
        reason=parking.DEAD_LETTER_FAILED,
        type=CaseClosed.TYPE,
        version=1,
        error="RuntimeError: boom; dead-letter publish",
    )
    [row] = await service.ops(capsys, "parked", "list")
    assert (row["id"], row["reason"], row["consumer"]) == (
        parked_id,
        "dead_letter_failed",
        service.name,
    )
    assert (await service.ops(capsys, "parked", "show", str(parked_id)))["body"]["payload"][
        "note"
    ] == "parked"

    [dry] = await service.ops(capsys, "parked", "replay", "--dry-run")
    assert dry["outcome"] == "would_replay"
    assert await service.notes() == []
    assert len(await parking.pending(pool, service.name)) == 1

    [done] = await service.ops(capsys, "parked", "replay", str(parked_id))
    assert done["outcome"] == "handled"
    assert await service.notes() == ["parked"]
    assert await parking.pending(pool, service.name) == []
    assert await service.ops(capsys, "parked", "replay") == []
    assert await service.ops(capsys, "parked", "list") == []
    assert await service.notes() == ["parked"]


async def test_parked_outbox_rows_are_redriven(service, pool_factory, kafka_server, capsys):
    pool = await pool_factory(service.dsn)
    topic = f"test.ops.outbox.{uuid.uuid4().hex[:8]}"
    event = new_event(
        CaseClosed(
            case_no="YA-1",
            area_path="YA/YA01",
            category="E0101",
            priority=Priority.NORMAL,
            note="stuck",
        ),
        case_id=uuid.uuid4(),
        producer="test",
    )
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, event)
        await conn.execute(
            "UPDATE outbox SET topic = $1, parked_at = now(), attempts = 5,"
            " last_error = 'MessageSizeTooLargeError()'",
            topic,
        )
    [row] = await service.ops(capsys, "outbox", "parked")
    assert row["last_error"] == "MessageSizeTooLargeError()" and row["attempts"] == 5

    [dry] = await service.ops(capsys, "outbox", "redrive", "--dry-run")
    assert dry["outcome"] == "would_redrive"
    assert len(await outbox.parked(pool)) == 1

    [done] = await service.ops(capsys, "outbox", "redrive", str(row["id"]))
    assert done["outcome"] == "redriven"
    assert await outbox.parked(pool) == []
    assert await service.ops(capsys, "outbox", "redrive") == []

    # The relay publishes it now.
    broker = KafkaBroker(kafka_server.bootstrap)
    await broker.start()
    try:

        async def publish(t, key, value, headers):
            await broker.publish(value, t, key=key, headers=headers)

        relay = OutboxRelay(
            pool,
            service.dsn,
            publish,
            service="opstest",
            lease=timedelta(seconds=30),
            publish_timeout=5,
        )
        assert await relay.publish_batch() == 1
    finally:
        await broker.stop()
    [record] = await read_topic(kafka_server.bootstrap, topic)
    assert json.loads(record.value)["event_id"] == str(event.event_id)


async def test_the_service_entry_point_runs_the_commands(pg_server, kafka_server):
    dsn = await migrated_database(pg_server, "dispatch")
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_server.bootstrap,
        "ENVIRONMENT": "test",
        "KAFKA_IDEMPOTENT_PRODUCER": "false",
    }

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "services.dispatch", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    for argv in (
        ["dead-letters", "list", "--json"],
        ["parked", "list", "--json"],
        ["outbox", "parked", "--json"],
    ):
        result = await asyncio.to_thread(run, *argv)
        assert result.returncode == 0, result.stderr
        assert isinstance(json.loads(result.stdout), list), result.stdout
    result = await asyncio.to_thread(run, "parked", "list", "--consumer", "nope")
    assert result.returncode != 0 and "whistles" in result.stderr


async def test_the_operators_command_republishes_with_a_dry_run(
    service, pool_factory, kafka_server, capsys
):
    pool = await pool_factory(service.dsn)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(
            conn,
            *(
                new_event(
                    CaseClosed(
                        case_no="YA-1",
                        area_path="YA/YA01",
                        category="E0101",
                        priority=Priority.NORMAL,
                        note=note,
                    ),
                    case_id=uuid.uuid4(),
                    producer="test",
                )
                for note in ("sent an hour ago", "sent a minute ago")
            ),
        )
        await conn.execute("UPDATE outbox SET topic = 'test.republish.ops'")
    await pool.execute(
        "UPDATE outbox SET sent_at = now() - interval '1 hour'"
        " WHERE payload->'payload'->>'note' = 'sent an hour ago'"
    )
    await pool.execute(
        "UPDATE outbox SET sent_at = now() - interval '1 minute' WHERE sent_at IS NULL"
    )

    [dry] = await service.ops(capsys, "outbox", "republish", "--since", "10m", "--dry-run")
    assert (dry["rows"], dry["outcome"]) == (1, "would_republish")
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0

    [done] = await service.ops(capsys, "outbox", "republish", "--since", "10m")
    assert (done["rows"], done["outcome"]) == (1, "republished")
    assert await pool.fetchval(
        "SELECT payload->'payload'->>'note' FROM outbox WHERE sent_at IS NULL"
    ) == ("sent a minute ago")
