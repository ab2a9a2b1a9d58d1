"""Recipients, their preferences and their in-app inbox."""

from __future__ import annotations

from types import SimpleNamespace

import asyncpg
import structlog

from services.notify import channels, domain, repository
from services.notify.channels import targets
from services.notify.domain import (
    ChannelPref,
    Preferences,
    Recipient,
    RecipientKind,
)
from services.notify.repository import InboxMessage
from services.notify.sealing import SecretBox
from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound
from shared.db import Conn

log = structlog.get_logger()


def _not_found(recipient_id: str) -> NotFound:
    return NotFound(
        f"接收方“{recipient_id}”不存在",
        f"recipient '{recipient_id}' not found",
        code="recipient_not_found",
    )


# --- recipients ---------------------------------------------------------------------------


def _by(who: Principal) -> dict[str, str]:
    """Who did it, for the log line of a change."""
    return {"actor": who.subject, "actor_role": who.role.value}


def _checked_recipient(recipient: Recipient, allow_private: bool) -> None:
    """The recipient's own rules; unless ``allow_private``, its webhook_url must not be a
    loopback, link-local or private address (``channels.targets``)."""
    domain.validate_recipient(recipient)
    if recipient.webhook_url is not None and not allow_private:
        try:
            targets.check_settings(SimpleNamespace(url=recipient.webhook_url))
        except channels.InvalidSetting as exc:
            raise Invalid(
                "webhook_" + exc.zh, "webhook_" + exc.en, code="invalid_webhook_url"
            ) from None


async def create_recipient(
    pool: asyncpg.Pool,
    who: Principal,
    recipient: Recipient,
    box: SecretBox,
    *,
    allow_private: bool = False,
) -> Recipient:
    _checked_recipient(recipient, allow_private)
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.insert_recipient(conn, recipient, box):
            raise Conflict(
                f"接收方“{recipient.id}”已存在",
                f"recipient '{recipient.id}' exists",
                code="recipient_exists",
            )
    log.info("recipient_created", recipient_id=recipient.id, kind=recipient.kind.value, **_by(who))
    return recipient


async def update_recipient(
    pool: asyncpg.Pool,
    who: Principal,
    recipient: Recipient,
    box: SecretBox,
    *,
    allow_private: bool = False,
) -> Recipient:
    _checked_recipient(recipient, allow_private)
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.update_recipient(conn, recipient, box):
            raise _not_found(recipient.id)
    log.info("recipient_updated", recipient_id=recipient.id, **_by(who))
    return recipient


async def list_recipients(
    pool: asyncpg.Pool, kind: RecipientKind | None, box: SecretBox
) -> list[Recipient]:
    async with pool.acquire() as conn:
        return await repository.list_recipients(conn, kind.value if kind else None, box)


async def get_recipient(pool: asyncpg.Pool, recipient_id: str, box: SecretBox) -> Recipient:
    async with pool.acquire() as conn:
        recipient = await repository.get_recipient(conn, recipient_id, box)
    if recipient is None:
        raise _not_found(recipient_id)
    return recipient


def _checked_channel(
    i: int, wanted: ChannelPref, stored: Preferences, allow_private: bool
) -> ChannelPref:
    """One channel's settings, checked by the channel itself; secrets left out (or sent back
    masked) keep their stored value. A bad setting is named with its place in the list.
    Unless ``allow_private``, the target must not be a loopback, link-local or private
    address (``channels.targets``)."""
    kind = wanted.kind.value
    old = stored.channel(kind)
    try:
        raw = domain.keep_secrets(kind, wanted.settings, old.settings if old else None)
        typed = channels.validate_settings(kind, raw)
        if not allow_private:
            targets.check_settings(typed)
    except Invalid as exc:  # a channel's setting, or a secret a new host lacks
        where = f"channels[{i}].settings."
        raise Invalid(where + exc.zh, where + exc.en, code=exc.code) from None
    return ChannelPref(wanted.kind, raw)


async def set_preferences(
    pool: asyncpg.Pool,
    who: Principal,
    recipient_id: str,
    wanted: Preferences,
    box: SecretBox,
    *,
    allow_private: bool = False,
) -> Recipient:
    """Replace a recipient's channels, language, quiet hours and muted defaults: all
    checked, or nothing changes. The channels' settings are stored sealed."""
    domain.check_preferences(wanted)
    async with pool.acquire() as conn, conn.transaction():
        recipient = await repository.get_recipient(conn, recipient_id, box, lock=True)
        if recipient is None:
            raise _not_found(recipient_id)
        checked = Preferences(
            channels=tuple(
                _checked_channel(i, c, recipient.preferences, allow_private)
                for i, c in enumerate(wanted.channels)
            ),
            locale=wanted.locale,
            quiet_start=wanted.quiet_start,
            quiet_end=wanted.quiet_end,
            muted=domain.check_mutes(recipient.kind, wanted.muted),
        )
        await repository.set_preferences(conn, recipient_id, checked, box)
        recipient = await repository.get_recipient(conn, recipient_id, box)
    log.info(
        "preferences_set",
        recipient_id=recipient_id,
        channels=[c.kind.value for c in checked.channels],
        locale=checked.locale,
        muted=list(checked.muted),
        **_by(who),
    )
    assert recipient is not None
    return recipient


async def _readable_recipient(
    conn: Conn, who: Principal, recipient_id: str, box: SecretBox
) -> Recipient:
    """The recipient whose inbox ``who`` asks for: 404 if unknown, 403 if not theirs."""
    recipient = await repository.get_recipient(conn, recipient_id, box)
    if recipient is None:
        raise _not_found(recipient_id)
    domain.check_inbox_access(who, recipient)
    return recipient


async def inbox(
    pool: asyncpg.Pool,
    who: Principal,
    recipient_id: str,
    box: SecretBox,
    *,
    unread: bool | None,
    limit: int,
    offset: int,
) -> list[InboxMessage]:
    async with pool.acquire() as conn:
        await _readable_recipient(conn, who, recipient_id, box)
        return await repository.list_inbox(
            conn, recipient_id, unread=unread, limit=limit, offset=offset
        )


async def mark_read(
    pool: asyncpg.Pool, who: Principal, recipient_id: str, message_id: int, box: SecretBox
) -> InboxMessage:
    async with pool.acquire() as conn, conn.transaction():
        await _readable_recipient(conn, who, recipient_id, box)  # before anything is written
        message = await repository.mark_read(conn, recipient_id, message_id)
    if message is None:
        raise NotFound(
            f"接收方“{recipient_id}”没有消息 {message_id}",
            f"recipient '{recipient_id}' has no message {message_id}",
            code="message_not_found",
        )
    return message


async def stream_start(
    pool: asyncpg.Pool, who: Principal, recipient_id: str, box: SecretBox, after: int | None
) -> int:
    """Checks that ``who`` may read the recipient's inbox (before the stream opens) and
    returns the position to stream after: ``after`` as the browser sent it back, else the
    latest message now (the stream carries what comes next; the inbox API has the rest).
    An ``after`` beyond the latest number was never sent by this stream (a browser that
    followed another database, e.g. before a reset): resuming there would silently skip
    every message until the numbers pass it, so the stream starts from the beginning."""
    async with pool.acquire() as conn:
        await _readable_recipient(conn, who, recipient_id, box)
        latest = await repository.last_inbox_seq(conn, recipient_id)
        return latest if after is None else (0 if after > latest else after)


async def stream_batch(
    pool: asyncpg.Pool, recipient_id: str, after: int, limit: int
) -> list[InboxMessage]:
    async with pool.acquire() as conn:
        return await repository.inbox_after(conn, recipient_id, after, limit)
