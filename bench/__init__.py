"""Benchmarks on the real embedded servers (``make bench``)."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stack.postgres import EmbeddedPostgres


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def embedded_postgres(*databases: str) -> Iterator[EmbeddedPostgres]:
    """A throw-away PostgreSQL on a free loopback port with ``databases`` created."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pg = EmbeddedPostgres(base / "pg", free_port(), base / "pg.log")
        pg.init()
        pg.start()
        try:
            pg.create_databases(list(databases))
            yield pg
        finally:
            pg.destroy()
