"""A department's inbox read slice by slice (issue 14) shows exactly the pages the plain
definition gives: every state, priority, order, area scope and page of a random department on
real PostgreSQL, with ties in dispatch time, running and stopped deadlines, paused and exited
assignments, against one query that filters and sorts the whole history."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch.repository import INBOX_ORDER, list_assignments
from services.dispatch.repository.scope import area_scope
from tests.conftest import migrated_database

STATES = ["dispatched", "signed_for", "resolved", "rejected", "transferred"]
PRIORITIES = ["urgent", "normal", "minor"]
AREAS = [f"YA/YA0{s}/YA0{s}0{c}/YA0{s}0{c}-0{g}" for s in (1, 2) for c in (1, 2) for g in (1, 2)]
T0 = datetime(2026, 3, 1, tzinfo=UTC)

# The inbox as it was defined before it was read in slices: filter everything, sort, page.
_PLAIN = """
SELECT a.id FROM assignments a
LEFT JOIN LATERAL (SELECT c.due_at, c.clock FROM assignment_clocks c
    WHERE c.assignment_id = a.id AND c.running AND a.state <> 'resolved'
    AND a.exited_at IS NULL ORDER BY c.due_at LIMIT 1) k ON true
WHERE a.department_id = $1 AND ($2::text IS NULL OR a.state = $2)
  AND ($5::text[] IS NULL OR a.area_path = ANY($5::text[]) OR a.area_path LIKE ANY($6::text[]))
  AND ($7::text IS NULL OR a.priority = $7)
ORDER BY {order} LIMIT $3 OFFSET $4
"""


async def _seed(conn, rnd: random.Random) -> None:
    await conn.execute(
        "INSERT INTO departments (id, name, kind) VALUES ('jt', '交通局',"
        " 'functional'), ('cg', '城管局', 'functional')"
    )
    for n in range(400):
        state = rnd.choices(STATES, weights=[2, 3, 10, 1, 1])[0]
        # ties: many assignments share a dispatch instant
        at = T0 + timedelta(minutes=rnd.randrange(0, 400, 7))
        exited = state in ("rejected", "transferred")
        a = uuid.uuid4()
        await conn.execute(
            "INSERT INTO assignments (id, case_id, case_no, department_id, role, state, reason,"
            " area_path, category, priority, description, result, dispatched_at, resolved_at,"
            " updated_at, exit_reason, exited_at, transferred_to) VALUES ($1, $2, $3, $4, 'lead',"
            " $5, 'test', $6, 'E0101', $7, '堆物', $8, $9, $10, $9, $11, $12, $13)",
            a,
            uuid.uuid4(),
            f"YA-{n}",
            rnd.choice(["jt", "jt", "jt", "cg"]),
            state,
            rnd.choice(AREAS),
            rnd.choice(PRIORITIES),
            "ok" if state == "resolved" else None,
            at,
            at + timedelta(hours=5) if state == "resolved" else None,
            "x" if exited else None,
            at + timedelta(hours=1) if exited else None,
            "cg" if state == "transferred" else None,
        )
        for clock in ("sign_for", "resolve"):
            if rnd.random() < 0.7:  # some never heard of; some stopped; due times tie too
                await conn.execute(
                    "INSERT INTO assignment_clocks (assignment_id, clock, due_at, running, as_of)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    a,
                    clock,
                    T0 + timedelta(hours=rnd.randrange(0, 200, 3)),
                    rnd.random() < 0.6,
                    at,
                )


@pytest.mark.parametrize("seed", [1, 14])
async def test_every_page_is_the_plain_definitions_page(pg_server, pool_factory, seed):
    dsn = await migrated_database(pg_server, "dispatch")
    pool = await pool_factory(dsn)
    rnd = random.Random(seed)
    async with pool.acquire() as conn:
        await _seed(conn, rnd)
        checked = 0
        for sort, order in INBOX_ORDER.items():
            for state in (None, *STATES):
                for priority in (None, *PRIORITIES):
                    for areas in (None, ("YA/YA01",), ("YA/YA02/YA0201", AREAS[0])):
                        for limit, offset in ((50, 0), (7, 0), (7, 21), (200, 0)):
                            want = [
                                r["id"]
                                for r in await conn.fetch(
                                    _PLAIN.format(order=order),
                                    "jt",
                                    state,
                                    limit,
                                    offset,
                                    *area_scope(areas),
                                    priority,
                                )
                            ]
                            got = [
                                a.id
                                for a in await list_assignments(
                                    conn, "jt", state, areas, limit, offset, priority, sort
                                )
                            ]
                            assert got == want, (sort, state, priority, areas, limit, offset)
                            checked += bool(want)
        assert checked > 300


async def test_an_unknown_state_or_priority_is_refused(pg_server, pool_factory):
    pool = await pool_factory(await migrated_database(pg_server, "dispatch"))
    async with pool.acquire() as conn:
        for state, priority in (("open'--", None), (None, "high")):
            with pytest.raises(ValueError):
                await list_assignments(conn, "jt", state, None, 10, 0, priority)
