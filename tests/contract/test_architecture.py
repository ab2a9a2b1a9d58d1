"""The dependency rules of STYLE.md, held by import-linter (contracts in pyproject.toml):
shared imports no service, services never import each other, and each service is layered."""

from __future__ import annotations

import subprocess
import sys
import tomllib
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


# The floor plan (STYLE.md, "A service, room by room"): every service is cut by layer into
# the same rooms; a room is a module or, once it outgrows ~300 lines, a package of modules
# named after what they are about (intake's api/ holds cases, casework, jurisdiction,
# photos and open311). Nothing else stands beside the rooms but the adapters named here.
MODULES = {"__init__", "__main__", "main", "config", "consumers", "demo"}
ROOMS = {"api", "handlers", "repository", "domain"}
ADAPTERS = {
    # the category catalogue kept in step with dispatch (HTTP); positions from Chinese map
    # apps (GCJ-02, BD-09) converted to WGS-84
    "intake": {"catalogue", "coords"},
    "dispatch": set(),
    "tracking": {"scheduler", "stream"},  # durable timers; the boards' live stream (SSE)
    # the delivery worker and its channels, the inbox's live stream, channel secrets
    # sealed at rest, names of areas and categories kept from intake and dispatch (HTTP)
    "notify": {"worker", "channels", "stream", "sealing", "reference"},
}
SERVICES = tuple(ADAPTERS)


def _entries(folder: Path) -> set[str]:
    """A folder's modules and packages by name (migrations and caches aside)."""
    return {p.stem for p in folder.glob("*.py")} | {
        p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }


def test_every_service_has_the_same_floor_plan():
    for service in SERVICES:
        folder = ROOT / "services" / service
        entries = _entries(folder)
        assert entries == MODULES | ROOMS | ADAPTERS[service], service
        stray = {
            p.name
            for p in folder.iterdir()
            if p.is_dir() and p.name not in ("migrations", "__pycache__") and p.name not in entries
        }
        assert not stray, f"{service}: folders outside the floor plan: {stray}"
        assert sorted((folder / "migrations").glob("0001_*.sql")), service


def test_a_room_is_a_module_or_a_package_of_modules():
    """Inside a room, the split is by subject; no room repeats the rooms (no feature folder
    holding its own api/handlers/repository/domain again)."""
    for service in SERVICES:
        for room in ROOMS:
            package = ROOT / "services" / service / room
            if not package.is_dir():
                continue
            for path in package.rglob("*.py"):
                parts = set(path.relative_to(package).with_suffix("").parts)
                assert not parts & (ROOMS | {"consumers"}), path.relative_to(ROOT)


def test_the_import_contracts_cover_every_service():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layered = next(c for c in contracts["contracts"] if c["type"] == "layers")
    assert {f"services.{s}" for s in SERVICES} <= set(layered["containers"])
    assert layered["layers"] == [
        "(main)",
        "(api) | (consumers)",
        "(handlers)",
        "(repository)",
        "(domain)",
    ]


def test_domain_modules_do_no_io():
    forbidden = ("asyncpg", "httpx", "faststream", "aiokafka", "fastapi", "datetime.now")
    for path in [
        *(ROOT / "services").glob("*/domain.py"),
        *(ROOT / "services").glob("*/domain/**/*.py"),
    ]:
        text = path.read_text()
        for word in forbidden:
            assert word not in text, f"{path.relative_to(ROOT)} uses {word}"
