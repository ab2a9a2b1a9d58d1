"""Which failures are worth waiting out, and how long a consumer waits.

Only faults that go away by themselves are *transient*: the database refusing or dropping
connections while it restarts, serialization failures and deadlocks, a broker that is not
reachable or has no leader yet. Retrying anything else (a closed pool, a file that does not
exist, a query that always times out, a message the broker will always refuse) only blocks
the partition, so those get the bounded attempts and then the dead-letter topic.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

import asyncpg
from aiokafka.errors import KafkaError, KafkaTimeoutError

from shared.settings import BaseServiceSettings

_TRANSIENT_DB: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,  # 08xxx, including the connection lost
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up / shutting down
    asyncpg.exceptions.AdminShutdownError,  # 57P01: fast stop
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    asyncpg.exceptions.TransactionRollbackError,  # 40001 serialization, 40P01 deadlock
)
# Socket errors that mean "the other side is away right now", not "this is wrong".
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.ETIMEDOUT,
        errno.EAGAIN,
    }
)


def _connection_lost_in_client(exc: BaseException) -> bool:
    """asyncpg's own errors when the server dropped a connection in the middle of its use
    (seen in the fault suite during a PostgreSQL fast stop): using the closed connection, or
    its protocol left in a state it cannot leave. A new connection does not have them."""
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return "cannot switch to state" in str(exc)
    if isinstance(exc, asyncpg.exceptions.InterfaceError):
        return "connection is closed" in str(exc) or "connection was closed" in str(exc)
    return False


def is_transient(exc: BaseException | None) -> bool:
    """True when waiting and trying again can make ``exc`` go away."""
    if exc is None:
        return False
    if isinstance(exc, _TRANSIENT_DB) or _connection_lost_in_client(exc):
        return True
    if isinstance(exc, KafkaError):
        return bool(exc.retriable) or isinstance(exc, KafkaTimeoutError)
    if isinstance(exc, ConnectionError):  # refused, reset, aborted, broken pipe
        return True
    if isinstance(exc, socket.gaierror):
        return exc.errno == socket.EAI_AGAIN  # "try again": the resolver is away
    if type(exc) is OSError:  # a bare OSError: only its errno can tell
        return exc.errno in _TRANSIENT_ERRNOS
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How a consumer retries one message (from the settings of the same names)."""

    # Attempts for a deterministic failure before the dead-letter topic.
    max_attempts: int = 5
    # How long a transient failure is waited out before it counts as deterministic.
    transient_retry_seconds: float = 600.0
    # Backoff: exponential from ``initial`` with jitter, never above ``max``.
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 10.0
    # Attempts to publish a dead-letter copy before the message is parked in the database.
    dead_letter_publish_attempts: int = 5
    # A dead-letter copy (value + key + headers) above this is truncated; the full copy
    # is parked in the database. Keep it below the producer's max_request_size (1 MiB).
    dead_letter_max_bytes: int = 1_000_000

    @classmethod
    def from_settings(cls, settings: BaseServiceSettings) -> RetryPolicy:
        return cls(
            max_attempts=settings.consumer_max_attempts,
            transient_retry_seconds=settings.consumer_transient_retry_seconds,
            max_backoff_seconds=settings.consumer_max_backoff_seconds,
            dead_letter_publish_attempts=settings.dead_letter_publish_attempts,
            dead_letter_max_bytes=settings.dead_letter_max_bytes,
        )
