"""Where a channel may send: only to public addresses (no SSRF into our own network).

An admin sets a webhook, robot, SMS gateway or SMTP host; without this rule it could point
notify at loopback (its own metrics, the database), link-local (a cloud's metadata service at
169.254.169.254) or private addresses, and the delivery log would show what answered. Two
checks, both skipped when ``CHANNEL_ALLOW_PRIVATE_TARGETS`` is on (the embedded stack and
tests, whose receivers listen on 127.0.0.1):

- when a channel or webhook is set: a host written as an address (also the legacy forms
  ``127.1``, ``2130706433``, ``0x7f.0.0.1``) or a local name (``localhost``) must be public
  (``check_host``: 422, no DNS);
- at each delivery: every address the host name resolves to must be public, and the
  connection goes to the address that was checked (``PublicOnlyBackend`` for HTTP,
  ``public_address`` for SMTP), so a name that later resolves elsewhere (DNS rebinding)
  cannot reach inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpcore
import httpx

from services.notify.channels.base import InvalidSetting

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "metadata.google.internal")


class PrivateTarget(Exception):
    """The host resolves to an address that is not public."""


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as one stands for (also ``127.1``, ``2130706433``)."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def check_host(field: str, host: str) -> None:
    """422 for a host that is plainly not public (no DNS here; delivery resolves)."""
    name = host.strip("[]").rstrip(".").lower()
    ip = literal_address(name)
    if (
        name in _LOCAL_NAMES
        or name.endswith(".localhost")
        or (ip is not None and not is_public(ip))
    ):
        raise InvalidSetting(
            field,
            f"“{host}”是本机、链路本地或内网地址，不允许作为发送目标",
            f"'{host}' is a loopback, link-local or private address; it may not be a target",
        )


def check_settings(settings: Any) -> None:
    """``check_host`` for what a channel's typed settings send to: a URL's host (webhook,
    robots, SMS gateway) or the SMTP host."""
    url = getattr(settings, "url", None)
    if isinstance(url, str):
        check_host("url", httpx.URL(url).host)
    host = getattr(settings, "host", None)
    if isinstance(host, str):
        check_host("host", host)


async def public_address(host: str, port: int) -> str:
    """The address to connect to: every address ``host`` resolves to must be public."""
    literal = literal_address(host)
    if literal is not None:
        found = [literal]
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    private = [str(ip) for ip in found if not is_public(ip)]
    if private or not found:
        raise PrivateTarget(
            f"{host} resolves to a non-public address ({', '.join(private)}); "
            "refused (CHANNEL_ALLOW_PRIVATE_TARGETS is off)"
        )
    return str(found[0])


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend that connects only to public addresses, to the very
    address it checked (TLS still names and verifies the host)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            address = await public_address(host, port)
        except OSError as exc:  # the name does not resolve (now): transient
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise PrivateTarget("unix sockets are not a delivery target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def public_only_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose connections go to public addresses only."""
    transport = httpx.AsyncHTTPTransport(limits=kwargs.pop("limits", httpx.Limits()))
    # httpx does not take a network backend; its pool (httpcore) does, read at each connect.
    transport._pool._network_backend = PublicOnlyBackend()
    return httpx.AsyncClient(transport=transport, trust_env=False, **kwargs)
