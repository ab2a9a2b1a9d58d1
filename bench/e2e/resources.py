"""CPU seconds and RSS of every process of the stack, sampled with psutil in a thread.

Groups: each service and the gateway (the process and any children), PostgreSQL (the
postmaster and all its backends and workers; backends that exited are counted through the
postmaster's reaped-children times), the broker, and this benchmark's own process (the load
generator shares the machine's two cores with the system it measures).
"""

from __future__ import annotations

import os
import threading
import time

import psutil


def _cpu(p: psutil.Process, *, reaped: bool) -> float:
    t = p.cpu_times()
    own = t.user + t.system
    if reaped:  # children that exited and were waited for (PostgreSQL's backends)
        own += t.children_user + t.children_system
    return own


class Group:
    """One named process and its descendants."""

    def __init__(
        self, name: str, pid: int, *, count_reaped: bool = False, descendants: bool = True
    ) -> None:
        self.name = name
        self.pid = pid
        self.count_reaped = count_reaped
        self.descendants = descendants
        self.cpu_start: float | None = None
        self.cpu_last: float = 0.0
        self.rss_max = 0
        self.processes_max = 0

    def read(self) -> tuple[float, int, int] | None:
        """(CPU seconds, RSS bytes summed, number of processes) now; None if gone."""
        try:
            root = psutil.Process(self.pid)
            procs = [root, *(root.children(recursive=True) if self.descendants else ())]
        except psutil.Error:
            return None
        cpu = rss = n = 0
        for p in procs:
            try:
                cpu += _cpu(p, reaped=self.count_reaped and p.pid == self.pid)
                rss += p.memory_info().rss
                n += 1
            except psutil.Error:
                continue
        return cpu, rss, n

    def sample(self) -> None:
        got = self.read()
        if got is None:
            return
        cpu, rss, n = got
        if self.cpu_start is None:
            self.cpu_start = cpu
        self.cpu_last = max(self.cpu_last, cpu)
        self.rss_max = max(self.rss_max, rss)
        self.processes_max = max(self.processes_max, n)

    def result(self, seconds: float) -> dict:
        cpu = self.cpu_last - (self.cpu_start or self.cpu_last)
        return {
            "cpu_seconds": cpu,
            "cpu_percent": 100 * cpu / seconds if seconds else 0.0,
            "rss_max_mb": self.rss_max / 2**20,
            "processes_max": self.processes_max,
        }


def stack_groups(stack) -> list[Group]:
    groups = [Group(name, proc.pid) for name, proc in stack.processes.items()]
    if stack.postgres.process is not None:
        groups.append(Group("postgres", stack.postgres.process.pid, count_reaped=True))
    if stack.kafka.process is not None:
        groups.append(Group("broker", stack.kafka.process.pid))
    # Its own process only: the stack's processes are its children.
    groups.append(Group("bench (load generator)", os.getpid(), descendants=False))
    return groups


class Sampler:
    """``with Sampler(stack) as s: ...``; then ``s.result()``: per group CPU and max RSS."""

    def __init__(self, stack, interval: float = 0.5) -> None:
        self.groups = stack_groups(stack)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self.started = self.stopped = 0.0
        self.machine_start = self.machine_end = None

    def _sample(self) -> None:
        for g in self.groups:
            g.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self.started = time.monotonic()
        self.machine_start = psutil.cpu_times()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.stopped = time.monotonic()
        self.machine_end = psutil.cpu_times()

    def result(self) -> dict:
        seconds = self.stopped - self.started
        out = {g.name: g.result(seconds) for g in self.groups}
        a, b = self.machine_start, self.machine_end
        busy = sum(
            getattr(b, f) - getattr(a, f)
            for f in ("user", "system", "nice", "irq", "softirq", "steal")
            if hasattr(a, f)
        )
        idle = sum(getattr(b, f) - getattr(a, f) for f in ("idle", "iowait") if hasattr(a, f))
        out["machine (all processes)"] = {
            "cpu_seconds": busy,
            "cpu_percent": 100 * busy / seconds if seconds else 0.0,
            "cpu_busy_share": busy / (busy + idle) if busy + idle else 0.0,
            "rss_max_mb": None,
            "processes_max": None,
        }
        return {"seconds": seconds, "cores": psutil.cpu_count(), "groups": out}
