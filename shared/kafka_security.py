"""How every Kafka client of a service connects: TLS and SASL (SCRAM, PLAIN) from settings.

The same settings serve the service's broker (FastStream), the topic creator
(``python -m shared.topics``), the operators' dead-letter reader and the replay's log reader,
so a service that joins a Strimzi TLS/SCRAM listener or a managed Kafka joins it everywhere.
The embedded stack and the tests stay on PLAINTEXT (the default).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KafkaSecurity", "client_options", "faststream_security", "ssl_context"]

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_SASL_CLASSES: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


class KafkaSecurity(BaseSettings):
    """The Kafka connection's security, from the environment (``KAFKA_SECURITY_PROTOCOL``…).

    ``BaseServiceSettings`` inherits these fields; tools without a service's settings (the
    topic creator) read this model alone."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_security_protocol: Protocol = "PLAINTEXT"
    kafka_sasl_mechanism: Mechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # The CA that signed the brokers' certificates (Strimzi: the <cluster>-cluster-ca-cert
    # Secret's ca.crt); without it the system's trusted CAs are used.
    kafka_ssl_cafile: str | None = None
    # A client certificate and key, for brokers that authenticate clients by TLS (mTLS).
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        if self.kafka_uses_sasl:
            missing = [
                name
                for name, value in (
                    ("KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                    ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
                )
                if not value or (isinstance(value, SecretStr) and not value.get_secret_value())
            ]
            if missing:
                raise ValueError(
                    f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                    f"{' and '.join(missing)} (SASL {self.kafka_sasl_mechanism})"
                )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE")
        if not self.kafka_uses_tls:
            return self
        for name, path in (
            ("KAFKA_SSL_CAFILE", self.kafka_ssl_cafile),
            ("KAFKA_SSL_CERTFILE", self.kafka_ssl_certfile),
            ("KAFKA_SSL_KEYFILE", self.kafka_ssl_keyfile),
        ):
            if path and not Path(path).is_file():
                raise ValueError(f"{name}={path}: no such file")
        return self


def ssl_context(s: KafkaSecurity) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (None for the plaintext protocols)."""
    if not s.kafka_uses_tls:
        return None
    key_password = s.kafka_ssl_key_password.get_secret_value() if s.kafka_ssl_key_password else None
    context = create_ssl_context(
        cafile=s.kafka_ssl_cafile,
        certfile=s.kafka_ssl_certfile,
        keyfile=s.kafka_ssl_keyfile,
        password=key_password,
    )
    context.check_hostname = s.kafka_ssl_check_hostname
    return context


def faststream_security(s: KafkaSecurity) -> BaseSecurity | None:
    """What ``KafkaBroker(security=…)`` takes; None for PLAINTEXT."""
    context = ssl_context(s)
    if s.kafka_uses_sasl:
        password = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
        sasl = _SASL_CLASSES[s.kafka_sasl_mechanism]
        return sasl(
            username=s.kafka_sasl_username or "",
            password=password,
            ssl_context=context,
            use_ssl=s.kafka_uses_tls,
        )
    if context is not None:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def client_options(s: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for aiokafka's clients (``AIOKafkaConsumer``, ``AIOKafkaAdminClient``):
    the same connection the service's broker makes."""
    options: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    context = ssl_context(s)
    if context is not None:
        options["ssl_context"] = context
    if s.kafka_uses_sasl:
        options["sasl_mechanism"] = s.kafka_sasl_mechanism
        options["sasl_plain_username"] = s.kafka_sasl_username
        password = s.kafka_sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options
