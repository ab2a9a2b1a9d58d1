"""Email over SMTP (aiosmtplib): STARTTLS, implicit TLS or (loopback only) plain.

Standards: RFC 5321 (SMTP: 4xx replies are transient, 5xx permanent), RFC 3207
(STARTTLS), RFC 8314 (implicit TLS on 465), RFC 2047 (non-ASCII header text such as a
Chinese subject or display name, as ``=?utf-8?b?…?=``), RFC 3834 (``Auto-Submitted``).
Client docs: https://aiosmtplib.readthedocs.io/en/stable/usage.html.

The message is built with the standard library's ``email`` package (policy SMTP: CRLF,
RFC 2047 headers, UTF-8 bodies in base64 or quoted-printable): a plain-text part and, if
the message has one, an HTML alternative. ``Message-ID`` comes from the message id, so a
retry of one delivery carries the same id. Addresses are checked when settings are
validated; an internationalised domain is sent in its ASCII form.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

import aiosmtplib

from services.notify.channels.base import DeliveryResult, InvalidSetting, Message, SendContext
from services.notify.channels import targets
from services.notify.channels.settings import Fields, email_address, is_loopback
from services.notify.channels.targets import PrivateTarget

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True)
class EmailSettings:
    host: str
    port: int
    security: str  # starttls | tls | none
    sender: Address  # settings key "from"
    to: tuple[Address, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    reply_to: Address | None = None
    ca_pem: str | None = None  # a private CA to trust (an intranet mail server)


def build(message: Message, settings: EmailSettings, ctx: SendContext) -> EmailMessage:
    mail = EmailMessage(policy=SMTP)
    mail["Subject"] = message.marked_title()
    mail["From"] = settings.sender
    mail["To"] = settings.to
    if settings.reply_to:
        mail["Reply-To"] = settings.reply_to
    mail["Date"] = format_datetime(ctx.clock())
    safe_id = "".join(c if c.isalnum() or c in "._-" else "-" for c in message.id)
    mail["Message-ID"] = f"<{safe_id}@{settings.sender.domain}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail["Content-Language"] = message.locale
    if message.urgent:
        mail["Importance"] = "high"
        mail["X-Priority"] = "1"
    mail.set_content(message.plain_body(), charset="utf-8")
    if message.html:
        mail.add_alternative(message.html, subtype="html", charset="utf-8")
    return mail


def _reply(code: int, text: str) -> DeliveryResult:
    detail = f"smtp {code}: {text}"
    if 400 <= code < 500:
        return DeliveryResult.retry(f"smtp {code}", detail)
    return DeliveryResult.fail(f"smtp {code}", detail)


def classify(exc: BaseException) -> DeliveryResult:
    """An SMTP failure: a 4xx reply or a broken connection is transient; a 5xx reply, bad
    credentials, a refused certificate or a missing server feature is permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        replies = [_reply(r.code, f"{r.recipient}: {r.message}") for r in exc.recipients]
        transient = [r for r in replies if r.transient]
        return (transient or replies or [DeliveryResult.fail("smtp", str(exc))])[0]
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryResult.fail(f"smtp {exc.code}", f"authentication failed: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _reply(exc.code, exc.message)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return DeliveryResult.fail("tls_certificate", f"certificate refused: {cause}")
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryResult.fail("smtp_not_supported", str(exc))
    if isinstance(exc, TimeoutError):
        return DeliveryResult.retry("timeout", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, OSError | aiosmtplib.SMTPException):
        return DeliveryResult.retry("network", f"{type(exc).__name__}: {exc}")
    raise exc


async def _public_socket(settings: EmailSettings, ctx: SendContext) -> socket.socket:
    """A socket connected to a public address of the SMTP host (``targets``)."""
    address = await targets.public_address(settings.host, settings.port)
    ip = ipaddress.ip_address(address)
    sock = socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(ctx.timeout):
            await asyncio.get_running_loop().sock_connect(sock, (address, settings.port))
    except BaseException:
        sock.close()
        raise
    return sock


class EmailChannel:
    kind = "email"

    def validate_settings(self, raw: Mapping[str, Any]) -> EmailSettings:
        f = Fields.of(raw, EmailSettings, sender="from")
        host = f.text("host", required=True, max_len=253) or ""
        if any(c.isspace() or c in "/:@" for c in host):
            raise InvalidSetting(
                "host", f"“{host}”不是有效的主机名", f"'{host}' is not a host name"
            )
        security = f.choice("security", ("starttls", "tls", "none"), "starttls")
        port = f.integer("port", 1, 65535, DEFAULT_PORTS[security]) or DEFAULT_PORTS[security]
        username, password = f.text("username", max_len=320), f.text("password", max_len=500)
        if (username is None) != (password is None):
            missing = "password" if password is None else "username"
            raise InvalidSetting(
                missing, "用户名和密码须同时填写", "username and password go together"
            )
        if security == "none" and not is_loopback(host):
            raise InvalidSetting(
                "security",
                "明文 SMTP 仅限本机中继；请用 starttls 或 tls",
                "plain SMTP only to a loopback relay; use starttls or tls",
            )
        sender = email_address("from", f.text("from", required=True) or "")
        to = tuple(email_address("to", v) for v in f.texts("to"))
        if not to:
            raise InvalidSetting("to", "至少需要一个收件人", "at least one recipient is required")
        reply_to = f.text("reply_to")
        ca_pem = f.text("ca_pem", max_len=20000)
        if ca_pem is not None:
            try:
                ssl.create_default_context(cadata=ca_pem)
            except (ssl.SSLError, ValueError):
                raise InvalidSetting(
                    "ca_pem", "不是有效的 PEM 格式 CA 证书", "is not a PEM CA certificate"
                ) from None
        return EmailSettings(
            host=host,
            port=port,
            security=security,
            sender=sender,
            to=to,
            username=username,
            password=password,
            reply_to=email_address("reply_to", reply_to) if reply_to else None,
            ca_pem=ca_pem,
        )

    async def send(
        self, message: Message, settings: EmailSettings, ctx: SendContext
    ) -> DeliveryResult:
        mail = build(message, settings, ctx)
        tls = ssl.create_default_context(cadata=settings.ca_pem) if settings.ca_pem else None
        try:
            # public_only: connect to the address that was checked (TLS still names the host)
            sock = await _public_socket(settings, ctx) if ctx.public_only else None
            refused, reply = await aiosmtplib.send(
                mail,
                hostname=settings.host,
                port=None if sock else settings.port,
                sock=sock,
                username=settings.username,
                password=settings.password,
                use_tls=settings.security == "tls",
                start_tls=settings.security == "starttls",
                tls_context=tls,
                timeout=ctx.timeout,
            )
        except PrivateTarget as exc:
            return DeliveryResult.fail("private_target", str(exc))
        except Exception as exc:
            return classify(exc)
        if refused:  # some recipients refused, the rest accepted: do not send it twice
            who = "; ".join(f"{a}: {r.code} {r.message}" for a, r in refused.items())
            return DeliveryResult.sent("smtp 250", f"accepted, but refused {who}")
        return DeliveryResult.sent("smtp 250", reply)
