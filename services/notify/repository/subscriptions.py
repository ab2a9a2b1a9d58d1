"""Subscriptions: who asked to hear which events besides the defaults."""

from __future__ import annotations

import asyncpg

from services.notify.domain import Subscription
from shared.db import Conn
from shared.dto import from_row

_COLUMNS = (
    "id, recipient_id, event_types, area_path, department_id, categories, priorities, created_by"
)


def _subscription(r: asyncpg.Record) -> Subscription:
    return from_row(Subscription, r, event_types=tuple, categories=tuple, priorities=tuple)


async def insert_subscription(conn: Conn, s: Subscription) -> Subscription:
    row = await conn.fetchrow(
        "INSERT INTO subscriptions (recipient_id, event_types, area_path, department_id,"
        f" categories, priorities, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        f" RETURNING {_COLUMNS}",
        s.recipient_id,
        list(s.event_types),
        s.area_path,
        s.department_id,
        list(s.categories),
        list(s.priorities),
        s.created_by,
    )
    assert row is not None  # RETURNING the row just written
    return _subscription(row)


async def list_subscriptions(
    conn: Conn, recipient_id: str | None, event_type: str | None
) -> list[Subscription]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE ($1::text IS NULL OR recipient_id = $1)"
        " AND ($2::text IS NULL OR $2 = ANY(event_types)) ORDER BY id",
        recipient_id,
        event_type,
    )
    return [_subscription(r) for r in rows]


async def delete_subscription(conn: Conn, subscription_id: int) -> bool:
    return bool(
        await conn.fetchval(
            "DELETE FROM subscriptions WHERE id = $1 RETURNING true", subscription_id
        )
    )


async def subscriptions_for(
    conn: Conn, event_type: str, area_paths: list[str]
) -> list[Subscription]:
    """The subscriptions that may match an event of ``event_type`` in the area whose path
    and ancestors are ``area_paths`` (the domain checks the rest)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE $1 = ANY(event_types)"
        " AND (area_path IS NULL OR area_path = ANY($2::text[]))",
        event_type,
        area_paths,
    )
    return [_subscription(r) for r in rows]
