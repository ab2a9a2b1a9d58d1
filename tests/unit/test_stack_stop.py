"""Stack.drain: waits while the backlog shrinks, gives up loudly when it stops shrinking."""

from __future__ import annotations

import asyncio

from stack.stack import Stack, StackConfig


class Scripted(Stack):
    def __init__(self, folder, backlogs: list[dict[str, int]]) -> None:
        super().__init__(StackConfig(data_dir=folder))
        self.config.log_dir.mkdir(parents=True)
        self.backlogs = backlogs

    async def backlog(self, services=(), *, outboxes=True) -> dict[str, int]:
        return self.backlogs.pop(0) if len(self.backlogs) > 1 else self.backlogs[0]


def test_drain_waits_while_the_backlog_shrinks_then_returns_empty(tmp_path):
    shrinking = [{"intake outbox": n} for n in range(8, 0, -1)] + [{}]
    stack = Scripted(tmp_path, shrinking)
    # each step is a new low: no stall although it takes longer than ``stall``
    assert asyncio.run(stack.drain(quiet=0.3, stall=0.6, cap=30)) == {}
    assert not (stack.config.log_dir / "stack-stop.log").exists()


def test_drain_names_what_is_left_loudly_when_it_stops_shrinking(tmp_path, capsys):
    stuck = {"whistle-tracking-timeline behind on whistle.dispatch.events.v1": 4}
    stack = Scripted(tmp_path, [stuck])
    assert asyncio.run(stack.drain(quiet=0.3, stall=0.5, cap=30)) == stuck
    err = capsys.readouterr().err
    assert "STOPPING THE STACK WITH EVENTS IN FLIGHT (not shrinking)" in err
    assert "whistle-tracking-timeline behind on whistle.dispatch.events.v1: 4" in err
    assert "behind on" in (stack.config.log_dir / "stack-stop.log").read_text()
