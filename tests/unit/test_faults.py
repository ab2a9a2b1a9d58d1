"""Which failures a consumer waits out, and the bounded dead-letter publish."""

from __future__ import annotations

import errno
import socket

import asyncpg
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    UnsupportedVersionError,
)

from shared import dead_letter
from shared.faults import RetryPolicy, is_transient
from shared.parking import Received

TRANSIENT = [
    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    ConnectionResetError(errno.ECONNRESET, "reset"),
    BrokenPipeError(errno.EPIPE, "pipe"),
    OSError(errno.EHOSTUNREACH, "no route"),
    socket.gaierror(socket.EAI_AGAIN, "try again"),
    asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle of operation"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.TooManyConnectionsError("too many clients"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    # asyncpg, when the server dropped the connection mid-use (PostgreSQL fast stop)
    asyncpg.exceptions.InterfaceError(
        "cannot call Transaction.__aexit__(): the underlying connection is closed"
    ),
    asyncpg.exceptions.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    ),
    KafkaConnectionError("broker away"),
    NotLeaderForPartitionError(),
    KafkaTimeoutError(),
]
DETERMINISTIC = [
    asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.exceptions.InterfaceError(
        "cannot call Connection.fetch(): connection has been released back to the pool"
    ),
    asyncpg.exceptions.InternalClientError("unexpected codec state"),
    asyncpg.exceptions.UniqueViolationError("duplicate key"),
    OSError(errno.EIO, "input/output error"),
    FileNotFoundError(errno.ENOENT, "no such file"),
    socket.gaierror(socket.EAI_NONAME, "unknown host"),
    TimeoutError("too slow"),
    KafkaError("generic"),
    UnsupportedVersionError(),
    MessageSizeTooLargeError(),
    ValueError("bad"),
    None,
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=repr)
def test_truly_transient_faults_are_waited_out(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", DETERMINISTIC, ids=repr)
def test_everything_else_is_deterministic(exc):
    assert not is_transient(exc)


POLICY = RetryPolicy(
    dead_letter_publish_attempts=4, initial_backoff_seconds=0.001, max_backoff_seconds=0.01
)


async def test_a_failing_dead_letter_publish_is_tried_a_bounded_number_of_times():
    tries: list[int] = []

    async def publish(value, key, headers):
        tries.append(1)
        raise KafkaConnectionError("broker away")

    with pytest.raises(KafkaConnectionError):
        await dead_letter.publish_bounded(publish, b"v", b"k", {}, POLICY)
    assert len(tries) == 4


async def test_a_refused_dead_letter_publish_is_not_retried():
    tries: list[int] = []

    async def publish(value, key, headers):
        tries.append(1)
        raise MessageSizeTooLargeError()

    with pytest.raises(MessageSizeTooLargeError):
        await dead_letter.publish_bounded(publish, b"v", b"k", {}, POLICY)
    assert len(tries) == 1


def test_an_oversize_copy_is_cut_to_fit_and_names_the_parked_row():
    message = Received("t", 0, 7, b"key", b"x" * 50_000)
    headers = dead_letter.headers_for(message, RuntimeError("e" * 5000), group_id="g", service="s")
    assert dead_letter.copy_size(message.value, message.key, headers) > 20_000
    value, cut = dead_letter.truncated(
        message.value, message.key, headers, limit=20_000, parked_id=42
    )
    assert dead_letter.copy_size(value, message.key, cut) <= 20_000
    assert message.value.startswith(value) and len(value) > 10_000
    assert cut["dlt-parked-id"] == "42" and cut["dlt-original-bytes"] == "50000"
    assert cut["dlt-error"] == "e" * 2000
