"""The migration runner: numbered ``NNNN_name.sql`` files per namespace (``shared`` for the
outbox and inbox, then the service's own), applied in order under an advisory lock, each in
its own transaction, recorded with a checksum. An edited migration is refused."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import structlog
from shared.db import Conn

log = structlog.get_logger()

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x57_48_49_53  # "WHIS": one advisory lock per database
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    namespace: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(namespace: str, folder: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name not NNNN_name.sql: {path}")
        found.append(Migration(namespace, int(match[1]), path.name, path.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {folder}")
    return found


async def apply(conn: Conn, sources: list[tuple[str, Path]]) -> list[str]:
    """Apply what is pending; return the names applied. Safe to run from many replicas."""
    migrations = [m for ns, folder in sources for m in load(ns, folder)]
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   namespace text NOT NULL,
                   version int NOT NULL,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (namespace, version))"""
        )
        rows = await conn.fetch("SELECT namespace, version, name, checksum FROM schema_migrations")
        done = {(r["namespace"], r["version"]): r for r in rows}
        for m in migrations:
            row = done.get((m.namespace, m.version))
            if row is not None:
                if row["checksum"] != m.checksum:
                    raise MigrationError(
                        f"migration {m.namespace}/{m.name} was edited after it was applied "
                        f"(checksum {row['checksum'][:12]} != {m.checksum[:12]}); "
                        "add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (namespace, version, name, checksum)"
                    " VALUES ($1, $2, $3, $4)",
                    m.namespace,
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("migration_applied", namespace=m.namespace, migration=m.name)
            applied.append(f"{m.namespace}/{m.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied
