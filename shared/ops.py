"""Operators' commands for what got stuck, run through a service's own entry point (its
settings from the environment, its own consumers):

    python -m services.<name> dead-letters list [--consumer X] [--since 2h|ISO] [--limit N]
    python -m services.<name> dead-letters show P:O
    python -m services.<name> dead-letters replay (P:O… | --from O --to O [--partition P]) [--dry-run]
    python -m services.<name> parked list|show ID|replay [ID…] [--reason R] [--dry-run]
    python -m services.<name> outbox parked|redrive [ID…] [--dry-run]
    python -m services.<name> outbox republish --since 2h|ISO [--dry-run]   (broker loss)

Every command prints a table, or JSON with ``--json``. A dead letter is named by where it
sits in ``whistle.deadletter.v1``, ``partition:offset``; the topic is read from its beginning
with manual assignment and no group, so nothing is committed. A replay feeds each message
back through the consumer that dead-lettered it (``EventConsumer.process``): the inbox makes
a second handling a no-op, and a message that fails again is dead-lettered again.

They live behind the services' entry points (shared/cli.py) rather than in a
``python -m shared.ops`` of their own because replaying needs the service's handlers, and
shared never imports a service: the entry point already knows its settings and its app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from shared import db, outbox, parking
from shared.broker import EventConsumer, consumers_of
from shared.contract import Topics
from shared.kafka_security import KafkaSecurity, client_options
from shared.logging import configure_logging, stream_logger_factory
from shared.parking import Received
from shared.settings import BaseServiceSettings

S = TypeVar("S", bound=BaseServiceSettings)

COMMANDS = ("dead-letters", "parked", "outbox")


# -- reading the dead-letter topic ------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def group(self) -> str:
        return self.headers.get("dlt-consumer-group", "")

    @property
    def failed_at(self) -> datetime:
        try:
            return datetime.fromisoformat(self.headers["dlt-failed-at"])
        except (KeyError, ValueError):
            return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    def event(self) -> dict[str, Any]:
        try:
            data = json.loads(self.value)
            return data if isinstance(data, dict) else {}
        except ValueError:
            return {}

    def received(self) -> Received:
        h = self.headers
        return Received(
            h.get("dlt-original-topic", ""),
            int(h.get("dlt-original-partition", -1)),
            int(h.get("dlt-original-offset", -1)),
            self.key,
            self.value,
        )


async def read_dead_letters(
    bootstrap: str, *, wait_seconds: float = 10.0, security: KafkaSecurity | None = None
) -> list[DeadLetter]:
    """Everything in the dead-letter topic now: manual assignment, no group, no commit.
    ``security``: the service's TLS/SASL settings (plaintext when None)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **(client_options(security) if security is not None else {}),
    )
    try:
        await consumer.start()  # a failed start still closes the client (finally)
        partitions = consumer.partitions_for_topic(Topics.DEAD_LETTER)
        if partitions is None:
            await consumer._client.force_metadata_update()  # first contact
            partitions = consumer.partitions_for_topic(Topics.DEAD_LETTER) or set()
        tps = [TopicPartition(Topics.DEAD_LETTER, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        starts = await consumer.beginning_offsets(tps)
        pending = {tp for tp in pending if ends[tp] > starts[tp]}
        found: list[DeadLetter] = []
        async with asyncio.timeout(wait_seconds):
            while pending:
                batch = await consumer.getmany(*pending, timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        found.append(
                            DeadLetter(
                                r.partition,
                                r.offset,
                                r.timestamp,
                                r.key,
                                r.value,
                                {k: v.decode("utf-8", "replace") for k, v in r.headers or ()},
                            )
                        )
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
        return sorted(found, key=lambda d: (d.failed_at, d.partition, d.offset))
    finally:
        await consumer.stop()


def parse_since(text: str) -> datetime:
    """``90m``, ``2h``, ``3d`` ago, or an ISO date/time (UTC unless it says otherwise)."""
    if m := re.fullmatch(r"(\d+)([smhd])", text.strip()):
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m[2]]
        return datetime.now(UTC) - timedelta(**{unit: int(m[1])})
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- output -----------------------------------------------------------------------------------


def _cell(value: Any, width: int = 60) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        value = value.isoformat(timespec="seconds")
    text = str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str = "nothing"
) -> None:
    if not rows:
        print(empty)
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


# -- the commands -----------------------------------------------------------------------------


class Ops:
    """One service's stuck things: its consumers, its database, the broker."""

    def __init__(
        self,
        settings: BaseServiceSettings,
        consumers: list[EventConsumer],
        pool: asyncpg.Pool,
        connect_broker: Callable[[], Any],
        as_json: bool,
    ) -> None:
        self.settings = settings
        self.consumers = consumers
        self.pool = pool
        self._connect_broker = connect_broker
        self.as_json = as_json

    def consumer(self, name: str) -> EventConsumer:
        for c in self.consumers:
            if name in (c.name, c.group_id):
                return c
        names = ", ".join(c.name for c in self.consumers) or "none"
        raise SystemExit(f"{self.settings.service_name} has no consumer {name!r} (it has: {names})")

    def _by_group(self, group: str) -> EventConsumer | None:
        return next((c for c in self.consumers if c.group_id == group), None)

    def out(self, rows: list[dict[str, Any]], columns: Sequence[str], **kw: Any) -> None:
        if self.as_json:
            print_json(rows)
        else:
            print_table(rows, columns, **kw)

    # dead letters

    async def dead_letters(self, consumer: str | None = None) -> list[DeadLetter]:
        groups = (
            {self.consumer(consumer).group_id} if consumer else {c.group_id for c in self.consumers}
        )
        return [
            d
            for d in await read_dead_letters(
                self.settings.kafka_bootstrap_servers, security=self.settings
            )
            if d.group in groups
        ]

    async def _handled(self, letters: Sequence[DeadLetter]) -> dict[str, bool]:
        """Per dead letter: is its event in its consumer's inbox (handled since)?"""
        handled: dict[str, bool] = {}
        for d in letters:
            c = self._by_group(d.group)
            event_id = d.event().get("event_id")
            if c is None or not event_id:
                handled[d.id] = False
                continue
            try:
                handled[d.id] = bool(
                    await self.pool.fetchval(
                        "SELECT true FROM inbox WHERE consumer = $1 AND event_id = $2::uuid",
                        c.name,
                        str(event_id),
                    )
                )
            except asyncpg.DataError:
                handled[d.id] = False
        return handled

    def _summary(self, d: DeadLetter, handled: bool) -> dict[str, Any]:
        event = d.event()
        c = self._by_group(d.group)
        return {
            "id": d.id,
            "partition": d.partition,
            "offset": d.offset,
            "consumer": c.name if c else d.group,
            "origin": f"{d.headers.get('dlt-original-topic')}"
            f"[{d.headers.get('dlt-original-partition')}]"
            f"@{d.headers.get('dlt-original-offset')}",
            "event_id": event.get("event_id"),
            "type": event.get("type"),
            "error": f"{d.headers.get('dlt-error-type', '?')}: {d.headers.get('dlt-error', '')}",
            "failed_at": d.failed_at,
            "truncated": d.headers.get("dlt-truncated") == "true",
            "handled_since": handled,
        }

    async def dl_list(self, args: argparse.Namespace) -> int:
        letters = await self.dead_letters(args.consumer)
        if args.since:
            since = parse_since(args.since)
            letters = [d for d in letters if d.failed_at >= since]
        letters = letters[-args.limit :] if args.limit else letters
        handled = await self._handled(letters)
        self.out(
            [self._summary(d, handled[d.id]) for d in letters],
            ["id", "consumer", "type", "event_id", "failed_at", "handled_since", "error"],
            empty="no dead letters for " + self.settings.service_name,
        )
        return 0

    def _find(self, letters: list[DeadLetter], ident: str) -> DeadLetter:
        for d in letters:
            if ident in (d.id, str(d.event().get("event_id"))):
                return d
        raise SystemExit(
            f"no dead letter {ident!r} for {self.settings.service_name}"
            " (name it partition:offset or by its event id)"
        )

    async def dl_show(self, args: argparse.Namespace) -> int:
        d = self._find(await self.dead_letters(), args.id)
        record = {
            **self._summary(d, (await self._handled([d]))[d.id]),
            "key": d.key,
            "headers": d.headers,
            "body": d.event() or d.value,
        }
        if self.as_json:
            print_json(record)
        else:
            for k, v in record.items():
                if k in ("headers", "body"):
                    print(f"{k}:")
                    print(json.dumps(v, ensure_ascii=False, indent=2, default=_json_default))
                else:
                    print(f"{k:14} {_cell(v, 2000)}")
        return 0

    async def dl_replay(self, args: argparse.Namespace) -> int:
        letters = await self.dead_letters(args.consumer)
        if args.ids:
            chosen = [self._find(letters, i) for i in args.ids]
        elif args.from_offset is not None:
            to = args.to_offset if args.to_offset is not None else sys.maxsize
            chosen = [
                d
                for d in letters
                if args.from_offset <= d.offset <= to
                and (args.partition is None or d.partition == args.partition)
            ]
        else:
            raise SystemExit("name the dead letters: IDs (partition:offset) or --from/--to")
        chosen = sorted({d.id: d for d in chosen}.values(), key=lambda d: (d.partition, d.offset))
        handled = await self._handled(chosen)
        if not args.dry_run and chosen:
            await self._connect_broker()  # a message that fails again is dead-lettered again
        results: list[dict[str, Any]] = []
        for d in chosen:
            c = self._by_group(d.group)
            row = self._summary(d, handled[d.id])
            if c is None:
                outcome = "no_such_consumer"
            elif args.dry_run:
                outcome = "already_handled" if handled[d.id] else "would_replay"
            elif d.headers.get("dlt-truncated") == "true":
                # The topic holds a cut copy; the whole message is the parked row it names.
                counts = await c.replay_parked(ids=[int(d.headers["dlt-parked-id"])])
                outcome = ",".join(counts) or "parked_row_replayed_already"
            else:
                outcome = await c.process(d.received())
            results.append({**row, "outcome": outcome})
        self.out(
            results,
            ["id", "consumer", "type", "event_id", "outcome"],
            empty="no dead letters chosen",
        )
        return 0

    # parked events (consumer side)

    async def _parked_rows(
        self,
        *,
        consumer: str | None,
        ids: Sequence[int] | None = None,
        reasons: Sequence[str] | None = None,
        pending_only: bool = True,
    ) -> list[dict[str, Any]]:
        names = [self.consumer(consumer).name] if consumer else [c.name for c in self.consumers]
        rows = await self.pool.fetch(
            """SELECT id, consumer, topic, "partition", "offset", type, version, reason, error,
                      parked_at, replayed_at, replay_outcome, length(value) AS value_bytes
                 FROM parked_events
                WHERE consumer = ANY($1::text[])
                  AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
                  AND ($3::text[] IS NULL OR reason = ANY($3::text[]))
                  AND (NOT $4 OR replayed_at IS NULL)
                ORDER BY id""",
            names,
            list(ids) if ids else None,
            list(reasons) if reasons else None,
            pending_only,
        )
        return [dict(r) for r in rows]

    async def parked_list(self, args: argparse.Namespace) -> int:
        rows = await self._parked_rows(
            consumer=args.consumer, reasons=args.reason or None, pending_only=not args.all
        )
        self.out(
            rows,
            ["id", "consumer", "type", "version", "reason", "parked_at", "replay_outcome", "error"],
            empty="no parked events",
        )
        return 0

    async def parked_show(self, args: argparse.Namespace) -> int:
        rows = await self._parked_rows(consumer=None, ids=[args.id], pending_only=False)
        if not rows:
            raise SystemExit(f"no parked event {args.id} for {self.settings.service_name}")
        row = rows[0]
        value = await self.pool.fetchval("SELECT value FROM parked_events WHERE id = $1", args.id)
        try:
            row["body"] = json.loads(value)
        except ValueError:
            row["body"] = bytes(value)
        if self.as_json:
            print_json(row)
        else:
            for k, v in row.items():
                if k == "body":
                    print("body:")
                    print(json.dumps(v, ensure_ascii=False, indent=2, default=_json_default))
                else:
                    print(f"{k:14} {_cell(v, 2000)}")
        return 0

    async def parked_replay(self, args: argparse.Namespace) -> int:
        reasons = args.reason or list(parking.REPLAYABLE)
        # What replay_parked will claim: exactly the ids, or the pending rows with reasons.
        chosen = await self._parked_rows(
            consumer=args.consumer, ids=args.ids or None, reasons=None if args.ids else reasons
        )
        if not args.dry_run and chosen:
            await self._connect_broker()
        results: list[dict[str, Any]] = []
        for name in dict.fromkeys(r["consumer"] for r in chosen):
            c = self.consumer(name)
            ids = [r["id"] for r in chosen if r["consumer"] == name]
            await c.replay_parked(ids=ids, dry_run=args.dry_run)
        after = {
            r["id"]: r
            for r in await self._parked_rows(
                consumer=args.consumer, ids=[r["id"] for r in chosen] or [-1], pending_only=False
            )
        }
        for r in chosen:
            now = after.get(r["id"], r)
            outcome = "would_replay" if args.dry_run else now["replay_outcome"] or "still_parked"
            results.append({**r, "outcome": outcome, "error": now["error"]})
        self.out(
            results,
            ["id", "consumer", "type", "version", "reason", "outcome", "error"],
            empty="no parked events to replay",
        )
        return 0

    # parked outbox rows (producer side)

    async def _parked_outbox(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        rows = [dict(r) for r in await outbox.parked(self.pool)]
        return [r for r in rows if r["id"] in ids] if ids else rows

    async def outbox_parked(self, args: argparse.Namespace) -> int:
        rows = await self._parked_outbox(args.ids)
        self.out(
            rows,
            ["id", "type", "key", "topic", "attempts", "parked_at", "last_error"],
            empty="no parked outbox rows",
        )
        return 0

    async def outbox_redrive(self, args: argparse.Namespace) -> int:
        rows = await self._parked_outbox(args.ids)
        if args.dry_run:
            results = [{**r, "outcome": "would_redrive"} for r in rows]
        else:
            done = set(await outbox.redrive(self.pool, [r["id"] for r in rows])) if rows else set()
            results = [
                {**r, "outcome": "redriven" if r["id"] in done else "not_parked_now"} for r in rows
            ]
        self.out(
            results,
            ["id", "type", "key", "attempts", "outcome", "last_error"],
            empty="no parked outbox rows",
        )
        if results and not args.dry_run and not self.as_json:
            print("the service's outbox relay publishes them now (the service must be running)")
        return 0

    async def outbox_republish(self, args: argparse.Namespace) -> int:
        since = parse_since(args.since)
        done = await outbox.republish(self.pool, since, dry_run=args.dry_run)
        row = {
            "since": since,
            "rows": done.rows,
            "in_flight": done.in_flight,
            "oldest_kept": done.oldest_kept,
            "outcome": "would_republish" if args.dry_run else "republished",
        }
        self.out([row], ["since", "rows", "in_flight", "oldest_kept", "outcome"])
        if not self.as_json:
            if done.oldest_kept is not None and done.oldest_kept > since:
                print(
                    f"rows sent before {done.oldest_kept.isoformat()} were purged (outbox "
                    "retention): what the broker lost before then cannot be sent again"
                )
            if not args.dry_run:
                print(
                    "the service's outbox relay publishes them now, in order (the service "
                    "must be running); consumers ignore what they already handled"
                )
        return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="What got stuck in this service, and re-driving it.")
    p.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")
    area = p.add_subparsers(dest="area", required=True)

    def sub(parent: Any, name: str, handler: str, **kw: Any) -> argparse.ArgumentParser:
        s = parent.add_parser(name, **kw)
        s.set_defaults(handler=handler)
        s.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        return s

    dl = area.add_parser("dead-letters", help="messages in whistle.deadletter.v1").add_subparsers(
        dest="action", required=True
    )
    s = sub(dl, "list", "dl_list", help="dead letters of this service's consumers")
    s.add_argument("--consumer")
    s.add_argument("--since", help="90m, 2h, 3d or an ISO date/time")
    s.add_argument("--limit", type=int, default=0, help="the latest N only")
    s = sub(dl, "show", "dl_show", help="one dead letter, whole")
    s.add_argument("id", help="partition:offset (or the event id)")
    s = sub(dl, "replay", "dl_replay", help="feed dead letters back through their consumer")
    s.add_argument("ids", nargs="*", metavar="ID", help="partition:offset (or event id)")
    s.add_argument("--from", dest="from_offset", type=int)
    s.add_argument("--to", dest="to_offset", type=int)
    s.add_argument("--partition", type=int)
    s.add_argument("--consumer")
    s.add_argument("--dry-run", action="store_true")

    pk = area.add_parser("parked", help="consumer-side parked events").add_subparsers(
        dest="action", required=True
    )
    s = sub(pk, "list", "parked_list")
    s.add_argument("--consumer")
    s.add_argument("--reason", action="append")
    s.add_argument("--all", action="store_true", help="replayed ones too")
    s = sub(pk, "show", "parked_show")
    s.add_argument("id", type=int)
    s = sub(
        pk,
        "replay",
        "parked_replay",
        help=f"replay parked events (default reasons: {', '.join(parking.REPLAYABLE)})",
    )
    s.add_argument("ids", nargs="*", type=int, metavar="ID")
    s.add_argument("--consumer")
    s.add_argument("--reason", action="append")
    s.add_argument("--dry-run", action="store_true")

    ob = area.add_parser(
        "outbox", help="parked outbox rows; re-publishing after a broker loss"
    ).add_subparsers(dest="action", required=True)
    s = sub(ob, "parked", "outbox_parked")
    s.add_argument("ids", nargs="*", type=int, metavar="ID")
    s = sub(ob, "redrive", "outbox_redrive")
    s.add_argument("ids", nargs="*", type=int, metavar="ID")
    s.add_argument("--dry-run", action="store_true")
    s = sub(
        ob,
        "republish",
        "outbox_republish",
        help="the broker lost messages: publish again every row sent since a point",
    )
    s.add_argument(
        "--since",
        required=True,
        help="90m, 2h, 3d or an ISO date/time: the last point every consumer had "
        "read to (when in doubt, when the lost broker started)",
    )
    s.add_argument("--dry-run", action="store_true")
    return p


def _logs_to_stderr() -> None:
    """Keep stdout for the command's output (tables, JSON)."""
    structlog.configure(logger_factory=stream_logger_factory("stderr"))
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


async def run(args: argparse.Namespace, settings: BaseServiceSettings, app: FastAPI) -> int:
    rt = app.state.runtime
    consumers = consumers_of(rt.broker)
    rt.pool = await db.create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=2,
        attempts=settings.db_connect_attempts,
    )
    connected = False

    async def connect_broker() -> None:
        nonlocal connected
        if not connected:
            # The producer only: subscribers are not started, no group is joined.
            await rt.broker.connect()
            connected = True

    try:
        ops = Ops(settings, consumers, rt.pool, connect_broker, args.json)
        return await getattr(ops, args.handler)(args)
    finally:
        if connected:
            await rt.broker.stop()
        await rt.pool.close()
        rt.pool = None


async def amain(
    argv: Sequence[str],
    *,
    settings: Callable[[], S],
    create_app: Callable[[S], FastAPI],
) -> int:
    """The commands in a running event loop (tests); ``main`` is the entry point's."""
    args = parser().parse_args(list(argv))
    loaded = settings()
    configure_logging(loaded.service_name, loaded.log_level, loaded.log_json)
    app = create_app(loaded)  # builds the consumers; opens nothing
    _logs_to_stderr()
    return await run(args, loaded, app)


def main(
    argv: Sequence[str],
    *,
    settings: Callable[[], S],
    create_app: Callable[[S], FastAPI],
) -> int:
    return asyncio.run(amain(argv, settings=settings, create_app=create_app))
