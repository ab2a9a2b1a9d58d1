"""Message templates operators replaced (``message_templates``) and their revision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


from services.notify.domain import MessageTemplate, NoticeKind
from shared.db import Conn


@dataclass(frozen=True)
class StoredTemplate:
    template: MessageTemplate
    updated_by: str | None
    updated_at: datetime


async def template_revision(conn: Conn) -> int:
    return await conn.fetchval("SELECT revision FROM message_template_revision")


async def next_template_revision(conn: Conn) -> int:
    """Move the revision on (a change's first write: it also orders concurrent changes)."""
    return await conn.fetchval(
        "UPDATE message_template_revision SET revision = revision + 1 RETURNING revision"
    )


async def stored_templates(conn: Conn) -> list[StoredTemplate]:
    """Every replaced template; a kind this release does not know is left out."""
    rows = await conn.fetch(
        "SELECT kind, locale, title, body, updated_by, updated_at FROM message_templates"
        " ORDER BY kind, locale"
    )
    known = {k.value for k in NoticeKind}
    return [
        StoredTemplate(
            MessageTemplate(NoticeKind(r["kind"]), r["locale"], r["title"], r["body"]),
            r["updated_by"],
            r["updated_at"],
        )
        for r in rows
        if r["kind"] in known
    ]


async def upsert_template(conn: Conn, t: MessageTemplate, updated_by: str) -> None:
    await conn.execute(
        "INSERT INTO message_templates (kind, locale, title, body, updated_by)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, locale) DO UPDATE SET"
        " title = excluded.title, body = excluded.body, updated_by = excluded.updated_by,"
        " updated_at = now()",
        t.kind.value,
        t.locale,
        t.title,
        t.body,
        updated_by,
    )


async def template_stored(conn: Conn, kind: NoticeKind, locale: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM message_templates WHERE kind = $1 AND locale = $2)",
        kind.value,
        locale,
    )


async def delete_template(conn: Conn, kind: NoticeKind, locale: str) -> bool:
    return bool(
        await conn.fetchval(
            "DELETE FROM message_templates WHERE kind = $1 AND locale = $2 RETURNING true",
            kind.value,
            locale,
        )
    )
