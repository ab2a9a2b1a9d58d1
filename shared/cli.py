"""The one command line every service has:

    python -m services.<name> migrate     apply pending migrations, then exit
    python -m services.<name> seed-demo   load the demo reference data (idempotent)
    python -m services.<name> serve       run the HTTP app, consumers and workers

    python -m services.<name> replay [--compare] [--keep] [--limit N]
                                          rebuild the projection from the event log into a
                                          fresh database, compare it with live (shared/replay)

a service's own commands (``commands``, e.g. tracking's ``backtest``), and the operators'
commands for what got stuck (shared/ops.py):

    python -m services.<name> dead-letters list|show|replay …
    python -m services.<name> parked list|show|replay …
    python -m services.<name> outbox parked|redrive …
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import prometheus_client
import structlog
import uvicorn
from fastapi import FastAPI

from shared import ops, replay
from shared.broker import consumers_of
from shared.logging import configure_logging
from shared.service import migrate
from shared.settings import BaseServiceSettings

S = TypeVar("S", bound=BaseServiceSettings)
log = structlog.get_logger()

NOT_DECLARED = replay.NotReplayable(
    "本服务未声明可由事件日志重建的投影表。",
    "this service declares no projection rebuilt from the event log.",
)


def _replay(
    argv: list[str],
    settings: S,
    create_app: Callable[[S], FastAPI],
    migrations_dir: Path,
    projection: replay.Replay,
) -> int:
    parser = argparse.ArgumentParser(prog="replay", description=replay.__doc__)
    parser.add_argument("--compare", action="store_true", help="compare with the live tables")
    parser.add_argument("--keep", action="store_true", help="keep the fresh database")
    parser.add_argument("--limit", type=int, default=10, help="differing rows shown per table")
    args = parser.parse_args(argv)
    app = create_app(settings)  # builds the consumers; opens nothing
    ops._logs_to_stderr()  # stdout is the command's report
    return asyncio.run(
        replay.replay(
            service=settings.service_name,
            dsn=settings.database_url.get_secret_value(),
            bootstrap=settings.kafka_bootstrap_servers,
            consumers=consumers_of(app.state.runtime.broker),
            projection=projection,
            migrations_dir=migrations_dir,
            compare_live=args.compare,
            keep=args.keep,
            limit=args.limit,
        )
    )


def run(
    *,
    settings_factory: Callable[[], S],
    create_app: Callable[[S], FastAPI],
    migrations_dir: Path,
    seed_demo: Callable[[S], Coroutine[Any, Any, None]] | None = None,
    argv: list[str] | None = None,
    projection: replay.Replay = NOT_DECLARED,
    commands: Mapping[str, Callable[[S, list[str]], int]] | None = None,
) -> None:
    """``projection``: what ``replay`` rebuilds (or why it refuses); ``commands``: the
    service's own commands, each given the settings and the rest of the command line."""
    argv = sys.argv[1:] if argv is None else argv
    commands = commands or {}
    if argv and (argv[0] == "replay" or argv[0] in commands):
        settings = settings_factory()
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        if argv[0] == "replay":
            sys.exit(_replay(argv[1:], settings, create_app, migrations_dir, projection))
        sys.exit(commands[argv[0]](settings, argv[1:]))
    if argv[:1] == ["--json"] or (argv and argv[0] in ops.COMMANDS):
        sys.exit(ops.main(argv, settings=settings_factory, create_app=create_app))
    parser = argparse.ArgumentParser(
        epilog="operators: " + ", ".join(ops.COMMANDS) + " (--help on each)"
    )
    parser.add_argument(
        "command",
        choices=["serve", "migrate", "seed-demo", "replay", *commands, *ops.COMMANDS],
    )
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
        if settings.metrics_port is not None:
            # The process's registry (the same one /metrics would serve), on its own port.
            prometheus_client.start_http_server(settings.metrics_port, addr=settings.http_host)
            log.info("metrics_listening", port=settings.metrics_port, path="/metrics")
        uvicorn.run(
            create_app(settings),
            host=settings.http_host,
            port=settings.http_port,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=20,
        )
