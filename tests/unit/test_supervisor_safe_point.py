"""The embedded stack's safe point (stack/supervisor.py): the time of the newest reading of
every partition's end that every consumer group has read past; kept in the data folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition

from stack.supervisor import MARGIN, SafePoint

A, B = TopicPartition("whistle.intake.events.v1", 0), TopicPartition("whistle.intake.events.v1", 1)
T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_it_moves_to_the_newest_reading_every_group_has_read_past(tmp_path):
    sp = SafePoint(tmp_path / "sp.json")
    sp.new_broker(T0)
    assert sp.value == T0
    # Nothing read yet: the reading waits.
    assert not sp.observe(at(2), {A: 10, B: 4}, {A: 0, B: 0})
    assert not sp.observe(at(4), {A: 20, B: 6}, {A: 10, B: 3})  # B not past 4 yet
    assert sp.value == T0
    # B read past 4, A past 10 — the first reading is passed, the second (A 20) is not.
    assert sp.observe(at(6), {A: 25, B: 6}, {A: 12, B: 5})
    assert sp.value == at(2) - MARGIN
    # Everything read: the newest reading is the safe point.
    assert sp.observe(at(8), {A: 25, B: 6}, {A: 25, B: 6})
    assert sp.value == at(8) - MARGIN
    # Read, persisted, not clean until a clean stop says so.
    again = SafePoint(tmp_path / "sp.json")
    assert again.value == at(8) - MARGIN and not again.clean and again.broker_started_at == T0


def test_a_partition_no_group_committed_on_counts_from_zero(tmp_path):
    sp = SafePoint(tmp_path / "sp.json")
    sp.new_broker(T0)
    assert sp.observe(at(2), {A: 0}, {})  # empty partition: nothing to read
    assert not sp.observe(at(4), {A: 3}, {})
    assert sp.value == at(2) - MARGIN


def test_a_new_broker_forgets_the_old_readings_but_keeps_the_point(tmp_path):
    sp = SafePoint(tmp_path / "sp.json")
    sp.new_broker(T0)
    sp.observe(at(2), {A: 100}, {A: 50})
    sp.new_broker(at(5))
    # Offsets of the new broker start again from 0: the old reading (100) must not be
    # compared with them.
    assert sp.value == T0 and sp.broker_started_at == at(5)
    assert sp.observe(at(7), {A: 3}, {A: 3})
    assert sp.value == at(7) - MARGIN


def test_a_clean_stop_is_remembered(tmp_path):
    sp = SafePoint(tmp_path / "sp.json")
    sp.new_broker(T0)
    sp.save(clean=True)
    assert SafePoint(tmp_path / "sp.json").clean
    assert SafePoint(tmp_path / "missing.json").value is None
    (tmp_path / "bad.json").write_text("{not json")
    bad = SafePoint(tmp_path / "bad.json")
    assert bad.value is None and not bad.clean
