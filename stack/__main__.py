"""``python -m stack up``: the whole system on the embedded default, until Ctrl-C/SIGTERM.
``python -m stack token USER``: a bearer token for a demo user.
``python -m stack recover-broker [--since T] [--dry-run]``: publish again what a lost broker
held (stack/supervisor.py)."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
import time
from types import FrameType

import httpx

from web.config import Settings as ConsoleSettings

from shared import demo
from stack.demo_cases import seed_demo_cases
from stack.stack import APPS, ROOT, PortInUse, Stack, StackConfig
from stack.supervisor import SAFE_POINT_FILE


def _banner(stack: Stack) -> str:
    c = stack.config
    lines = [
        "",
        "Whistle 吹哨 is up — embedded default (one machine, no Docker).",
        "",
        f"  Console 网页工作台   {stack.console_url}   (sign in as a demo user, password "
        f"{DEMO_PASSWORD})",
        "",
    ]
    for s in ("intake", "dispatch", "tracking", "notify"):
        u = stack.url(s)
        lines.append(f"  {s:<9} {u}   OpenAPI {u}/docs   AsyncAPI {u}/asyncapi")
    lines += [
        "",
        f"  PostgreSQL   {stack.postgres.dsn('')}  databases: "
        + ", ".join(stack.database(s) for s in APPS),
        f"  Kafka        {stack.kafka.bootstrap}  (Tansu broker, messages in memory; restarted"
        " with the events it held published again from the outboxes if it dies)",
        f"  Data folder  {c.data_dir}  (PostgreSQL data persists across restarts)",
        f"  Logs         {c.log_dir}",
        "",
        "  Tokens       make token USER=wangfang   (make token lists the demo users)",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


DEMO_PASSWORD = ConsoleSettings.model_fields["demo_password"].default


def up(config: StackConfig | None = None) -> int:
    config = config or StackConfig(say=lambda line: print(line, flush=True))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(config.data_dir / "stack.lock", "a+")  # noqa: SIM115 - held while we run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        pid = lock.read().strip() or "?"
        print(
            f"Whistle is already running (pid {pid}) with data in {config.data_dir}. "
            f"Stop it with Ctrl-C in its terminal (or `kill {pid}`) before starting another.",
            file=sys.stderr,
        )
        return 1
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()

    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started in the background (SIGINT ignored)
    # The supervisor's own Kafka clients complain loudly while a dead broker is replaced;
    # it says itself what happens.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    stack = Stack(config)
    print("Starting PostgreSQL, the broker and the four services…", flush=True)
    try:
        try:
            stack.check_ports_free()
        except PortInUse as exc:
            print(f"Cannot start: {exc}.", file=sys.stderr)
            return 1
        stack.start()
        print(_banner(stack), flush=True)
        if config.demo_data:
            try:
                seed_demo_cases(stack, say=lambda line: print(line, flush=True))
            except (RuntimeError, httpx.HTTPError) as exc:  # the system runs without them
                print(f"  Demo cases could not be added: {exc}", file=sys.stderr, flush=True)
        while True:  # the supervisor restarts whatever dies (stack/supervisor.py)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("\nStopping…", flush=True)
        stack.stop()
        print("Stopped.", flush=True)
    return 0


def token(subject: str | None) -> int:
    """Print a bearer token for a demo user (signed with this checkout's stack secret)."""
    stack = Stack(StackConfig())
    if not subject:
        print("Demo users (make token USER=<subject>):", file=sys.stderr)
        for u in demo.USERS:
            dept = f" department={u.department_id}" if u.department_id else ""
            print(f"  {u.subject:<12} {u.role:<12} {u.area:<28}{dept}  {u.name}", file=sys.stderr)
        return 0
    try:
        print(stack.mint_demo_token(subject))
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    return 0


def recover_broker(since: str | None, dry_run: bool) -> int:
    """Publish again, from every service's outbox, what a lost broker may not have delivered:
    everything sent since the stack's safe point (or ``since``). For a broker that lost its
    messages while the supervisor did not see it go (the supervisor does this by itself when
    the broker dies). PostgreSQL must be running (``make up``)."""
    from shared.ops import parse_since
    from stack.supervisor import SafePoint, republish_outboxes

    stack = Stack(StackConfig())
    point = SafePoint(stack.config.data_dir / SAFE_POINT_FILE).value
    when = parse_since(since) if since else point
    if when is None:
        print(
            "No safe point recorded in this data folder: give --since (e.g. 2h, or when the "
            "lost broker started).",
            file=sys.stderr,
        )
        return 2
    try:
        done = asyncio.run(republish_outboxes(stack, when, dry_run=dry_run, wait=5))
    except (OSError, TimeoutError) as exc:
        print(
            f"Cannot reach PostgreSQL at {stack.postgres.dsn('')}: {exc}. Is the stack "
            "running (make up)?",
            file=sys.stderr,
        )
        return 1
    verb = "would publish again" if dry_run else "publishing again"
    print(f"Events sent since {when.isoformat()} ({verb}):")
    for service, d in done.items():
        kept = (
            f"; rows sent before {d.oldest_kept.isoformat()} were purged"
            if (d.oldest_kept and d.oldest_kept > when)
            else ""
        )
        print(f"  {service:<9} {d.rows} events, {d.in_flight} due now{kept}")
    if not dry_run:
        print(
            "The services' relays publish them now, in order; consumers ignore what they "
            "already handled. Make sure the topics exist (the stack creates them at start)."
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("command", choices=["up", "token", "recover-broker"])
    parser.add_argument("user", nargs="?", help="token: the demo user's subject")
    parser.add_argument(
        "--since",
        help="recover-broker: 90m, 2h, 3d or an ISO time "
        "(default: the stack's recorded safe point)",
    )
    parser.add_argument("--dry-run", action="store_true", help="recover-broker: only count")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.command == "up":
        return up()
    if args.command == "recover-broker":
        return recover_broker(args.since, args.dry_run)
    return token(args.user)


if __name__ == "__main__":
    sys.exit(main())
