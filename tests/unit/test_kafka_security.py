"""Kafka TLS/SASL settings reach every Kafka client a service makes.

The options matrix is checked on the settings alone; that the TLS context really reaches
aiokafka's clients (the topic creator, the dead-letter reader, the replay's log reader) is
checked against a real TLS listener on 127.0.0.1 whose certificate our own CA signed: the
clients complete the handshake with that CA and fail it with another one, and fail it
when the certificate does not name the address dialled (unless the hostname check is off).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from shared.broker import ensure_topics, make_broker
from shared.kafka_security import KafkaSecurity, client_options, faststream_security
from shared.ops import read_dead_letters
from shared.replay.log import read_log
from shared.settings import BaseServiceSettings

DSN = "postgresql://u:p@localhost/db"
SASL = {"kafka_sasl_username": "whistle-intake", "kafka_sasl_password": "s3cret"}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if subject == issuer[0]:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        san = x509.SubjectAlternativeName([x509.DNSName("localhost")])
        builder = builder.add_extension(san, False)
    return builder.sign(issuer[1], hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a broker certificate for ``localhost`` it signed, and an unrelated CA."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, other_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("whistle-test-ca", ca_key, ("whistle-test-ca", ca_key))
    other = _cert("someone-else", other_key, ("someone-else", other_key))
    server = _cert("localhost", server_key, ("whistle-test-ca", ca_key))
    files = {
        "ca": _pem(ca),
        "other": _pem(other),
        "server": _pem(server),
        "server_key": server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    }
    for name, data in files.items():
        (d / f"{name}.pem").write_bytes(data)
    return {name: d / f"{name}.pem" for name in files}


# --- the settings ---------------------------------------------------------------------------


def test_plaintext_is_the_default() -> None:
    s = KafkaSecurity()
    assert client_options(s) == {"security_protocol": "PLAINTEXT"}
    assert faststream_security(s) is None


@pytest.mark.parametrize(
    ("mechanism", "cls"),
    [("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)],
)
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_matrix(mechanism: str, cls: type[BaseSecurity], protocol: str) -> None:
    s = KafkaSecurity(
        kafka_security_protocol=protocol,  # type: ignore[arg-type]
        kafka_sasl_mechanism=mechanism,  # type: ignore[arg-type]
        **SASL,  # type: ignore[arg-type]
    )
    options = client_options(s)
    assert options["security_protocol"] == protocol
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "whistle-intake"
    assert options["sasl_plain_password"] == "s3cret"
    assert isinstance(options.get("ssl_context"), ssl.SSLContext) is (protocol == "SASL_SSL")
    security = faststream_security(s)
    assert type(security) is cls
    assert security.use_ssl is (protocol == "SASL_SSL")


def test_ssl_without_sasl() -> None:
    s = KafkaSecurity(kafka_security_protocol="SSL")
    options = client_options(s)
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].check_hostname is True
    assert "sasl_mechanism" not in options
    security = faststream_security(s)
    assert type(security) is BaseSecurity and security.use_ssl


def test_the_ca_file_is_loaded(pki: dict[str, Path]) -> None:
    s = KafkaSecurity(kafka_security_protocol="SSL", kafka_ssl_cafile=str(pki["ca"]))
    subjects = [c["subject"] for c in client_options(s)["ssl_context"].get_ca_certs()]
    assert subjects == [((("commonName", "whistle-test-ca"),),)]


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"},
            "needs KAFKA_SASL_PASSWORD",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.crt"},
            "KAFKA_SSL_CAFILE=/nonexistent/ca.crt: no such file",
        ),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "k"}, "without KAFKA_SSL_CERT"),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
    ],
)
def test_incomplete_security_is_refused(values: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        KafkaSecurity(**values)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=says):
        BaseServiceSettings(service_name="x", database_url=DSN, environment="test", **values)  # type: ignore[arg-type]


def test_the_environment_configures_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "whistle-notify")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    options = client_options(KafkaSecurity())
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SCRAM-SHA-256",
        "whistle-notify",
    )


def test_the_service_broker_carries_the_options() -> None:
    settings = BaseServiceSettings(
        service_name="intake",
        database_url=DSN,  # type: ignore[arg-type]
        environment="test",
        kafka_security_protocol="SASL_SSL",
        **SASL,  # type: ignore[arg-type]
    )
    kwargs = make_broker(settings)._connection_kwargs
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "whistle-intake"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    plain_settings = BaseServiceSettings(
        service_name="intake", database_url=DSN, environment="test"
    )  # type: ignore[arg-type]
    plain = make_broker(plain_settings)._connection_kwargs
    assert plain.get("security_protocol", "PLAINTEXT") == "PLAINTEXT"


# --- the options reach the real clients -----------------------------------------------------


@pytest.fixture
async def tls_listener(pki: dict[str, Path]) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TLS listener for ``localhost`` (broker certificate signed by the test CA): records
    what each client that completed the handshake sent first, then hangs up."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["server"], pki["server_key"])
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(64))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"localhost:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


def _clients(security: KafkaSecurity) -> dict[str, Callable[[str], Coroutine[Any, Any, Any]]]:
    return {
        "topics": lambda b: ensure_topics(b, ("t",), security=security),
        "dead letters": lambda b: read_dead_letters(b, wait_seconds=2, security=security),
        "replay log": lambda b: read_log(b, ["t"], wait_seconds=2, security=security),
    }


@pytest.mark.parametrize("client", ["topics", "dead letters", "replay log"])
@pytest.mark.parametrize(("ca", "handshake"), [("ca", True), ("other", False)])
async def test_clients_connect_over_tls_with_the_configured_ca(
    tls_listener: tuple[str, list[bytes]],
    pki: dict[str, Path],
    client: str,
    ca: str,
    handshake: bool,
) -> None:
    bootstrap, seen = tls_listener
    security = KafkaSecurity(
        kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=str(pki[ca]), **SASL
    )  # type: ignore[arg-type]
    with pytest.raises((KafkaError, OSError, TimeoutError)):  # the listener speaks no Kafka
        await asyncio.wait_for(_clients(security)[client](bootstrap), 30)
    # A Kafka request came through the TLS tunnel only when the CA matched: the first bytes
    # are a request header (length, api key 18 ApiVersions or 3 Metadata).
    assert bool(seen) is handshake
    if handshake:
        api_key = int.from_bytes(seen[0][4:6], "big")
        assert api_key in (3, 18), seen[0]


@pytest.mark.parametrize("client", ["topics", "dead letters", "replay log"])
@pytest.mark.parametrize(("check_hostname", "handshake"), [(None, False), ("false", True)])
async def test_the_broker_name_is_checked_unless_turned_off(
    tls_listener: tuple[str, list[bytes]],
    pki: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    client: str,
    check_hostname: str | None,
    handshake: bool,
) -> None:
    """The broker's certificate names only ``localhost``: reached as 127.0.0.1, a trusted CA
    is not enough by default (hostname check), only with KAFKA_SSL_CHECK_HOSTNAME=false."""
    bootstrap, seen = tls_listener
    by_address = bootstrap.replace("localhost:", "127.0.0.1:")
    if check_hostname is not None:
        monkeypatch.setenv("KAFKA_SSL_CHECK_HOSTNAME", check_hostname)
    security = KafkaSecurity(
        kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=str(pki["ca"]), **SASL
    )  # type: ignore[arg-type]
    assert security.kafka_ssl_check_hostname is not handshake
    with pytest.raises((KafkaError, OSError, TimeoutError)):  # the listener speaks no Kafka
        await asyncio.wait_for(_clients(security)[client](by_address), 30)
    assert bool(seen) is handshake
