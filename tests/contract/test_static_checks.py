"""Lint, format and types, run with the tests so the README's one test command (and CI)
holds them: ruff's rules, ruff's formatting and mypy (config in pyproject.toml). The import
contracts are held by test_architecture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CODE = ["shared", "services", "stack", "web", "tests", "bench"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([str(BIN / "ruff"), "check", *CODE], id="ruff-check"),
        pytest.param([str(BIN / "ruff"), "format", "--check", *CODE], id="ruff-format"),
        # the files to check and the strictness are in pyproject.toml [tool.mypy]
        pytest.param([str(BIN / "mypy")], id="mypy"),
    ],
)
def test_static_check_passes(command):
    result = _run(*command)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def test_a_route_whose_handler_reads_another_event_does_not_type_check(tmp_path):
    """``on(Event, handler)`` holds the two together wherever the route is written — in a
    list, in a call's argument — so mypy (run above over the tree) would catch a mismatch."""
    snippet = tmp_path / "routes_snippet.py"
    snippet.write_text(
        "from shared.broker import EventConsumer, Route, on\n"
        "from shared.contract import CaseClosed, CaseDispatched, Envelope\n"
        "from shared.db import Conn\n\n"
        "async def h(conn: Conn, e: Envelope[CaseDispatched]) -> None: ...\n\n"
        "good: list[Route] = [on(CaseDispatched, h)]\n"
        "in_a_list: list[Route] = [on(CaseClosed, h)]\n"
        "def f(routes: list[Route]) -> None: ...\n"
        "f([on(CaseClosed, h)])\n"
    )
    result = subprocess.run(
        [str(BIN / "mypy"), "--no-incremental", "--ignore-missing-imports", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"MYPYPATH": str(ROOT), "PATH": str(BIN)},
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["8", "10"], result.stdout
