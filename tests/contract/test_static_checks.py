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
