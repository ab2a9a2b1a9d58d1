"""The dependency rules of STYLE.md, held by import-linter (contracts in pyproject.toml):
shared imports no service, services never import each other, and each service is layered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _rooms(folder: Path) -> set[str]:
    """A room is a module or, once past ~300 lines, a package of the same name."""
    return {p.stem for p in folder.glob("*.py")} | {
        p.parent.name for p in folder.glob("*/__init__.py")
    }


def test_every_service_has_the_same_rooms():
    rooms = {"main", "config", "domain", "handlers", "api", "consumers", "repository", "__main__"}
    for service in ("intake", "dispatch", "tracking", "notify"):
        folder = ROOT / "services" / service
        assert rooms <= _rooms(folder), service
        assert sorted((folder / "migrations").glob("0001_*.sql")), service


def test_domain_modules_do_no_io():
    forbidden = ("asyncpg", "httpx", "faststream", "aiokafka", "fastapi", "datetime.now")
    for path in [
        *(ROOT / "services").glob("*/domain.py"),
        *(ROOT / "services").glob("*/domain/*.py"),
    ]:
        text = path.read_text()
        for word in forbidden:
            assert word not in text, f"{path.relative_to(ROOT)} uses {word}"
