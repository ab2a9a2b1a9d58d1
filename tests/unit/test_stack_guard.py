"""`make up` refuses to start a second time, or over another program's ports."""

from __future__ import annotations

import fcntl
import socket

import pytest

from stack.__main__ import up
from stack.stack import APPS, PortInUse, Stack, StackConfig
from tests.conftest import free_port


def test_second_start_says_so_and_touches_nothing(tmp_path, capsys):
    config = StackConfig(data_dir=tmp_path)
    with open(tmp_path / "stack.lock", "w") as held:
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert up(config) == 1
    err = capsys.readouterr().err
    assert "already running (pid 4242)" in err and "kill 4242" in err
    assert not (tmp_path / "postgres").exists()


def test_busy_port_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = StackConfig(
            data_dir=tmp_path,
            pg_port=free_port(),
            kafka_port=port,
            ports={s: free_port() for s in APPS},
        )
        with pytest.raises(PortInUse, match=f"broker 127.0.0.1:{port}"):
            Stack(config).start()
    assert not (tmp_path / "postgres").exists()
