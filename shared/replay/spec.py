"""What a service declares for the projection replay (``python -m services.<name> replay``):
which of its tables are rebuilt from the event log and compared, which are reference data
copied from live first, and — where its state is not honestly rebuilt from events — why not."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """One projection table compared row by row, keyed by its natural ``key``. ``ignore``: the
    columns recording when or in which order the live process handled things (wall-clock
    stamps, serials), which a rebuild cannot reproduce. ``where``: only these rows are the
    projection (e.g. a timeline's rows of the consumed topics). ``query``: compare what this
    query returns instead of the table's rows (sums kept in two tables, say)."""

    name: str
    key: tuple[str, ...]
    ignore: tuple[str, ...] = ()
    where: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class Projection:
    """A service's replayable projection. ``reference``: tables written by HTTP commands that
    the event handlers read (copied from live into the fresh database before the replay).
    ``not_compared``: tables left out of the comparison, each with why."""

    tables: tuple[Table, ...]
    reference: tuple[str, ...] = ()
    not_compared: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NotReplayable:
    """Why this service's state is not a projection of the event log (the command refuses)."""

    zh: str
    en: str


Replay = Projection | NotReplayable
