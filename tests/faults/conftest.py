"""The fault-injection suite's own embedded stack (PostgreSQL, the broker, the four services
and the gateway as separate processes, on free ports in a temporary folder), shared by the
scenarios of this folder, and the table of results printed at the end of the run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.stack import APPS, Stack, StackConfig
from tests.conftest import free_port, running_stack
from tests.faults.invariants import ROW_COLUMNS, Row

ROOT = Path(__file__).resolve().parents[2]
TABLE_FILE = ROOT / "test-artifacts" / "faults" / "table.txt"

# Rows of the results table, in the order the scenarios ran.
ROWS: list[Row] = []
STARTED: list[float] = []  # when the stack began to start


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("faults-stack"),
        pg_port=free_port(),
        kafka_port=free_port(),
        ports={s: free_port() for s in APPS},
        env={
            "*": {
                "OUTBOX_POLL_INTERVAL_SECONDS": "1",
                "LOG_LEVEL": "WARNING",
                # Deterministic failures go to the dead-letter topic after two tries.
                "CONSUMER_MAX_ATTEMPTS": "2",
            },
            # The load reports far more than a person could: lift the abuse limit.
            "intake": {"REPORT_RATE_LIMIT_PER_MINUTE": "1000000"},
            "tracking": {"TIMER_POLL_INTERVAL_SECONDS": "0.5"},
            "notify": {
                "DELIVERY_POLL_INTERVAL_SECONDS": "0.5",
                "DELIVERY_MAX_ATTEMPTS": "2",
                "DELIVERY_INLINE_ATTEMPTS": "2",
                "DELIVERY_TIMEOUT_SECONDS": "2",
                "DELIVERY_BACKOFF_BASE_SECONDS": "1",
                "DELIVERY_BACKOFF_MAX_SECONDS": "2",
            },
        },
    )
    STARTED.append(time.monotonic())
    yield from running_stack(config)


@pytest.fixture(scope="package")
def results() -> list[Row]:
    """Scenarios append their row here (also when their check fails: the row says so)."""
    return ROWS


def render_table(rows: list[Row]) -> str:
    header = [title for _, title in ROW_COLUMNS]
    lines = [[str(getattr(r, name)) for name, _ in ROW_COLUMNS] for r in rows]
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
        for i, h in enumerate(header)
    ]

    def fmt(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [fmt(header), "-+-".join("-" * w for w in widths), *(fmt(line) for line in lines)]
    return "\n".join(out)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not ROWS:
        return
    table = render_table(ROWS)
    elapsed = time.monotonic() - STARTED[0] if STARTED else 0.0
    notes = [f"- {r.scenario}: {r.notes}" for r in ROWS if r.notes]
    text = "\n".join([table, "", *notes, f"suite wall time {elapsed:.0f}s"]).rstrip() + "\n"
    terminalreporter.section("fault injection: results")
    terminalreporter.write(text)
    TABLE_FILE.parent.mkdir(parents=True, exist_ok=True)
    TABLE_FILE.write_text(text)
