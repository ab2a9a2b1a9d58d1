"""Comparing a rebuilt projection with the live one, table by table: rows keyed by their
natural keys, the columns a rebuild cannot reproduce left out (``Table.ignore``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.db import Conn
from shared.replay.spec import Table

Key = tuple[Any, ...]
Row = dict[str, Any]


@dataclass
class TableDiff:
    table: str
    live: int
    replayed: int
    only_live: list[Key] = field(default_factory=list)
    only_replayed: list[Key] = field(default_factory=list)
    # key → {column: (live value, replayed value)} for the columns that differ
    differing: dict[Key, dict[str, tuple[Any, Any]]] = field(default_factory=dict)

    @property
    def same(self) -> bool:
        return not (self.only_live or self.only_replayed or self.differing)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _columns(conn: Conn, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    return [r["column_name"] for r in rows]


async def rows_of(conn: Conn, spec: Table) -> dict[Key, Row]:
    """The table's compared rows, by key."""
    if spec.query is not None:
        records = await conn.fetch(spec.query)
    else:
        columns = [c for c in await _columns(conn, spec.name) if c not in spec.ignore]
        if not columns:
            raise ValueError(f"table {spec.name} not found")
        sql = f"SELECT {', '.join(map(_ident, columns))} FROM {_ident(spec.name)}"
        if spec.where:
            sql += f" WHERE {spec.where}"
        records = await conn.fetch(sql)
    out: dict[Key, Row] = {}
    for r in records:
        row = {k: v for k, v in dict(r).items() if k not in spec.ignore}
        out[tuple(row[k] for k in spec.key)] = row
    return out


def diff_rows(table: str, live: dict[Key, Row], replayed: dict[Key, Row]) -> TableDiff:
    diff = TableDiff(table, len(live), len(replayed))
    for key in sorted(live.keys() - replayed.keys(), key=repr):
        diff.only_live.append(key)
    for key in sorted(replayed.keys() - live.keys(), key=repr):
        diff.only_replayed.append(key)
    for key in sorted(live.keys() & replayed.keys(), key=repr):
        a, b = live[key], replayed[key]
        changed = {c: (a.get(c), b.get(c)) for c in a.keys() | b.keys() if a.get(c) != b.get(c)}
        if changed:
            diff.differing[key] = changed
    return diff


async def compare(live: Conn, replayed: Conn, tables: tuple[Table, ...]) -> list[TableDiff]:
    return [diff_rows(t.name, await rows_of(live, t), await rows_of(replayed, t)) for t in tables]


def report(diffs: list[TableDiff], *, limit: int = 10) -> list[str]:
    """The summary: counts per table, then the first ``limit`` differing rows of each."""
    lines = [
        f"{'table':24} {'live':>8} {'replayed':>8} {'only live':>9} {'only replayed':>13}"
        f" {'differing':>9}"
    ]
    for d in diffs:
        lines.append(
            f"{d.table:24} {d.live:>8} {d.replayed:>8} {len(d.only_live):>9}"
            f" {len(d.only_replayed):>13} {len(d.differing):>9}"
        )
    for d in diffs:
        shown = 0
        for key in d.only_live[:limit]:
            lines.append(f"  {d.table} {_key(key)}: only in live")
            shown += 1
        for key in d.only_replayed[: max(0, limit - shown)]:
            lines.append(f"  {d.table} {_key(key)}: only in the replay")
            shown += 1
        for key, changed in list(d.differing.items())[: max(0, limit - shown)]:
            cols = "; ".join(
                f"{c}: live={a!r} replayed={b!r}" for c, (a, b) in sorted(changed.items())
            )
            lines.append(f"  {d.table} {_key(key)}: {cols}")
    return lines


def _key(key: Key) -> str:
    return "(" + ", ".join(str(k) for k in key) + ")"
