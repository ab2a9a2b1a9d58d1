"""Reading a channel's settings dict: every problem is an ``InvalidSetting`` naming the field.

Unknown keys are refused too (a typo such as ``secert`` must not silently turn signing off).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable, Mapping
from email.headerregistry import Address
from email.policy import default as default_policy
from typing import Any
from urllib.parse import parse_qs, urlsplit

from services.notify.channels.base import InvalidSetting


class Fields:
    """The raw settings of one channel, read field by field."""

    def __init__(self, raw: Any, allowed: Iterable[str]) -> None:
        if not isinstance(raw, Mapping):
            raise InvalidSetting("settings", "渠道设置必须是 JSON 对象", "must be a JSON object")
        known = sorted(allowed)
        for key in raw:
            if key not in known:
                raise InvalidSetting(
                    str(key),
                    f"不是该渠道的设置项（可用：{'、'.join(known)}）",
                    f"not a setting of this channel (known: {', '.join(known)})",
                )
        self.raw = raw

    @classmethod
    def of(cls, raw: Any, settings: type, **keys: str) -> Fields:
        """``raw`` read against the fields of the channel's ``settings`` dataclass — the one
        list of its keys; ``keys`` names a key that is not its field's name (``sender="from"``)."""
        return cls(raw, (keys.get(f.name, f.name) for f in dataclasses.fields(settings)))

    def text(self, name: str, *, required: bool = False, max_len: int = 2000) -> str | None:
        value = self.raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise InvalidSetting(name, "必填", "is required")
            return None
        if not isinstance(value, str):
            raise InvalidSetting(name, "必须是字符串", "must be a string")
        value = value.strip()
        if len(value) > max_len:
            raise InvalidSetting(
                name, f"不能超过 {max_len} 个字符", f"at most {max_len} characters"
            )
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw.get(name, default)
        if not isinstance(value, bool):
            raise InvalidSetting(name, "必须是 true 或 false", "must be true or false")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.raw.get(name, default)
        if value not in options:
            raise InvalidSetting(
                name, f"只能是 {' / '.join(options)} 之一", f"must be one of {', '.join(options)}"
            )
        return value

    def integer(self, name: str, lo: int, hi: int, default: int | None = None) -> int | None:
        value = self.raw.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InvalidSetting(
                name, f"必须是 {lo}–{hi} 之间的整数", f"must be an integer from {lo} to {hi}"
            )
        return value

    def texts(self, name: str, *, max_items: int = 50) -> list[str]:
        """A list of non-empty strings (a single string is taken as a one-item list)."""
        value = self.raw.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if (
            not isinstance(value, list)
            or len(value) > max_items
            or not all(isinstance(v, str) and v.strip() for v in value)
        ):
            raise InvalidSetting(
                name,
                f"必须是非空字符串列表（最多 {max_items} 项）",
                f"must be a list of non-empty strings (at most {max_items})",
            )
        return [v.strip() for v in value]


# --- addresses -------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(name: str, url: str, *, https_only: bool, query_key: str | None = None) -> str:
    """An absolute http(s) URL with a host. ``https_only``: plain http only to a loopback
    host (tests, a local relay). ``query_key``: the credential the URL must carry."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a bad port raises ValueError
    except ValueError:
        parts, host = None, ""
    if parts is None or parts.scheme not in ("http", "https") or not host or re.search(r"\s", url):
        raise InvalidSetting(
            name, f"“{url}”不是有效的 http(s) 网址", f"'{url}' is not a valid http(s) URL"
        )
    if https_only and parts.scheme != "https" and not is_loopback(host):
        raise InvalidSetting(
            name,
            "机器人地址必须是 https 网址（http 仅限本机地址）",
            "a robot URL must be https (plain http only for a loopback host)",
        )
    if query_key and not parse_qs(parts.query).get(query_key, [""])[0].strip():
        raise InvalidSetting(
            name,
            f"地址中缺少 {query_key} 参数（请复制机器人的完整 webhook 地址）",
            f"the URL lacks its {query_key} parameter (copy the robot's whole webhook address)",
        )
    return url


_LOCAL_PART = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def email_address(name: str, value: str) -> Address:
    """``duty@example.cn`` or ``城管值班室 <duty@example.cn>``: exactly one address. A
    Chinese display name is kept (RFC 2047-encoded in the header); an internationalised
    domain is turned into its ASCII (punycode) form, so no server needs SMTPUTF8; a
    non-ASCII local part is refused for the same reason."""
    bad = InvalidSetting(
        name,
        f"“{value}”不是有效的电子邮件地址（每项一个地址）",
        f"'{value}' is not a valid email address (one address per item)",
    )
    if re.search(r"[\r\n]", value):
        raise bad
    header = default_policy.header_factory("To", value)
    if header.defects or len(header.addresses) != 1:
        raise bad
    parsed = header.addresses[0]
    try:
        domain = parsed.domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise bad from None
    labels = domain.split(".")
    if not (
        _LOCAL_PART.match(parsed.username)
        and ".." not in parsed.username
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
    ):
        raise bad
    return Address(display_name=parsed.display_name, username=parsed.username, domain=domain)


_CN_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def phone_number(name: str, value: str) -> str:
    """A mobile number in E.164 form; an 11-digit Chinese mobile gets its +86."""
    compact = re.sub(r"[\s-]", "", value)
    if m := _CN_MOBILE.match(compact):
        return "+86" + m.group(1)
    if _E164.match(compact):
        return compact
    raise InvalidSetting(
        name, f"“{value}”不是有效的手机号码", f"'{value}' is not a valid mobile number"
    )
