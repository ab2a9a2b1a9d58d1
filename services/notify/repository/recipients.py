"""Recipients (with their preferences) and the in-app inbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notify.domain import (
    Channel,
    ChannelPref,
    Preferences,
    Recipient,
    RecipientKind,
)
from services.notify.sealing import SecretBox
from shared.db import Conn

_RECIPIENT_COLUMNS = "id, name, kind, department_id, area_path, webhook_url, webhook_secret"
_COLUMNS = _RECIPIENT_COLUMNS + ", channels, locale, quiet_start, quiet_end, muted_events"
_INBOX_COLUMNS = (
    "id, recipient_id, event_id, case_id, type, title, body, title_en, body_en,"
    " link, created_at, read_at, seq"
)


def preferences_of(r: asyncpg.Record, box: SecretBox, recipient_id: str) -> Preferences:
    """The preferences with their channels' settings opened (they are stored sealed)."""
    return Preferences(
        channels=tuple(
            ChannelPref(Channel(c["kind"]), c["settings"])
            for c in box.open_channels(r["channels"], recipient_id=recipient_id)
        ),
        locale=r["locale"],
        quiet_start=r["quiet_start"],
        quiet_end=r["quiet_end"],
        muted=tuple(r["muted_events"] or ()),
    )


def recipient_of(r: asyncpg.Record, box: SecretBox, id_column: str = "id") -> Recipient:
    data = {k: r[id_column if k == "id" else k] for k in _RECIPIENT_COLUMNS.split(", ")}
    data["kind"] = RecipientKind(data["kind"])
    data["webhook_secret"] = box.open_secret(data["webhook_secret"], recipient_id=data["id"])
    return Recipient(**data, preferences=preferences_of(r, box, data["id"]))


def channels_json(p: Preferences, box: SecretBox) -> list[dict[str, Any]]:
    """The channels as stored: each one's settings sealed."""
    return box.seal_channels(
        [{"kind": c.kind.value, "settings": dict(c.settings)} for c in p.channels]
    )


@dataclass(frozen=True)
class InboxMessage:
    id: int
    recipient_id: str
    event_id: UUID
    case_id: UUID
    type: str
    title: str
    body: str
    title_en: str
    body_en: str
    link: str
    created_at: datetime
    read_at: datetime | None
    seq: int  # its place in the recipient's stream (numbered in commit order, see 0005)


# --- recipients ------------------------------------------------------------------------


async def insert_recipient(conn: Conn, r: Recipient, box: SecretBox) -> bool:
    """False if the id is taken. The webhook secret is stored sealed."""
    return bool(
        await conn.fetchval(
            f"INSERT INTO recipients ({_RECIPIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (id) DO NOTHING RETURNING true",
            r.id,
            r.name,
            r.kind.value,
            r.department_id,
            r.area_path,
            r.webhook_url,
            box.seal_secret(r.webhook_secret),
        )
    )


async def update_recipient(conn: Conn, r: Recipient, box: SecretBox) -> bool:
    """False if there is no such recipient. The webhook secret is stored sealed."""
    return bool(
        await conn.fetchval(
            "UPDATE recipients SET name = $2, kind = $3, department_id = $4, area_path = $5,"
            " webhook_url = $6, webhook_secret = $7, updated_at = now() WHERE id = $1 RETURNING true",
            r.id,
            r.name,
            r.kind.value,
            r.department_id,
            r.area_path,
            r.webhook_url,
            box.seal_secret(r.webhook_secret),
        )
    )


async def upsert_recipients(conn: Conn, rows: list[Recipient]) -> None:
    """Demo data: create or rename, never touching webhooks configured since."""
    await conn.executemany(
        "INSERT INTO recipients (id, name, kind, department_id, area_path)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
        " kind = EXCLUDED.kind, department_id = EXCLUDED.department_id,"
        " area_path = EXCLUDED.area_path, updated_at = now()",
        [(r.id, r.name, r.kind.value, r.department_id, r.area_path) for r in rows],
    )


async def get_recipient(
    conn: Conn, recipient_id: str, box: SecretBox, *, lock: bool = False
) -> Recipient | None:
    sql = f"SELECT {_COLUMNS} FROM recipients WHERE id = $1"
    row = await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), recipient_id)
    return recipient_of(row, box) if row else None


async def list_recipients(conn: Conn, kind: str | None, box: SecretBox) -> list[Recipient]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM recipients WHERE ($1::text IS NULL OR kind = $1) ORDER BY id",
        kind,
    )
    return [recipient_of(r, box) for r in rows]


async def set_preferences(conn: Conn, recipient_id: str, p: Preferences, box: SecretBox) -> None:
    await conn.execute(
        "UPDATE recipients SET channels = $2, locale = $3, quiet_start = $4, quiet_end = $5,"
        " muted_events = $6, updated_at = now() WHERE id = $1",
        recipient_id,
        channels_json(p, box),
        p.locale,
        p.quiet_start,
        p.quiet_end,
        list(p.muted),
    )


async def candidate_recipients(
    conn: Conn,
    department_id: str | None,
    area_paths: list[str],
    event_type: str,
    box: SecretBox,
) -> list[Recipient]:
    """Who may hear an event (the domain picks): the department's desks, the desks of the
    case's area and the areas above it, and whoever subscribed to this event type there."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM recipients"
        " WHERE (kind = 'department' AND department_id = $1)"
        "    OR (kind <> 'department' AND area_path = ANY($2::text[]))"
        "    OR id IN (SELECT recipient_id FROM subscriptions WHERE $3 = ANY(event_types)"
        "              AND (area_path IS NULL OR area_path = ANY($2::text[])))",
        department_id,
        area_paths,
        event_type,
    )
    return [recipient_of(r, box) for r in rows]


# --- the in-app inbox ------------------------------------------------------------------------


async def insert_inbox_message(
    conn: Conn,
    *,
    recipient_id: str,
    event_id: UUID,
    case_id: UUID,
    type: str,
    title: str,
    body: str,
    title_en: str,
    body_en: str,
    link: str,
) -> int | None:
    """The new message's id, or None if this recipient already has this event's message.
    The database numbers it in the recipient's stream and wakes the stream at commit."""
    return await conn.fetchval(
        "INSERT INTO inbox_messages (recipient_id, event_id, case_id, type, title, body,"
        " title_en, body_en, link) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (recipient_id, event_id) DO NOTHING RETURNING id",
        recipient_id,
        event_id,
        case_id,
        type,
        title,
        body,
        title_en,
        body_en,
        link,
    )


async def list_inbox(
    conn: Conn, recipient_id: str, *, unread: bool | None, limit: int, offset: int
) -> list[InboxMessage]:
    # Spelled out per case, so the unread page reads the unread index (0006) whatever plan
    # the prepared statement settles on: a page costs what it shows, not the history.
    read = {None: "", True: " AND read_at IS NULL", False: " AND read_at IS NOT NULL"}[unread]
    rows = await conn.fetch(
        f"SELECT {_INBOX_COLUMNS} FROM inbox_messages WHERE recipient_id = $1{read}"
        " ORDER BY id DESC LIMIT $2 OFFSET $3",
        recipient_id,
        limit,
        offset,
    )
    return [InboxMessage(**dict(r)) for r in rows]


async def mark_read(conn: Conn, recipient_id: str, message_id: int) -> InboxMessage | None:
    row = await conn.fetchrow(
        "UPDATE inbox_messages SET read_at = COALESCE(read_at, now())"
        f" WHERE id = $1 AND recipient_id = $2 RETURNING {_INBOX_COLUMNS}",
        message_id,
        recipient_id,
    )
    return InboxMessage(**dict(row)) if row else None


async def inbox_after(conn: Conn, recipient_id: str, after: int, limit: int) -> list[InboxMessage]:
    """The recipient's messages numbered after ``after``, in stream order."""
    rows = await conn.fetch(
        f"SELECT {_INBOX_COLUMNS} FROM inbox_messages WHERE recipient_id = $1 AND seq > $2"
        " ORDER BY seq LIMIT $3",
        recipient_id,
        after,
        limit,
    )
    return [InboxMessage(**dict(r)) for r in rows]


async def last_inbox_seq(conn: Conn, recipient_id: str) -> int:
    """The number of the recipient's latest committed message (0: none yet)."""
    return (
        await conn.fetchval(
            "SELECT coalesce(max(last_seq), 0) FROM inbox_sequences WHERE recipient_id = $1",
            recipient_id,
        )
        or 0
    )
