"""``python -m stack up``: the whole system on the embedded default, until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time

import httpx

from web.config import Settings as ConsoleSettings

from shared import demo
from stack.demo_cases import seed_demo_cases
from stack.stack import APPS, ROOT, PortInUse, Stack, StackConfig


def _banner(stack: Stack) -> str:
    c = stack.config
    lines = ["", "Whistle 吹哨 is up — embedded default (one machine, no Docker).", "",
             f"  Console 网页工作台   {stack.console_url}   (sign in as a demo user, password "
             f"{DEMO_PASSWORD})", ""]
    for s in ("intake", "dispatch", "tracking", "notify"):
        u = stack.url(s)
        lines.append(f"  {s:<9} {u}   OpenAPI {u}/docs   AsyncAPI {u}/asyncapi")
    lines += [
        "",
        f"  PostgreSQL   {stack.postgres.dsn('')}  databases: "
        + ", ".join(stack.database(s) for s in APPS),
        f"  Kafka        {stack.kafka.bootstrap}  (Tansu broker, messages in memory)",
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
    config = config or StackConfig()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(config.data_dir / "stack.lock", "a+")  # noqa: SIM115 - held while we run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        pid = lock.read().strip() or "?"
        print(f"Whistle is already running (pid {pid}) with data in {config.data_dir}. "
              f"Stop it with Ctrl-C in its terminal (or `kill {pid}`) before starting another.",
              file=sys.stderr)
        return 1
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()

    stopping = False

    def _stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started in the background (SIGINT ignored)
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
        while True:
            for s, proc in stack.processes.items():
                if proc.poll() is not None:
                    print(f"{s} exited with {proc.returncode}; restarting it "
                          f"(log: {config.log_dir / s}.log)", flush=True)
                    time.sleep(1)
                    stack.start_service(s)
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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("command", choices=["up", "token"])
    parser.add_argument("user", nargs="?", help="token: the demo user's subject")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.command == "up":
        return up()
    return token(args.user)


if __name__ == "__main__":
    sys.exit(main())
