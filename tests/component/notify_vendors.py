"""Local servers that speak each vendor's protocol, for notify's channel tests
(tests/component/test_notify_channels.py) and its delivery tests (test_notify_delivery.py,
test_notify_subscriptions.py; test_notify_secrets.py and test_notify_targets.py take them
through test_notify_channels).

One HTTP server on 127.0.0.1 (Starlette under uvicorn, in its own thread) plays the
WeCom, DingTalk and Feishu robots, a Standard Webhooks receiver and an SMS gateway. Each
recomputes the signature independently, exactly as the vendor documents it (not with the
code under test), refuses a wrong one with the vendor's own error code, and answers rate
limits and errors the vendor's way. aiosmtpd SMTP servers (plain, STARTTLS + AUTH, implicit
TLS, with a private CA made here) receive real mail. A route that never answers and an SMTP
port that never greets stand for hanging endpoints.

A test module takes the servers as ``vendors = notify_vendors.vendors`` and
``smtp_servers = notify_vendors.smtp_servers``; one using the SMTP servers also sets
``pytestmark = notify_vendors.SMTP_AUTH_WITHOUT_TLS`` (see there).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.notify import channels
from services.notify.channels import DeliveryResult, Message, SendContext, send_bounded
from tests.conftest import free_port

# The implicit-TLS test server requires AUTH on a connection that is TLS from the start;
# aiosmtpd only knows STARTTLS as "TLS" and warns.
SMTP_AUTH_WITHOUT_TLS = pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"
)

# --- the vendors -------------------------------------------------------------------------------

WECOM_KEYS = {"good-key": 0, "limited-key": 45009, "busy-key": -1}
DING_SECRET = "SEC" + "a1b2c3d4" * 8
DING_ROBOTS = {"signed-token": DING_SECRET, "limited-token": DING_SECRET}
DING_KEYWORD_ROBOTS = {"keyword-token": "城管"}
FEISHU_SECRET = "qG0vU2xw8n3b5Y7dP1kZ4a"
FEISHU_BOTS = {"signed-bot": FEISHU_SECRET, "limited-bot": FEISHU_SECRET}
HOOK_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SMS_APPS = {"app-1": "sms-secret-1"}


def b64_hmac(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


@dataclass
class Hit:
    vendor: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None


@dataclass
class Vendors:
    base: str = ""
    hits: list[Hit] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    released: asyncio.Event | None = None  # set at teardown: the hanging route answers
    loop: asyncio.AbstractEventLoop | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, vendor: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.vendor == vendor]

    async def _hit(self, vendor: str, request: Request) -> Hit:
        body = await request.body()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        hit = Hit(vendor, dict(request.query_params), dict(request.headers), body, parsed)
        with self.lock:
            self.hits.append(hit)
        return hit

    # WeCom: the key in the query is the credential.
    async def wecom(self, request: Request) -> Response:
        hit = await self._hit("wecom", request)
        key = hit.query.get("key", "")
        if key not in WECOM_KEYS:
            return JSONResponse({"errcode": 93000, "errmsg": "invalid webhook url, hint: [x]"})
        msgtype = (hit.json or {}).get("msgtype")
        if msgtype not in ("text", "markdown"):
            return JSONResponse({"errcode": 40008, "errmsg": "invalid message type"})
        content = hit.json[msgtype].get("content", "")
        limit = 2048 if msgtype == "text" else 4096
        if not content or len(content.encode()) > limit:
            return JSONResponse({"errcode": 44004, "errmsg": "empty or too long content"})
        code = WECOM_KEYS[key]
        return JSONResponse({"errcode": code, "errmsg": "ok" if code == 0 else "refused"})

    # DingTalk: access_token, then 加签 in the query (timestamp ms, sign) or a keyword.
    async def dingtalk(self, request: Request) -> Response:
        hit = await self._hit("dingtalk", request)
        token = hit.query.get("access_token", "")
        if token in DING_KEYWORD_ROBOTS:
            text = json.dumps(hit.json, ensure_ascii=False)
            if DING_KEYWORD_ROBOTS[token] not in text:
                return JSONResponse({"errcode": 310000, "errmsg": "keywords not in content"})
        elif token in DING_ROBOTS:
            secret = DING_ROBOTS[token]
            ts = hit.query.get("timestamp", "")
            expected = b64_hmac(secret.encode(), f"{ts}\n{secret}".encode())
            fresh = ts.isdigit() and abs(int(ts) - time.time() * 1000) < 3_600_000
            if not fresh or not hmac.compare_digest(hit.query.get("sign", ""), expected):
                return JSONResponse({"errcode": 310000, "errmsg": "sign not match, more: [x]"})
        else:
            return JSONResponse({"errcode": 300001, "errmsg": "token is not exist"})
        body = hit.json or {}
        if body.get("msgtype") == "markdown" and not (
            body["markdown"].get("title") and body["markdown"].get("text")
        ):
            return JSONResponse({"errcode": 40035, "errmsg": "缺少参数 markdown"})
        if token == "limited-token":
            return JSONResponse({"errcode": 410100, "errmsg": "send too fast"})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    # Feishu: the token in the path; 签名校验 with timestamp (s) and sign in the body.
    async def feishu(self, request: Request) -> Response:
        hit = await self._hit("feishu", request)
        token = request.path_params["token"]
        if token not in FEISHU_BOTS:
            return JSONResponse(
                {
                    "code": 19001,
                    "data": {},
                    "msg": "param invalid: incoming webhook access token invalid",
                }
            )
        body = hit.json or {}
        ts = str(body.get("timestamp", ""))
        expected = b64_hmac(f"{ts}\n{FEISHU_BOTS[token]}".encode(), b"")
        fresh = ts.isdigit() and abs(int(ts) - time.time()) < 3600
        if not fresh or not hmac.compare_digest(str(body.get("sign", "")), expected):
            return JSONResponse(
                {
                    "code": 19021,
                    "data": {},
                    "msg": "sign match fail or timestamp is not within one hour from current time",
                }
            )
        kind = body.get("msg_type")
        if (
            (kind == "interactive" and "card" not in body)
            or (kind in ("text", "post") and "content" not in body)
            or kind not in ("interactive", "text", "post")
        ):
            return JSONResponse({"code": 9499, "msg": "Bad Request", "data": {}}, status_code=400)
        if token == "limited-bot":
            return JSONResponse(
                {"code": 11232, "msg": "frequency limited", "data": {}}, status_code=400
            )
        return JSONResponse(
            {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}
        )

    # Standard Webhooks receiver: v1 HMAC over "{id}.{timestamp}.{body}", 5-minute window.
    async def hook(self, request: Request) -> Response:
        hit = await self._hit("hook", request)
        msg_id, ts = hit.headers.get("webhook-id", ""), hit.headers.get("webhook-timestamp", "")
        key = base64.b64decode(HOOK_SECRET.removeprefix("whsec_"))
        expected = "v1," + b64_hmac(key, f"{msg_id}.{ts}.".encode() + hit.body)
        given = hit.headers.get("webhook-signature", "").split(" ")
        fresh = ts.isdigit() and abs(int(ts) - time.time()) < 300
        if not msg_id or not fresh or not any(hmac.compare_digest(g, expected) for g in given):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        return Response(status_code=204)

    # The generic SMS gateway (services/notify/channels/sms.py documents the protocol).
    async def sms(self, request: Request) -> Response:
        hit = await self._hit("sms", request)
        h = hit.headers
        secret = SMS_APPS.get(h.get("x-sms-app-key", ""))
        if secret is None:
            return JSONResponse({"code": "INVALID_APP_KEY", "message": "unknown app"}, 401)
        ts, nonce = h.get("x-sms-timestamp", ""), h.get("x-sms-nonce", "")
        if not ts.isdigit() or abs(int(ts) - time.time()) > 300:
            return JSONResponse({"code": "TIMESTAMP_EXPIRED", "message": "clock"}, 403)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        to_sign = f"POST\n{path}\n{ts}\n{nonce}\n{hashlib.sha256(hit.body).hexdigest()}"
        if not hmac.compare_digest(
            h.get("x-sms-signature", ""), b64_hmac(secret.encode(), to_sign.encode())
        ):
            return JSONResponse({"code": "INVALID_SIGNATURE", "message": "signature"}, 403)
        with self.lock:
            if nonce in self.nonces:
                return JSONResponse({"code": "NONCE_REUSED", "message": "replay"}, 403)
            self.nonces.add(nonce)
        body = hit.json or {}
        if body.get("template_id") == "CASE_DISPATCHED" and set(
            body.get("template_params", {})
        ) != {"case_no", "deadline"}:
            return JSONResponse({"code": "TEMPLATE_PARAMS_MISMATCH", "message": "params"})
        if "+8613900000429" in body.get("to", []):
            return JSONResponse({"code": "THROTTLED", "message": "too many for this number"})
        return JSONResponse({"code": "OK", "message": "accepted", "request_id": uuid.uuid4().hex})

    async def status(self, request: Request) -> Response:
        await self._hit("status", request)
        code = request.path_params["code"]
        headers = {"retry-after": "7"} if code == 429 else {}
        return Response("<html>nope</html>", status_code=code, headers=headers)

    async def hang(self, request: Request) -> Response:
        await self._hit("hang", request)
        if self.released is None:  # made on the server's loop, in the server's thread
            self.loop, self.released = asyncio.get_running_loop(), asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.released.wait(), 30)
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/cgi-bin/webhook/send", self.wecom, methods=["POST"]),
                Route("/robot/send", self.dingtalk, methods=["POST"]),
                Route("/open-apis/bot/v2/hook/{token}", self.feishu, methods=["POST"]),
                Route("/hooks/{name}", self.hook, methods=["POST"]),
                Route("/sms/v1/send", self.sms, methods=["POST"]),
                Route("/status/{code:int}/{rest:path}", self.status, methods=["POST"]),
                Route("/hang/{rest:path}", self.hang, methods=["POST"]),
            ]
        )


class ServerThread:
    """uvicorn serving an app on a free loopback port, in a thread with its own loop."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the vendor server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def vendors():
    v = Vendors()
    with ServerThread(v.app()) as server:
        v.base = f"http://127.0.0.1:{server.port}"
        yield v
        if v.loop is not None and v.released is not None:
            v.loop.call_soon_threadsafe(v.released.set)


# A recipient's settings for the SMS gateway above, but for its url.
SMS = {
    "app_key": "app-1",
    "app_secret": "sms-secret-1",
    "template_id": "CASE_DISPATCHED",
    "template_params": ["case_no", "deadline"],
    "sign_name": "榆安城管",
    "to": ["13800138000"],
}


# --- email ------------------------------------------------------------------------------------------


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    authenticated: bool | None


class Mailbox:
    """An SMTP server's handler: ``nobody@`` is refused for good (550), ``later@`` for now
    (451); everything else is accepted and kept."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local == "nobody":
            return "550 5.1.1 mailbox unavailable"
        if local == "later":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.mails.append(
            Mail(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.content,
                tls,
                session.authenticated,
            )
        )
        return "250 2.0.0 queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"notify",
        "值班-s3cret".encode(),
    )
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


def private_ca() -> tuple[str, ssl.SSLContext]:
    """A CA made here and a server certificate for 127.0.0.1 signed by it: the CA's PEM
    (what ca_pem carries) and the server's TLS context."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Whistle test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem).decode()
    chain = leaf.public_bytes(pem) + key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        f.write(chain)
        f.flush()
        server.load_cert_chain(f.name)
    return ca_pem, server


@dataclass
class SmtpServers:
    plain: Controller
    starttls: Controller
    implicit: Controller
    ca_pem: str
    silent_port: int
    boxes: dict[str, Mailbox]


@pytest.fixture(scope="module")
def smtp_servers():
    ca_pem, server_tls = private_ca()
    boxes = {"plain": Mailbox(), "starttls": Mailbox(), "implicit": Mailbox()}
    plain = Controller(boxes["plain"], hostname="127.0.0.1", port=free_port())
    starttls = Controller(
        boxes["starttls"],
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    implicit = Controller(
        boxes["implicit"],
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=server_tls,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    # a port that accepts connections and never says a word (a hung mail server)
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    for c in (plain, starttls, implicit):
        c.start()
    acceptor.start()
    yield SmtpServers(plain, starttls, implicit, ca_pem, silent.getsockname()[1], boxes)
    stop.set()
    acceptor.join(2)
    for s in [*held, silent]:
        s.close()
    for c in (plain, starttls, implicit):
        c.stop()


def email_settings(servers: SmtpServers, which: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "from": "榆安区城管值班室 <notify@例子.中国>",
        "to": ["张三 <zhangsan@example.cn>", "duty@example.cn"],
    }
    if which == "plain":
        return {**base, "port": servers.plain.port, "security": "none", **extra}
    auth = {"username": "notify", "password": "值班-s3cret", "ca_pem": servers.ca_pem}
    if which == "starttls":
        return {**base, "port": servers.starttls.port, "security": "starttls", **auth, **extra}
    return {**base, "port": servers.implicit.port, "security": "tls", **auth, **extra}


# --- sending one message through a channel -------------------------------------------


def ctx(http: httpx.AsyncClient, timeout: float = 5.0, **kw: Any) -> SendContext:
    return SendContext(http=http, timeout=timeout, **kw)


MSG = Message(
    id=f"msg_{uuid.uuid4().hex}",
    title="【派单】案件YA20261122-0001已派至榆安区城市管理局",
    text="案件YA20261122-0001（E0101）已派至榆安区城市管理局（主办），请及时签收报到。",
    link="https://whistle.example.cn/cases/1",
    kind="case.dispatched",
    data={"case_no": "YA20261122-0001", "deadline": "2026-11-22 10:00"},
)


async def send(
    kind: str, raw: dict, http: httpx.AsyncClient, message: Message = MSG, **kw: Any
) -> DeliveryResult:
    channel = channels.channel(kind)
    return await send_bounded(channel, message, channel.validate_settings(raw), ctx(http, **kw))
