"""The one command line every service has:

    python -m services.<name> migrate     apply pending migrations, then exit
    python -m services.<name> seed-demo   load the demo reference data (idempotent)
    python -m services.<name> serve       run the HTTP app, consumers and workers

and the operators' commands for what got stuck (shared/ops.py):

    python -m services.<name> dead-letters list|show|replay …
    python -m services.<name> parked list|show|replay …
    python -m services.<name> outbox parked|redrive …
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from shared import ops
from shared.logging import configure_logging
from shared.service import migrate
from shared.settings import BaseServiceSettings

S = TypeVar("S", bound=BaseServiceSettings)


def run(
    *,
    settings_factory: Callable[[], S],
    create_app: Callable[[S], FastAPI],
    migrations_dir: Path,
    seed_demo: Callable[[S], Coroutine[Any, Any, None]] | None = None,
    argv: list[str] | None = None,
) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--json"] or (argv and argv[0] in ops.COMMANDS):
        sys.exit(ops.main(argv, settings=settings_factory, create_app=create_app))
    parser = argparse.ArgumentParser(
        epilog="operators: " + ", ".join(ops.COMMANDS) + " (--help on each)"
    )
    parser.add_argument("command", choices=["serve", "migrate", "seed-demo", *ops.COMMANDS])
    args = parser.parse_args(argv)
    settings = settings_factory()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    if args.command == "migrate":
        asyncio.run(migrate(settings, migrations_dir))
    elif args.command == "seed-demo":
        if seed_demo is None:
            print(f"{settings.service_name}: no demo data to load")
        else:
            asyncio.run(seed_demo(settings))
    else:
        uvicorn.run(
            create_app(settings),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=20,
        )
