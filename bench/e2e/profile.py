"""``--profile SERVICE``: py-spy samples one service during one load window.

py-spy attaches to the running process without changing it (``--nonblocking``: it never
pauses the process; it reads its memory). The samples are written as collapsed stacks
(``*.collapsed``: one line per stack, ``frame;frame;... count`` — what flamegraph.pl, inferno
or https://speedscope.app read to draw the flame graph) and summarised as a top list: the
functions where the process spent its time, by own time (the innermost frame) and by total
time (anywhere on the stack), in ``*.txt``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def _frame(f: str) -> str:
    """'handle (shared/broker.py:123)' → 'handle (shared/broker.py)': lines merged."""
    f = _FRAME_LINE.sub(")", f.strip())
    return f.replace(str(Path(sys.prefix)), "<venv>")


def summarise(collapsed: Path, top: int = 40) -> dict:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        n = int(m["count"])
        frames = [_frame(f) for f in m["stack"].split(";") if f]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    pct = (lambda n: 100 * n / samples) if samples else (lambda n: 0.0)
    # The entry point's frames (runpy, uvicorn.run, the event loop) are on nearly every
    # stack and say nothing: leave out those as common as the most common frame.
    widest = max(total.values(), default=0)
    inner = Counter({f: n for f, n in total.items() if n < 0.98 * widest})
    return {
        "samples": samples,
        "own": [(f, pct(n)) for f, n in own.most_common(top)],
        "total": [(f, pct(n)) for f, n in inner.most_common(top)],
    }


def render(summary: dict, title: str) -> str:
    lines = [
        f"{title}: {summary['samples']} samples (threads on CPU; idle excluded)",
        "",
        "own time % (innermost frame)",
    ]
    lines += [f"  {p:5.1f}  {f}" for f, p in summary["own"]]
    lines += ["", "total time % (anywhere on the stack; the entry point's frames left out)"]
    lines += [f"  {p:5.1f}  {f}" for f, p in summary["total"]]
    return "\n".join(lines)


class Profiler:
    """py-spy recording ``pid`` for ``seconds`` into ``out_dir/<name>.collapsed``."""

    def __init__(self, pid: int, seconds: float, out_dir: Path, name: str) -> None:
        self.pid = pid
        self.seconds = max(1, int(seconds))
        self.out_dir = out_dir
        self.name = name
        self.collapsed = out_dir / f"{name}.collapsed"
        self.text = out_dir / f"{name}.txt"
        self.process: subprocess.Popen | None = None
        self.error: str | None = None

    def start(self) -> None:
        binary = py_spy()
        if binary is None:
            self.error = "py-spy not found (it is a dev dependency: make install)"
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(self.pid),
                "--duration",
                str(self.seconds),
                "--rate",
                "100",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(self.collapsed),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def finish(self) -> dict:
        if self.process is None:
            return {"error": self.error}
        try:
            out, _ = self.process.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        if not self.collapsed.exists():
            return {"error": f"py-spy wrote nothing: {out.decode(errors='replace')[-500:]}"}
        summary = summarise(self.collapsed)
        self.text.write_text(render(summary, self.name) + "\n")
        return {"collapsed": str(self.collapsed), "top": str(self.text), **summary}
