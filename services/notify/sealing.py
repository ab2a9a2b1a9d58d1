"""Channel secrets sealed at rest (an adapter): robot URLs carrying their key, signing
secrets, SMTP passwords and SMS app secrets never lie in the database in plain text.

A recipient's channel is stored as ``{"kind", "sealed": <Fernet token of its settings
JSON>}`` — the whole settings object, because robot URLs carry their credential in the query
or the path — and the first way of giving a webhook secret (``recipients.webhook_secret``)
as ``fernet:<token>``. Fernet is AES-128-CBC with HMAC-SHA256 (``cryptography``).

Keys come from ``CHANNEL_SECRETS_KEYS``: comma-separated Fernet keys, the newest first.
The newest seals; every one opens (``MultiFernet``). To rotate: put a new key first, restart
(each replica re-seals what an older key sealed when it starts, ``Resealer``), then drop the
old key. Rows written before sealing existed are sealed the same way, at start.

A value no configured key opens (a key dropped too early) does not break the recipient: the
channel reads as unreadable (``{"__unreadable__": true}``, a webhook secret as
``"__unreadable__"``), its deliveries fail for good — never unsigned — and the next channel
takes over; the log says which recipient.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = structlog.get_logger()

PREFIX = "fernet:"
# what an unreadable channel's settings read as (the worker refuses to use them)
UNREADABLE = "__unreadable__"


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        self._newest = Fernet(keys[0])
        self._all = MultiFernet([Fernet(k) for k in keys])

    # -- one value -----------------------------------------------------------------------------

    def seal(self, text: str) -> str:
        return self._all.encrypt(text.encode()).decode()

    def open(self, token: str) -> str:
        return self._all.decrypt(token.encode()).decode()

    def is_current(self, token: str) -> bool:
        """Sealed with the newest key (nothing to rotate)."""
        try:
            self._newest.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        return self._all.rotate(token.encode()).decode()

    # -- a recipient's columns -----------------------------------------------------------------

    def seal_secret(self, secret: str | None) -> str | None:
        return None if secret is None else PREFIX + self.seal(secret)

    def open_secret(self, stored: str | None, *, recipient_id: str = "") -> str | None:
        if stored is None or not stored.startswith(PREFIX):
            return stored  # not sealed yet (sealed at the next start)
        try:
            return self.open(stored.removeprefix(PREFIX))
        except InvalidToken:  # never None: that would send the webhook unsigned
            log.error("secret_unreadable", recipient_id=recipient_id, column="webhook_secret")
            return UNREADABLE

    def seal_channels(self, channels: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``[{"kind", "settings"}]`` → ``[{"kind", "sealed"}]``."""
        return [
            {
                "kind": c["kind"],
                "sealed": self.seal(json.dumps(c.get("settings") or {}, ensure_ascii=False)),
            }
            for c in channels
        ]

    def open_channels(
        self, stored: Sequence[Mapping[str, Any]] | None, *, recipient_id: str = ""
    ) -> list[dict[str, Any]]:
        """``[{"kind", "sealed"}]`` (or plain ``settings``, not sealed yet) → ``[{"kind",
        "settings"}]``."""
        opened = []
        for c in stored or []:
            if "sealed" not in c:
                opened.append({"kind": c["kind"], "settings": c.get("settings") or {}})
                continue
            try:
                settings = json.loads(self.open(c["sealed"]))
            except InvalidToken:
                log.error("secret_unreadable", recipient_id=recipient_id, channel=c["kind"])
                settings = {UNREADABLE: True}
            opened.append({"kind": c["kind"], "settings": settings})
        return opened

    def reseal_channels(
        self, stored: Sequence[Mapping[str, Any]]
    ) -> tuple[list[dict[str, Any]], int]:
        """Plain channels sealed, older keys' tokens re-sealed with the newest; how many
        changed. An unreadable token is left as it is (logged)."""
        out, changed = [], 0
        for c in stored:
            if "sealed" not in c:
                out.extend(self.seal_channels([c]))
                changed += 1
            elif not self.is_current(c["sealed"]):
                try:
                    out.append({"kind": c["kind"], "sealed": self.rotate(c["sealed"])})
                    changed += 1
                except InvalidToken:
                    out.append(dict(c))
            else:
                out.append(dict(c))
        return out, changed

    def reseal_secret(self, stored: str | None) -> str | None:
        """The column's new value, or None when it needs no change."""
        if stored is None:
            return None
        if not stored.startswith(PREFIX):
            return self.seal_secret(stored)
        token = stored.removeprefix(PREFIX)
        if self.is_current(token):
            return None
        try:
            return PREFIX + self.rotate(token)
        except InvalidToken:
            return None


# --- sealing what is not sealed yet, re-sealing what an older key sealed ----------------------

_TODO = """
SELECT id FROM recipients WHERE webhook_secret IS NOT NULL OR channels <> '[]'::jsonb
ORDER BY id
"""


async def reseal_all(pool: asyncpg.Pool, box: SecretBox) -> int:
    """Seal every recipient's plain secrets and re-seal those an older key sealed, one row
    per short transaction (row-locked: replicas starting together do not fight). Returns how
    many rows changed."""
    changed = 0
    async with pool.acquire() as conn:
        ids = [r["id"] for r in await conn.fetch(_TODO)]
        for rid in ids:
            async with conn.transaction():
                row = await conn.fetchrow(
                    "SELECT channels, webhook_secret FROM recipients WHERE id = $1 FOR UPDATE", rid
                )
                if row is None:
                    continue
                channels, n = box.reseal_channels(row["channels"] or [])
                secret = box.reseal_secret(row["webhook_secret"])
                if n or secret is not None:
                    await conn.execute(
                        "UPDATE recipients SET channels = $2,"
                        " webhook_secret = coalesce($3, webhook_secret) WHERE id = $1",
                        rid,
                        channels,
                        secret,
                    )
                    changed += 1
    return changed


class Resealer:
    """A background worker that runs ``reseal_all`` when the service starts, again and again
    (capped backoff) until it succeeds: a rotation drops the old key once every replica has
    restarted, so a reseal that failed (the database not reachable yet) and was left for
    the next start would leave rows only the old key opens."""

    def __init__(
        self,
        get_pool: Callable[[], asyncpg.Pool],
        box: SecretBox,
        *,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
    ) -> None:
        self._get_pool = get_pool
        self._box = box
        self._retry = retry_seconds
        self._retry_max = retry_max_seconds
        self._task: asyncio.Task | None = None
        self.done = asyncio.Event()  # set once every row is sealed with the newest key

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reseal-secrets")

    async def _run(self) -> None:
        delay = self._retry
        while True:
            try:
                changed = await reseal_all(self._get_pool(), self._box)
            except Exception as exc:  # reading copes with plain and old-key rows meanwhile
                log.exception("secrets_reseal_failed", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            log.info("secrets_resealed", recipients=changed)
            self.done.set()
            return

    async def stop(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
