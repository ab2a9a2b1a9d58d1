"""A recipient's preferences: channels in order, language, quiet hours (免打扰时段).

The in-app inbox is always on and is not listed. The other channels are tried in order: a
message goes to the first one, and to the next only when that one keeps failing. Quiet
hours (Beijing time) hold back everything but the inbox; urgent cases ignore them.

Channel settings hold secrets (a robot's key, a signing secret, an SMTP password): they are
stored as given and never shown in full; a settings object sent back with a secret left out
or still masked keeps the stored secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from services.notify.domain.core import Channel, Preferences
from shared.clock import BEIJING
from shared.errors import Invalid

LOCALES = ("zh-CN", "en")
MASK = "****"

# Settings that are secrets; robot URLs carry their credential too (a query key or the path).
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "webhook": ("secret",),
    "dingtalk": ("secret",),
    "feishu": ("secret",),
    "email": ("password",),
    "sms": ("app_secret",),
    "wecom": (),
}
URL_SECRET_QUERY = {"wecom": "key", "dingtalk": "access_token"}
URL_SECRET_PATH = {"feishu"}


def check_preferences(p: Preferences) -> Preferences:
    kinds = [c.kind for c in p.channels]
    if Channel.INBOX in kinds:
        raise Invalid(
            "channels：站内信（inbox）始终开启，列表只需列出其他渠道",
            "channels: the inbox is always on; list only the other channels",
            code="inbox_always_on",
        )
    if len(set(kinds)) != len(kinds):
        raise Invalid(
            "channels：每种渠道只能出现一次",
            "channels: each channel may appear only once",
            code="duplicate_channel",
        )
    if p.locale not in LOCALES:
        raise Invalid(
            f"locale：语言只能是 {' / '.join(LOCALES)}",
            f"locale: must be one of {', '.join(LOCALES)}",
            code="invalid_locale",
        )
    if (p.quiet_start is None) != (p.quiet_end is None) or (
        p.quiet_start is not None and p.quiet_start == p.quiet_end
    ):
        raise Invalid(
            "quiet_hours：免打扰时段须同时给出不同的开始和结束时间",
            "quiet_hours: a start and a different end are needed",
            code="invalid_quiet_hours",
        )
    return p


def quiet_until(
    now: datetime, start: time | None, end: time | None, *, urgent: bool
) -> datetime | None:
    """When quiet hours (Beijing time) end, if ``now`` falls in them; else None. An urgent
    case is never held back. A period may span midnight (22:00–07:00)."""
    if urgent or start is None or end is None:
        return None
    local = now.astimezone(BEIJING)
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    until = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until


# --- secrets ---------------------------------------------------------------------------------


def mask(value: str) -> str:
    """Enough to recognise a secret (its last four characters), never enough to use it."""
    return MASK + value[-4:] if len(value) >= 12 else MASK


def mask_url(kind: str, url: str) -> str:
    parts = urlsplit(url)
    query = parts.query
    if kind in URL_SECRET_QUERY:
        key = URL_SECRET_QUERY[kind]
        query = urlencode(
            [
                (k, mask(v) if k == key else v)
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="*",
        )
    path = parts.path
    if kind in URL_SECRET_PATH and "/" in path:
        head, _, last = path.rpartition("/")
        path = f"{head}/{mask(last)}"
    return urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))


def masked_settings(kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    for key in SECRET_KEYS.get(kind, ()):
        if isinstance(out.get(key), str):
            out[key] = mask(out[key])
    if isinstance(out.get("url"), str) and (kind in URL_SECRET_QUERY or kind in URL_SECRET_PATH):
        out["url"] = mask_url(kind, out["url"])
    return out


def _is_masked(value: Any) -> bool:
    return isinstance(value, str) and MASK in value


def _destination(settings: Mapping[str, Any]) -> tuple[str, int | None] | None:
    """Where a channel's settings send to: the URL's host and port, or the SMTP host."""
    try:
        if isinstance(url := settings.get("url"), str):
            parts = urlsplit(url.strip())
            return (parts.hostname or "").rstrip(".").lower(), parts.port
        if isinstance(host := settings.get("host"), str):
            return host.strip().rstrip(".").lower(), None
    except ValueError:  # a bad port: the channel's own check names it
        return ("?", None)
    return None


def keep_secrets(
    kind: str, new: Mapping[str, Any], old: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``new`` with each secret it leaves out, or sends back masked, taken from ``old`` —
    but only for the same destination. A new host needs a new secret (422
    ``secret_required``): a stored password or signing key never follows a changed host,
    which could be anyone's. (Refused rather than dropped: dropping would quietly turn a
    signed webhook into an unsigned one, or SMTP login into none.)"""
    merged = dict(new)
    if not old:
        return merged
    url = merged.get("url")
    if _is_masked(url) and isinstance(old.get("url"), str) and url == mask_url(kind, old["url"]):
        merged["url"] = old["url"]
    moved = _destination(merged) != _destination(old)
    for key in SECRET_KEYS.get(kind, ()):
        if (key not in merged or _is_masked(merged[key])) and key in old:
            if moved:
                raise Invalid(
                    f"{key}：发送地址已改为新的主机，须同时填写新的 {key}（原密钥不会沿用到新主机）",
                    f"{key}: the destination moved to a new host; give a new {key} with it "
                    "(the stored one does not follow a new host)",
                    code="secret_required",
                )
            merged[key] = old[key]
    return merged


_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(name: str, value: str) -> time:
    m = _HHMM.match(value)
    if not m:
        raise Invalid(
            f"{name}：时间格式应为 HH:MM（北京时间），如 22:00",
            f"{name}: a time as HH:MM (Beijing time), e.g. 22:00",
            code="invalid_quiet_hours",
        )
    return time(int(m.group(1)), int(m.group(2)))
