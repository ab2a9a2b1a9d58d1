"""Where PostgreSQL's time goes per case (``--statements``): pg_stat_statements in every
service database, reset before a load window and read after it, as calls and milliseconds of
execution per completed case, busiest first."""

from __future__ import annotations

from typing import Any

import asyncpg

# The server settings the stack starts PostgreSQL with when statements are counted.
SETTINGS = (
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track=all",
    "pg_stat_statements.max=2000",
)


async def reset(conns: dict[str, asyncpg.Connection]) -> None:
    for conn in conns.values():
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")


async def top(conns: dict[str, asyncpg.Connection], cases: int) -> list[dict]:
    """Every statement of the services' databases since ``reset``, most execution time first,
    per completed case (the bench's own reads left out), then an ``all`` row with the sums.
    ``track=all`` counts statements run inside functions and triggers (foreign-key checks)
    too. The printed table shows the busiest; the JSON keeps them all."""
    rows: list[dict[str, Any]] = []
    for service, conn in conns.items():
        for r in await conn.fetch(
            "SELECT query, calls, total_exec_time FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()"
            " AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_snapshot%'"
        ):
            rows.append(
                {
                    "service": service,
                    "query": " ".join(r["query"].split())[:400],
                    "calls": r["calls"],
                    "ms": r["total_exec_time"],
                }
            )
    total_ms = sum(r["ms"] for r in rows) or 1.0
    total_calls = sum(r["calls"] for r in rows)
    rows.sort(key=lambda r: -r["ms"])
    per = max(cases, 1)
    out = [
        {
            "service": r["service"],
            "query": r["query"],
            "calls_per_case": r["calls"] / per,
            "ms_per_case": r["ms"] / per,
            "share": r["ms"] / total_ms,
        }
        for r in rows
    ]
    out.append(
        {
            "service": "all",
            "query": f"({len(rows)} statements)",
            "calls_per_case": total_calls / per,
            "ms_per_case": total_ms / per,
            "share": 1.0,
        }
    )
    return out
