"""``make bench-e2e`` / ``python -m bench.e2e``: the embedded system end to end, under
open-loop load at fixed rates and a closed-loop maximum, against this machine's floor.

    python -m bench.e2e --rates 10,25,50 --seconds 10       # a short run
    python -m bench.e2e                                       # 25..400/s, 30 s each, closed loop

Prints one table per part (throughput, HTTP statuses, segment latency from the databases,
resources of every process, commits per case, the floor, the ratios) and writes the same as
JSON (``--out``, default test-artifacts/bench/e2e.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psutil

from bench import free_port
from bench.e2e import floor as floor_mod
from bench.e2e import statements as statements_mod
from bench.e2e.load import ClosedLoad, TimedLoad
from bench.e2e.profile import Profiler
from bench.e2e.report import derive, render
from bench.e2e.resources import Sampler
from bench.e2e.segments import Reader, segment_stats, wait_for_drain
from stack.stack import APPS, ROOT, Stack, StackConfig

DEFAULT_OUT = ROOT / "test-artifacts" / "bench" / "e2e.json"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.e2e",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--rates",
        default="25,50,100,200,400",
        help="open-loop arrival rates in cases/s, comma-separated (default %(default)s)",
    )
    p.add_argument(
        "--seconds", type=float, default=30.0, help="load window per rate (default %(default)s)"
    )
    p.add_argument(
        "--clients",
        type=int,
        default=32,
        help="closed-loop concurrent clients; 0 skips the closed loop (default %(default)s)",
    )
    p.add_argument(
        "--closed-seconds", type=float, default=None, help="closed-loop window (default: --seconds)"
    )
    p.add_argument(
        "--drain",
        type=float,
        default=180.0,
        help="after each load, wait at most this long for the backlog (default %(default)s s)",
    )
    p.add_argument(
        "--stall",
        type=float,
        default=30.0,
        help="... or until nothing moved for this long (default %(default)s s)",
    )
    p.add_argument(
        "--give-up",
        type=float,
        default=60.0,
        help="a case's HTTP requests are retried (5xx, 429, timeouts) until this "
        "long after it started (default %(default)s s)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        help="the services' log level (default %(default)s, as make up)",
    )
    p.add_argument(
        "--profile",
        metavar="SERVICE",
        default=None,
        choices=[*APPS, "busiest"],
        help="py-spy this service (or the busiest one in the run before) during "
        "one load window; output under test-artifacts/bench/",
    )
    p.add_argument(
        "--profile-at",
        default=None,
        help="the open-loop rate to profile at, or 'closed' (default: the first "
        "rate >= 50, else the last)",
    )
    p.add_argument(
        "--statements",
        action="store_true",
        help="count PostgreSQL statements per case (pg_stat_statements)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output")
    return p.parse_args(argv)


def stack_config(data_dir: Path, log_level: str, statements: bool = False) -> StackConfig:
    return StackConfig(
        data_dir=data_dir,
        pg_port=free_port(),
        kafka_port=free_port(),
        ports={s: free_port() for s in APPS},
        demo_data=True,
        log_level=log_level,
        # The load reports far more than a person could: lift the abuse limit.
        env={"intake": {"REPORT_RATE_LIMIT_PER_MINUTE": "100000000"}},
        say=say,
        pg_settings=statements_mod.SETTINGS if statements else (),
    )


def commit_delta(
    before: dict, after: dict, idle: dict, seconds: float, cases: int
) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for db in after:
        d = after[db] - before.get(db, after[db]) - idle.get(db, 0.0) * seconds
        out[db] = d / cases if cases else None
    xid = out.pop("xid", None)
    out["total"] = sum(v for v in out.values() if v is not None) if cases else None
    out["writing (xid)"] = xid
    return out


async def settle(stack: Stack, cap: float = 30.0) -> bool:
    """Wait (bounded) until every outbox is sent and every group has read all, then a
    moment for the backends to publish their statistics."""
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        try:
            if not await stack.backlog():
                await asyncio.sleep(2.5)
                return True
        except Exception:  # the broker blinked: look again
            pass
        await asyncio.sleep(0.5)
    return False


def busiest(runs: list[dict]) -> str:
    """The service that used the most CPU in the last run (intake before any run)."""
    if not runs:
        return "intake"
    groups = runs[-1]["resources"]["groups"]
    return max(APPS, key=lambda s: groups.get(s, {}).get("cpu_seconds", 0.0))


async def run_load(
    stack: Stack,
    reader: Reader,
    args: argparse.Namespace,
    *,
    label: str,
    load: TimedLoad,
    seconds: float,
    idle: dict,
    profile: str | None = None,
) -> dict:
    say(f"== {label}: {seconds:g} s" + (f", py-spy on {profile}" if profile else ""))
    if args.statements:
        await statements_mod.reset(reader.conns)
    before = await reader.commits()
    t_before = time.monotonic()
    profiler = None
    with Sampler(stack) as sampler:
        async with load:
            if profile:
                name = f"profile-{profile}-{label.replace(' ', '-').replace('/s', '-per-s')}"
                profiler = Profiler(stack.processes[profile].pid, seconds, args.out.parent, name)
                profiler.start()
            await asyncio.sleep(seconds)
            stats = await load.stop(wait=args.give_up + 15)
    load_end = time.monotonic()
    resources = sampler.result()
    accepted = {UUID(c.case_id): c.departments for c in stats.accepted if c.whistled}
    say(
        f"   {len(stats.cases)} started, {len(stats.accepted)} accepted, "
        f"{len(accepted)} whistled in {stats.seconds:.1f} s; waiting for the backlog"
    )
    drained, drain_s = await wait_for_drain(
        reader, accepted, cap=args.drain, stall=args.stall, say=say
    )
    settled = await settle(stack) if drained else False
    after = await reader.commits()
    window = time.monotonic() - t_before
    traces = await reader.traces(accepted)
    done = [t for t in traces if t.complete]
    span = None
    if done:
        first = min(t.accepted for t in done if t.accepted)
        last = max(t.inbox for t in done if t.inbox)
        span = (last - first).total_seconds()
    result = {
        "label": label,
        "rate": getattr(load, "rate", None) if not isinstance(load, ClosedLoad) else None,
        "clients": getattr(load, "clients", None),
        "seconds": stats.seconds,
        "started": len(stats.cases),
        "accepted": len(stats.accepted),
        "whistled": len(accepted),
        "failed": len(stats.failed),
        "retries": stats.retries,
        "offered_per_s": len(stats.cases) / stats.seconds if stats.seconds else 0.0,
        "accepted_per_s": len(stats.accepted) / stats.seconds if stats.seconds else 0.0,
        "completed": len(done),
        "incomplete": len(traces) - len(done),
        "completed_per_s": len(done) / span if span else 0.0,
        "completion_span_seconds": span,
        "drained": drained,
        "drain_seconds": drain_s,
        "settled": settled,
        "after_load_seconds": time.monotonic() - load_end,
        "statuses": dict(stats.statuses),
        "http": load.http_summary(),
        "segments": segment_stats(done),
        "segments_all_cases": segment_stats(traces),
        "resources": resources,
        "commits_per_case": commit_delta(before, after, idle, window, len(done)),
        "events_per_case": await reader.events_per_case(list(accepted)[:2000]),
        "failures": sorted({c.error for c in stats.failed if c.error})[:10],
    }
    if args.statements:
        result["statements"] = await statements_mod.top(reader.conns, len(done))
    if profiler is not None:
        result["profile"] = {"service": profile, **await asyncio.to_thread(profiler.finish)}
    inbox = result["segments"]["whistle→dept inbox"]
    say(
        f"   completed {len(done)}/{len(traces)} ({result['completed_per_s']:.1f}/s), "
        f"whistle→inbox p50 {inbox['p50'] or 0:.0f} ms p99 {inbox['p99'] or 0:.0f} ms, "
        f"drained {'yes' if drained else 'NO'} after {drain_s:.0f} s"
    )
    return result


async def idle_commit_rate(reader: Reader, seconds: float) -> dict[str, float]:
    """Commits per second per database while nothing is asked of the system (pollers)."""
    await asyncio.sleep(2.5)  # backends publish their counters within about a second idle
    a = await reader.commits()
    t = time.monotonic()
    await asyncio.sleep(seconds)
    b = await reader.commits()
    dt = time.monotonic() - t
    return {k: (b[k] - a[k]) / dt for k in b}


async def measure(stack: Stack, args: argparse.Namespace) -> dict:
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    quick = args.seconds < 15
    stack.postgres.create_databases([floor_mod.FLOOR_DATABASE])
    say("== floor: Kafka hop, produce rate, PostgreSQL commits")
    floor = await floor_mod.measure_floor(
        stack.kafka.bootstrap, stack.postgres.dsn(floor_mod.FLOOR_DATABASE), quick=quick
    )
    runs = []
    async with Reader(stack) as reader:
        say("== warm-up: 5/s for 3 s")
        warm = TimedLoad(stack, rate=5, tag="warm", give_up_after=args.give_up)
        async with warm:
            await asyncio.sleep(3)
        stats = await warm.stop()
        await wait_for_drain(
            reader,
            {UUID(c.case_id): c.departments for c in stats.accepted},
            cap=60,
            stall=20,
            say=say,
        )
        await settle(stack)
        idle = await idle_commit_rate(reader, 3.0 if quick else 6.0)
        at = args.profile_at or next(
            (f"{r:g}" for r in rates if r >= 50), f"{rates[-1]:g}" if rates else "closed"
        )

        def profile(key: str) -> str | None:
            if not args.profile or key != at:
                return None
            return busiest(runs) if args.profile == "busiest" else args.profile

        for rate in rates:
            load = TimedLoad(stack, rate=rate, tag=f"r{rate:g}", give_up_after=args.give_up)
            runs.append(
                await run_load(
                    stack,
                    reader,
                    args,
                    label=f"open {rate:g}/s",
                    load=load,
                    seconds=args.seconds,
                    idle=idle,
                    profile=profile(f"{rate:g}"),
                )
            )
        if args.clients:
            load = ClosedLoad(stack, clients=args.clients, tag="closed", give_up_after=args.give_up)
            runs.append(
                await run_load(
                    stack,
                    reader,
                    args,
                    label=f"closed {args.clients} clients",
                    load=load,
                    seconds=args.closed_seconds or args.seconds,
                    idle=idle,
                    profile=profile("closed"),
                )
            )
    return {"floor": floor, "runs": runs, "idle_commits_per_s": idle}


def machine() -> dict:
    load1, load5, _ = psutil.getloadavg()
    return {
        "host": platform.node(),
        "cores": psutil.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_gb": psutil.virtual_memory().total / 2**30,
        "python": platform.python_version(),
        "loadavg_1m_at_start": load1,
        "loadavg_5m_at_start": load5,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = datetime.now(UTC)
    info = machine()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        config = stack_config(Path(tmp), args.log_level, args.statements)
        stack = Stack(config)
        say(f"== starting the embedded stack in {tmp}")
        t0 = time.monotonic()
        try:
            stack.start()
            say(f"   ready in {time.monotonic() - t0:.0f} s")
            result = asyncio.run(measure(stack, args))
        finally:
            say("== stopping the stack")
            stack.stop()
    result["derived"] = derive(result["floor"], result["runs"])
    info["loadavg_1m_at_end"] = psutil.getloadavg()[0]
    result = {
        "started_at": started.isoformat(),
        "argv": sys.argv[1:],
        "machine": info,
        "note": "figures from a shared machine: other processes (other engineers' "
        "tests) may have run at the same time; see machine CPU in resources",
        **result,
    }
    print(
        f"bench-e2e {started:%Y-%m-%d %H:%M} UTC, {info['cores']} cores, "
        f"load average {info['loadavg_1m_at_start']:.1f} at start / "
        f"{info['loadavg_1m_at_end']:.1f} at end. Figures from a SHARED machine "
        "(others' work runs beside it: compare 'machine' CPU with the stack's).\n"
    )
    print(render(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str, ensure_ascii=False))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
