"""Projection replay (python -m services.tracking replay --compare): tracking's read model is
rebuilt from the event log into a fresh database and compared with the live one — on real
PostgreSQL and a broker of this module's own (the session's broker holds other tests' events,
which the replay would read too), the command run as operators run it.

A few cases go through the live service over the broker (dispatched, signed for late, resolved,
extended, paused and resumed, rejected, closed; their deadlines long past, so the scheduler
fires their warnings and overdue alerts). The replay then finds no difference; one live row
corrupted by hand is reported and the command exits 1; the fresh database is dropped."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

from services.tracking.main import create_app
from shared.contract import (
    CaseExtensionDecided,
    CasePauseDecided,
    CaseRated,
    CaseRejected,
    CaseResolved,
    CaseResumed,
    CaseSignedFor,
    PauseKind,
    new_event,
)
from stack.kafka import EmbeddedKafka
from shared.broker import ensure_topics
from tests.component import tracking_fixtures
from tests.component.tracking_fixtures import HERE, LIFT, at, closed, dispatched, step
from tests.conftest import ROOT, free_port
from tests.helpers import eventually, fetch, fetchval, publish_event, running_app


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory):
    server = EmbeddedKafka(free_port(), tmp_path_factory.mktemp("replay-kafka") / "broker.log")
    server.start()
    asyncio.run(ensure_topics(server.bootstrap))
    yield server
    server.stop()


def events() -> list:
    one, two, three, four = (uuid.uuid4() for _ in range(4))
    a, b, c, d, e = (uuid.uuid4() for _ in range(5))
    return [
        # 1: signed for late, resolved in time, rated
        dispatched(one, a, at(0, 9)),
        step(CaseSignedFor, one, a, at(0, 12)),
        step(CaseResolved, one, a, at(1, 9), result="已清理"),
        new_event(
            CaseRated(**HERE, score=5, channel="link"),
            case_id=one,
            producer="intake",
            occurred_at=at(1, 10),
        ),
        closed(one, at(1, 11)),
        # 2: the lift, extended and paused, then resumed; never resolved (overdue)
        dispatched(two, b, at(0, 10), facts=LIFT, department="xf"),
        step(CaseSignedFor, two, b, at(0, 10, 5), facts=LIFT, department="xf"),
        step(
            CaseExtensionDecided,
            two,
            b,
            at(0, 11),
            facts=LIFT,
            department="xf",
            request_id=uuid.uuid4(),
            approved=True,
            days=1,
        ),
        step(
            CasePauseDecided,
            two,
            b,
            at(0, 12),
            facts=LIFT,
            department="xf",
            request_id=(pause := uuid.uuid4()),
            kind=PauseKind.HANG,
            reason="等待配件",
            approved=True,
        ),
        step(CaseResumed, two, b, at(1, 9), facts=LIFT, department="xf", request_id=pause),
        # 3: rejected, handed to another department that never signs for
        dispatched(three, c, at(2, 9)),
        step(CaseRejected, three, c, at(2, 9, 30), reason="不属于本部门"),
        dispatched(three, d, at(2, 9, 35), department="zj"),
        # 4: dispatched only
        dispatched(four, e, at(3, 9)),
    ]


@pytest.fixture(scope="module")
async def live(pg_server, own_broker):
    settings = await tracking_fixtures.service_settings(pg_server, own_broker)
    dsn = settings.database_url.get_secret_value()
    sent = events()
    async with running_app(create_app(settings)):
        for event in sent:
            await publish_event(own_broker.bootstrap, event)

        async def recorded():
            return await fetchval(
                dsn,
                "SELECT count(*) FROM case_events WHERE event_id = ANY($1::uuid[])",
                [e.event_id for e in sent],
            ) == len(sent)

        await eventually(recorded, timeout=60, message="tracking recorded the events")

        async def settled():  # the scheduler fired what is due: the live state stops moving
            return not await fetchval(
                dsn, "SELECT count(*) FROM timers WHERE state = 'pending' AND due_at <= now()"
            )

        await eventually(settled, timeout=60, message="due timers fired")
    return dsn, own_broker.bootstrap


def run_replay(dsn: str, bootstrap: str, *argv: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ENVIRONMENT": "test",
        "KAFKA_IDEMPOTENT_PRODUCER": "false",
    }
    return subprocess.run(
        [sys.executable, "-m", "services.tracking", "replay", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def replay_databases(dsn: str) -> list[str]:
    rows = await fetch(
        dsn, "SELECT datname FROM pg_database WHERE datname LIKE 'whistle_tracking_replay_%'"
    )
    return [r["datname"] for r in rows]


async def test_the_replayed_projection_is_the_live_one(live):
    dsn, bootstrap = live
    fired = await fetchval(dsn, "SELECT count(*) FROM timers WHERE state = 'fired'")
    assert fired > 0  # the live side has alerts the replay does not make (not compared)
    before = await replay_databases(dsn)
    result = await asyncio.to_thread(run_replay, dsn, bootstrap, "--compare")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "no difference" in out
    assert f"{len(events())} records" in out and "handled 14" in out, out
    for table in ("cases", "case_events", "assignments", "clocks", "pauses", "kpi_daily"):
        assert any(line.startswith(table + " ") for line in out.splitlines()), (table, out)
    # the comparison saw rows: 4 cases, 5 assignments, some clocks
    line = next(ln for ln in out.splitlines() if ln.startswith("cases "))
    assert line.split()[1:3] == ["4", "4"], line
    assert await replay_databases(dsn) == before  # dropped


async def test_a_corrupted_live_row_is_reported_and_fails_the_command(live):
    dsn, bootstrap = live
    row = (
        await fetch(
            dsn,
            "SELECT assignment_id, due_at FROM clocks WHERE clock = 'resolve'"
            " ORDER BY assignment_id LIMIT 1",
        )
    )[0]
    conn_sql = "UPDATE clocks SET due_at = due_at + interval '1 hour' WHERE assignment_id = $1 AND clock = 'resolve'"
    await fetchval(dsn, conn_sql, row["assignment_id"])
    try:
        result = await asyncio.to_thread(run_replay, dsn, bootstrap, "--compare", "--keep")
        assert result.returncode == 1, result.stdout + result.stderr
        out = result.stdout
        assert "DIFFERENT" in out
        reported = [ln for ln in out.splitlines() if ln.strip().startswith("clocks (")]
        assert len(reported) == 1 and str(row["assignment_id"]) in reported[0], out
        assert "due_at" in reported[0]
        kept = [ln.split()[1] for ln in out.splitlines() if ln.startswith("kept ")]
        assert len(kept) == 1 and kept[0] in await replay_databases(dsn)
        # the kept database holds the rebuilt row, as the log says
        fresh_dsn = dsn.rsplit("/", 1)[0] + "/" + kept[0]
        assert (
            await fetchval(
                fresh_dsn,
                "SELECT due_at FROM clocks WHERE assignment_id = $1 AND clock = 'resolve'",
                row["assignment_id"],
            )
            == row["due_at"]
        )
    finally:
        await fetchval(dsn, conn_sql.replace("+", "-"), row["assignment_id"])
        for name in await replay_databases(dsn):
            await fetchval(dsn, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.mark.parametrize("service", ["intake", "dispatch", "notify"])
async def test_services_whose_state_is_not_a_projection_refuse(live, service):
    dsn, bootstrap = live
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", f"services.{service}", "replay", "--compare"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": dsn,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "ENVIRONMENT": "test",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "不能重放" in result.stdout and "cannot replay" in result.stdout
