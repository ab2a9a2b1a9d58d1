"""A table of requests a supervisor decides (延期, 挂账/缓办): one row a request, at most one
pending per assignment, read and written the same way whatever the kind asks for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import asyncpg

from services.dispatch.repository.scope import _in_areas, area_scope
from shared.db import Conn


class _Request(Protocol):
    @property
    def id(self) -> UUID: ...


R = TypeVar("R", bound=_Request)
_ASKING = ("reason", "state", "requested_by", "requested_at")


def _value(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v


@dataclass(frozen=True)
class Requests(Generic[R]):
    """One table of requests, its columns named as the request's attributes."""

    table: str
    asked: tuple[str, ...]  # what this kind asks for, beside the reason (days; kind)
    outcome: tuple[str, ...]  # what a decision (or an end) writes, beside state and comment
    row: Callable[[asyncpg.Record], R]

    @property
    def _inserted(self) -> tuple[str, ...]:
        """The columns a new request writes."""
        return ("id", "assignment_id", "case_id", "department_id", *self.asked, *_ASKING)

    @property
    def _updated(self) -> tuple[str, ...]:
        """The columns a decision (or an end) writes."""
        return ("state", "decided_by", "decided_at", "comment", *self.outcome)

    @property
    def columns(self) -> str:
        """Every column, as ``r.<name>``, for a SELECT from the table aliased ``r``."""
        return ", ".join(f"r.{c}" for c in self._inserted + self._updated[1:])

    async def insert(self, conn: Conn, r: R) -> bool:
        """False when the assignment already has a pending request (a concurrent one won)."""
        names = self._inserted
        return bool(
            await conn.fetchval(
                f"INSERT INTO {self.table} ({', '.join(names)})"
                f" VALUES ({', '.join(f'${i}' for i in range(1, len(names) + 1))})"
                " ON CONFLICT (assignment_id) WHERE state = 'pending' DO NOTHING RETURNING true",
                *(_value(getattr(r, c)) for c in names),
            )
        )

    async def save(self, conn: Conn, r: R) -> None:
        """Write back a decision (or an end)."""
        names = self._updated
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(names, start=2))
        await conn.execute(
            f"UPDATE {self.table} SET {sets} WHERE id = $1",
            r.id,
            *(_value(getattr(r, c)) for c in names),
        )

    async def has_pending(self, conn: Conn, assignment_id: UUID) -> bool:
        return bool(
            await conn.fetchval(
                f"SELECT true FROM {self.table} WHERE assignment_id = $1 AND state = 'pending'",
                assignment_id,
            )
        )

    async def get(self, conn: Conn, request_id: UUID, *, lock: bool = False) -> R | None:
        row = await conn.fetchrow(
            f"SELECT {self.columns} FROM {self.table} r WHERE r.id = $1"
            + (" FOR UPDATE" if lock else ""),
            request_id,
        )
        return self.row(row) if row else None

    async def of_assignment(self, conn: Conn, assignment_id: UUID) -> list[R]:
        rows = await conn.fetch(
            f"SELECT {self.columns} FROM {self.table} r WHERE r.assignment_id = $1"
            " ORDER BY r.requested_at, r.id",
            assignment_id,
        )
        return [self.row(r) for r in rows]

    async def listing(
        self,
        conn: Conn,
        *,
        state: str | None,
        department_id: str | None,
        areas: tuple[str, ...] | None,
        limit: int,
        offset: int,
    ) -> list[R]:
        """Oldest first; with ``areas``, only cases inside the subtrees; with
        ``department_id``, only that department's requests."""
        rows = await conn.fetch(
            f"SELECT {self.columns} FROM {self.table} r"
            " JOIN assignments a ON a.id = r.assignment_id"
            " WHERE ($1::text IS NULL OR r.state = $1)"
            " AND ($2::text IS NULL OR r.department_id = $2)"
            f" AND {_in_areas('a.area_path', 5, 6)}"
            " ORDER BY r.requested_at, r.id LIMIT $3 OFFSET $4",
            state,
            department_id,
            limit,
            offset,
            *area_scope(areas),
        )
        return [self.row(r) for r in rows]
