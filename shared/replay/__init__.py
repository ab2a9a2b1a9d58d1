"""Projection replay: rebuild a service's projection from the event log into a fresh database
beside the live one and compare the two (``python -m services.<name> replay [--compare]
[--keep]``).

1. A fresh database on the live one's server (``whistle_<service>_replay_<stamp>``) gets the
   service's migrations and a copy of the reference tables its handlers read (``Projection``).
2. Every record of the topics the service's consumers hear is read from the earliest offset up
   to the end offsets taken at the start (``log.read_log``: no group, nothing committed) and fed
   through the SAME decoding (``parse_event``), routes and handlers the live consumers use
   (``EventConsumer.handle_in``: inbox claim, then the route of the payload's class), a batch
   per transaction as the live batch consumer does, each event in its own savepoint. No
   outbox relay, no scheduler, no broker publishing: what handlers write to the outbox stays
   in the fresh database.
3. ``--compare``: the declared tables, live (one read-only snapshot) against rebuilt
   (``compare``); a summary, the first differing rows, exit 1 on any difference.
4. The fresh database is dropped unless ``--keep``.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import structlog
from pydantic import ValidationError

from shared import db, deferred, migrations
from shared.broker import EventConsumer
from shared.contract import UnknownEventType, parse_event
from shared.parking import Received
from shared.replay.compare import TableDiff, compare, report
from shared.replay.log import read_log
from shared.replay.spec import NotReplayable, Projection, Replay, Table

__all__ = ["Fed", "NotReplayable", "Projection", "Replay", "Table", "replay"]

log = structlog.get_logger()
BATCH = 200  # events per transaction, as a batch consumer takes them

Print = Callable[[str], None]


def database_dsn(dsn: str, name: str) -> str:
    """``dsn`` with its database replaced by ``name``."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


def replay_name(service: str, now: datetime) -> str:
    return f"whistle_{service}_replay_{now:%Y%m%d%H%M%S}_{secrets.token_hex(2)}"


@dataclass
class Fed:
    """What the replay did with the records: outcome counts, and the first failures."""

    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


async def _copy_tables(source: db.Conn, target: db.Conn, tables: Sequence[str]) -> None:
    for table in tables:
        rows = await source.fetch(f'SELECT * FROM "{table}"')
        if not rows:
            continue
        columns = list(rows[0].keys())
        marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        names = ", ".join(f'"{c}"' for c in columns)
        await target.executemany(
            f'INSERT INTO "{table}" ({names}) VALUES ({marks})', [tuple(r) for r in rows]
        )


async def feed(
    conn: db.Conn, consumers: Sequence[EventConsumer], records: Sequence[Received]
) -> Fed:
    """Each record through the consumers that hear its topic, ``BATCH`` per transaction."""
    fed = Fed()
    for start in range(0, len(records), BATCH):
        async with conn.transaction(), deferred.batch(conn):
            for message in records[start : start + BATCH]:
                await _feed_one(conn, consumers, message, fed)
    return fed


async def _feed_one(
    conn: db.Conn, consumers: Sequence[EventConsumer], message: Received, fed: Fed
) -> None:
    try:
        event = parse_event(message.value)
    except (UnknownEventType, ValidationError, ValueError) as exc:
        # live, it was parked or dead-lettered: not in the projection either
        fed.outcomes["undecodable"] += 1
        fed.failures.append(f"{message.topic}[{message.partition}]@{message.offset}: {exc!r}")
        return
    for consumer in consumers:
        if message.topic not in consumer.topics:
            continue
        try:
            async with conn.transaction():  # a savepoint: a failing event leaves nothing
                fed.outcomes[await consumer.handle_in(conn, event)] += 1
        except Exception as exc:
            fed.outcomes["failed"] += 1
            fed.failures.append(f"{consumer.name} {event.type} {event.event_id}: {exc!r}"[:500])


async def _live_snapshot(dsn: str, tables: tuple[Table, ...], fresh: db.Conn) -> list[TableDiff]:
    live = await db.connect_once(dsn)
    try:
        async with live.transaction(isolation="repeatable_read", readonly=True):
            return await compare(live, fresh, tables)
    finally:
        await live.close()


async def replay(
    *,
    service: str,
    dsn: str,
    bootstrap: str,
    consumers: Sequence[EventConsumer],
    projection: Replay,
    migrations_dir: Path,
    compare_live: bool,
    keep: bool,
    limit: int = 10,
    out: Print = print,
) -> int:
    """The command: 0 rebuilt (and, compared, the same), 1 a difference or an event that
    failed, 2 refused (the service's state is not a projection of the log)."""
    if isinstance(projection, NotReplayable):
        out(f"{service}: 不能重放 — {projection.zh}")
        out(f"{service}: cannot replay — {projection.en}")
        return 2
    name = replay_name(service, datetime.now(UTC))
    admin = await db.connect_once(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        out(f"fresh database {name}")
        return await _rebuild(
            service,
            dsn,
            bootstrap,
            consumers,
            projection,
            migrations_dir,
            name,
            compare_live=compare_live,
            limit=limit,
            out=out,
        )
    finally:
        if keep:
            out(f"kept {name}")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _rebuild(
    service: str,
    dsn: str,
    bootstrap: str,
    consumers: Sequence[EventConsumer],
    projection: Projection,
    migrations_dir: Path,
    name: str,
    *,
    compare_live: bool,
    limit: int,
    out: Print,
) -> int:
    fresh = await db.connect_once(database_dsn(dsn, name))
    try:
        sources = [
            ("shared", migrations.SHARED_MIGRATIONS),
            (migrations_dir.parent.name, migrations_dir),
        ]
        await migrations.apply(fresh, sources)
        live = await db.connect_once(dsn)
        try:
            async with live.transaction(readonly=True):
                await _copy_tables(live, fresh, projection.reference)
        finally:
            await live.close()
        topics = sorted({t for c in consumers for t in c.topics})
        records = await read_log(bootstrap, topics)
        fed = await feed(fresh, consumers, records)
        out(
            f"{service}: {len(records)} records of {', '.join(topics)} replayed: "
            + ", ".join(f"{k} {v}" for k, v in sorted(fed.outcomes.items()))
        )
        for failure in fed.failures[:limit]:
            out(f"  failed: {failure}")
        log.info("projection_replayed", database=name, records=len(records), **fed.outcomes)
        if not compare_live:
            return 1 if fed.outcomes["failed"] else 0
        diffs = await _live_snapshot(dsn, projection.tables, fresh)
        for line in report(diffs, limit=limit):
            out(line)
        for table, why in projection.not_compared:
            out(f"  not compared: {table} — {why}")
        same = all(d.same for d in diffs)
        out(
            "no difference"
            if same
            else "DIFFERENT: the live projection is not what the log rebuilds"
        )
        return 0 if same and not fed.outcomes["failed"] else 1
    finally:
        await fresh.close()
