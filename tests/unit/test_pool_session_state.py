"""Pooled connections are released without asyncpg's session reset (``shared.db``), which is
safe only while no code leaves session state on them. This keeps it so: statements that
outlive a transaction appear only where a dedicated connection runs them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What outlives a transaction on a PostgreSQL session, as it appears in our SQL strings.
SESSION_STATE = {
    "session advisory lock": re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.I),
    # a statement that starts with SET (a call's first string; our SQL keywords are upper case):
    # "UPDATE … SET" and "ON CONFLICT … DO UPDATE SET" are not one
    "SET outside a transaction": re.compile(r"""\(\s*[rf]?("|'|\"\"\")\s*SET\s+(?!LOCAL\b)"""),
    "set_config(..., false)": re.compile(r"set_config\s*\([^)]*,\s*false\s*\)", re.I),
    "LISTEN": re.compile(r"""\(\s*[rf]?("|'|\"\"\")\s*LISTEN\s"""),
    "cursor WITH HOLD": re.compile(r"WITH\s+HOLD", re.I),
    "PREPARE": re.compile(r"""["']\s*PREPARE\s""", re.I),
    "temporary table": re.compile(r"CREATE\s+TEMP(ORARY)?\s+TABLE", re.I),
    "asyncpg listener": re.compile(r"\.add_listener\s*\("),
}
# Where they are allowed: each runs on a connection of its own, never a pooled one.
DEDICATED = {
    "session advisory lock": {"shared/migrations.py", "shared/liveness.py"},
    "asyncpg listener": {"shared/db.py"},
    "LISTEN": {"shared/db.py"},
}


def sources() -> list[Path]:
    return sorted(p for top in ("shared", "services") for p in (ROOT / top).rglob("*.py"))


def test_no_session_state_on_pooled_connections():
    found = []
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text("utf-8")
        for what, pattern in SESSION_STATE.items():
            if rel in DEDICATED.get(what, set()):
                continue
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{rel}:{line}: {what}")
    assert not found, (
        "session state on what may be a pooled connection (released without RESET ALL, "
        "see shared/db.py _keep_session); use the transaction-scoped form or a dedicated "
        "connection:\n" + "\n".join(found)
    )


def test_the_guard_sees_what_it_looks_for():
    samples = {
        "session advisory lock": 'await conn.execute("SELECT pg_advisory_lock($1)", k)',
        "SET outside a transaction": "await conn.execute('SET statement_timeout = 5')",
        "set_config(..., false)": "SELECT set_config('a.b', $1, false)",
        "LISTEN": 'await conn.execute("LISTEN outbox")',
        "cursor WITH HOLD": "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "PREPARE": 'await conn.execute("PREPARE q AS SELECT 1")',
        "temporary table": "CREATE TEMP TABLE t (x int)",
        "asyncpg listener": "await conn.add_listener('c', cb)",
    }
    for what, sample in samples.items():
        assert SESSION_STATE[what].search(sample), what
    harmless = [
        '"UPDATE cases SET status = $2"',
        'execute("SET LOCAL lock_timeout = 100")',
        '" ON CONFLICT DO UPDATE" " SET due_at = $3"',
        'parser.error("set KAFKA_BOOTSTRAP_SERVERS")',
        "pg_advisory_xact_lock(hashtext('x'))",
        "set_config('a.b', $1, true)",
    ]
    for sample in harmless:
        assert not any(p.search(sample) for p in SESSION_STATE.values()), sample
