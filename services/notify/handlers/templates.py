"""Message templates: operators read, replace and reset them; the delivery path reads the
ones in force (``TemplatesInForce``), re-reading only when a change moved the revision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from services.notify import domain, repository
from services.notify.domain import LOCALES, MessageTemplate, NoticeKind, Wording
from services.notify.handlers.recipients import _by
from shared.auth import Principal
from shared.db import Conn

log = structlog.get_logger()


class TemplatesInForce:
    """The wording messages are written in: the shipped one with the stored replacements
    over it. Cached per process under the revision it was read at; each notice first reads
    the revision (one row) in its own transaction, so a change is in force for the next
    message on every replica."""

    def __init__(self, shipped: Wording | None = None) -> None:
        self._shipped = shipped or domain.shipped()
        self._wording = self._shipped
        self._revision: int | None = None

    async def wording(self, conn: Conn) -> Wording:
        revision = await repository.template_revision(conn)
        if revision != self._revision:
            stored = await repository.stored_templates(conn)
            wording, refused = self._shipped.with_overrides(s.template for s in stored)
            for t, exc in refused:  # stored by an older release that accepted it
                log.warning(
                    "template_override_ignored",
                    kind=t.kind.value,
                    locale=t.locale,
                    code=exc.code,
                    detail=exc.en,
                )
            self._wording, self._revision = wording, revision
        return self._wording


@dataclass(frozen=True)
class TemplateView:
    """A template as an operator sees it: the text in force and where it comes from."""

    template: MessageTemplate
    default: bool
    fields: tuple[str, ...]
    updated_by: str | None = None
    updated_at: datetime | None = None


async def list_templates(pool: asyncpg.Pool, kind: NoticeKind | None = None) -> list[TemplateView]:
    async with pool.acquire() as conn:
        stored = {
            (s.template.kind, s.template.locale): s for s in await repository.stored_templates(conn)
        }
    shipped = domain.shipped()
    wording, _ = shipped.with_overrides(s.template for s in stored.values())
    views = []
    for k in [kind] if kind else list(NoticeKind):
        for locale in LOCALES:
            s = stored.get((k, locale)) if not wording.is_default(k, locale) else None
            views.append(
                TemplateView(
                    wording.template(k, locale),
                    default=s is None,
                    fields=domain.FIELDS[k],
                    updated_by=s.updated_by if s else None,
                    updated_at=s.updated_at if s else None,
                )
            )
    return views


async def replace_template(
    pool: asyncpg.Pool, who: Principal, kind: NoticeKind, locale: str, title: str, body: str
) -> TemplateView:
    """Checked first (``Invalid``, 422, nothing written), then stored with the revision moved."""
    template = domain.check_template(kind, locale, title, body)
    async with pool.acquire() as conn, conn.transaction():
        revision = await repository.next_template_revision(conn)
        await repository.upsert_template(conn, template, who.subject)
    log.info("template_replaced", kind=kind.value, locale=locale, revision=revision, **_by(who))
    return await _view(pool, kind, locale)


async def reset_template(
    pool: asyncpg.Pool, who: Principal, kind: NoticeKind, locale: str
) -> TemplateView:
    """Back to the shipped template (already there: nothing changes)."""
    domain.check_locale(locale)
    async with pool.acquire() as conn, conn.transaction():
        if await repository.template_stored(conn, kind, locale):
            revision = await repository.next_template_revision(conn)  # first, as in a replace
            await repository.delete_template(conn, kind, locale)
            log.info(
                "template_reset", kind=kind.value, locale=locale, revision=revision, **_by(who)
            )
    return await _view(pool, kind, locale)


async def _view(pool: asyncpg.Pool, kind: NoticeKind, locale: str) -> TemplateView:
    return next(v for v in await list_templates(pool, kind) if v.template.locale == locale)
