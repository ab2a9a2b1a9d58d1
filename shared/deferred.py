"""Work a handler may leave to the end of its transaction.

When a consumer handles a batch of events in one transaction (shared/broker.py), work that
needs doing only once per transaction — bringing a projection's sums up to date for the cases
the events touched — is done once for the whole batch, just before the commit, with every item
the handlers gave. Outside a batch (one event per transaction, a test calling a handler) it is
done at once, with the one item.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from shared.db import Conn

Work = Callable[[Conn, list[Any]], Awaitable[None]]

# The work left per connection inside ``batch`` (keyed by id: a batch always removes its own).
_PENDING: dict[int, dict[Work, list[Any]]] = {}


async def once_per_transaction(conn: Conn, work: Work, item: Any) -> None:
    """Run ``work(conn, items)`` before the batch's transaction commits, once for every item
    given in it; at once when no batch is open on ``conn``."""
    pending = _PENDING.get(id(conn))
    if pending is None:
        await work(conn, [item])
    else:
        pending.setdefault(work, []).append(item)


@contextlib.asynccontextmanager
async def batch(conn: Conn) -> AsyncIterator[None]:
    """Collect the work handlers leave on ``conn`` and run it at the end (inside the caller's
    transaction); on an error nothing left is run."""
    pending: dict[Work, list[Any]] = {}
    _PENDING[id(conn)] = pending
    try:
        yield
        while pending:  # in the order first asked for; work may leave more work
            work = next(iter(pending))
            await work(conn, pending.pop(work))
    finally:
        _PENDING.pop(id(conn), None)
