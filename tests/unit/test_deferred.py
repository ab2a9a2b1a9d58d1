"""Work left to the end of a batch's transaction runs once with every item; outside a batch at
once; on an error not at all (shared/deferred.py)."""

from __future__ import annotations

import pytest

from shared import deferred


class Conn:
    """Stands for a connection: deferred only keys by identity."""


async def test_outside_a_batch_work_runs_at_once_with_its_item():
    seen = []

    async def work(conn, items):
        seen.append(items)

    await deferred.once_per_transaction(Conn(), work, 1)
    await deferred.once_per_transaction(Conn(), work, 2)
    assert seen == [[1], [2]]


async def test_in_a_batch_work_runs_once_at_the_end_with_every_item_in_order():
    seen = []
    conn, other = Conn(), Conn()

    async def refresh(c, items):
        seen.append(("refresh", items))
        await deferred.once_per_transaction(c, notify, "after refresh")

    async def notify(c, items):
        seen.append(("notify", items))

    async with deferred.batch(conn):
        await deferred.once_per_transaction(conn, refresh, "a")
        await deferred.once_per_transaction(other, refresh, "elsewhere")  # not in the batch
        await deferred.once_per_transaction(conn, refresh, "b")
        assert seen == [("refresh", ["elsewhere"]), ("notify", ["after refresh"])]
    assert seen[2:] == [("refresh", ["a", "b"]), ("notify", ["after refresh"])]
    await deferred.once_per_transaction(conn, notify, "later")  # the batch is over
    assert seen[-1] == ("notify", ["later"])


async def test_a_failed_batch_runs_nothing_left():
    seen = []

    async def work(c, items):
        seen.append(items)

    conn = Conn()
    with pytest.raises(RuntimeError):
        async with deferred.batch(conn):
            await deferred.once_per_transaction(conn, work, 1)
            raise RuntimeError("handler failed")
    assert seen == []
    await deferred.once_per_transaction(conn, work, 2)
    assert seen == [[2]]
