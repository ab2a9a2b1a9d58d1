"""The department's inbox shows the deadline each assignment is up against and the urgings it
had (督办), as tracking announces them — on real PostgreSQL and the real broker. Tracking's
events are published here exactly as tracking writes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.contract import (
    Actor,
    CaseClockStarted,
    CaseClockStopped,
    CaseUrged,
    Envelope,
    Priority,
    new_event,
)
from tests.component import dispatch_fixtures
from tests.component.dispatch_fixtures import JT, App, routed, whistled
from tests.helpers import eventually, publish_event

app = dispatch_fixtures.app  # dispatch on real PostgreSQL and the broker, one for the module

TRACKING = Actor(subject="system:tracking", role="system", name="时限监控")
SUPERVISOR = Actor(subject="supervisor", role="supervisor", name="区委组织部督办科")


def _facts(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "case_no": a["case_no"],
        "area_path": a["area_path"],
        "category": a["category"],
        "priority": Priority(a["priority"]),
        "assignment_id": a["id"],
        "department_id": a["department_id"],
    }


async def _tracking_says(
    app: App,
    a: dict[str, Any],
    payload: Any,
    *,
    at: datetime | None = None,
    actor: Actor = TRACKING,
) -> Envelope:
    event = new_event(
        payload,
        case_id=a["case_id"],
        producer="tracking",
        actor=actor,
        occurred_at=at or datetime.now(UTC),
    )
    await publish_event(app.bootstrap, event)

    async def handled() -> bool:
        return bool(
            await app.val(
                "SELECT count(*) FROM inbox WHERE consumer = 'deadlines' AND event_id = $1",
                event.event_id,
            )
        )

    await eventually(handled, timeout=60, message=f"dispatch heard {event.type}")
    return event


def started(a: dict[str, Any], clock: str, due_at: datetime) -> CaseClockStarted:
    return CaseClockStarted(**_facts(a), clock=clock, due_at=due_at)


def stopped(a: dict[str, Any], clock: str, because: str) -> CaseClockStopped:
    return CaseClockStopped(**_facts(a), clock=clock, because=because)


async def _inbox(app: App, ours: set[str], **params: str) -> list[dict[str, Any]]:
    resp = await app.client.get(
        "/departments/jt/assignments", headers=JT, params={"limit": 200, **params}
    )
    assert resp.status_code == 200, resp.text
    return [a for a in resp.json() if a["case_id"] in ours]


async def test_the_inbox_shows_and_sorts_by_the_deadline_tracking_runs(app):
    events = [whistled(category="C0201", priority=Priority.NORMAL) for _ in range(3)]
    for e in events:
        await app.whistle(e)
    first, second, third = [(await app.assignments(e.case_id))[0] for e in events]
    ours = {str(e.case_id) for e in events}
    now = datetime.now(UTC)

    # Nothing announced yet: no deadline, by dispatch time.
    before = await _inbox(app, ours, sort="deadline")
    assert [a["case_id"] for a in before] == [str(e.case_id) for e in events]
    assert all(a["deadline"] is None and not a["overdue"] for a in before)

    # The third is due first, the first already overdue-free but later, the second last.
    await _tracking_says(app, first, started(first, "sign_for", now + timedelta(hours=2)))
    await _tracking_says(app, second, started(second, "sign_for", now + timedelta(hours=5)))
    await _tracking_says(app, third, started(third, "sign_for", now - timedelta(minutes=5)))
    rows = await _inbox(app, ours, sort="deadline")
    assert [a["id"] for a in rows] == [str(third["id"]), str(first["id"]), str(second["id"])]
    top = rows[0]
    assert (top["deadline_clock"], top["deadline_label"], top["overdue"]) == (
        "sign_for",
        "报到时限",
        True,
    )
    assert datetime.fromisoformat(top["deadline"]) == now - timedelta(minutes=5)
    assert rows[1]["overdue"] is False

    # 报到 stops the third's sign-for clock and starts nothing shown yet → it sorts last.
    await _tracking_says(app, third, stopped(third, "sign_for", "case.signed_for"))
    rows = await _inbox(app, ours, sort="deadline")
    assert [a["id"] for a in rows] == [str(first["id"]), str(second["id"]), str(third["id"])]
    assert rows[-1]["deadline"] is None
    # Its resolution clock starts: the earliest running deadline is shown, and sorted by.
    await _tracking_says(app, third, started(third, "resolve", now + timedelta(hours=3)))
    rows = await _inbox(app, ours, sort="deadline")
    assert [a["id"] for a in rows] == [str(first["id"]), str(third["id"]), str(second["id"])]
    assert (rows[1]["deadline_clock"], rows[1]["deadline_label"]) == ("resolve", "办结时限")

    # An extension moves it (a newer start); a stale start heard late changes nothing.
    await _tracking_says(app, third, started(third, "resolve", now + timedelta(hours=8)))
    await _tracking_says(
        app,
        third,
        started(third, "resolve", now + timedelta(minutes=1)),
        at=now - timedelta(hours=1),
    )
    (shown,) = [a for a in await _inbox(app, ours) if a["id"] == str(third["id"])]
    assert datetime.fromisoformat(shown["deadline"]) == now + timedelta(hours=8)
    # The same announcement twice is one.
    detail = await app.client.get(f"/assignments/{third['id']}", headers=JT)
    assert detail.status_code == 200
    assert datetime.fromisoformat(detail.json()["deadline"]) == now + timedelta(hours=8)


async def test_urgings_are_counted_once_each_and_the_newest_is_shown(app):
    event, a = await routed(app, category="C0201", priority=Priority.URGENT)
    ours = {str(event.case_id)}

    def urging(n: int, note: str) -> CaseUrged:
        return CaseUrged(**_facts(a), department_name="榆安区交通运输局", note=note, count=n)

    first = await _tracking_says(app, a, urging(1, "请尽快报到"), actor=SUPERVISOR)
    await _tracking_says(app, a, urging(2, "第二次督办：今日内处置"), actor=SUPERVISOR)
    await publish_event(app.bootstrap, first)  # the first urging heard again
    await _tracking_says(app, a, urging(1, "请尽快报到"), actor=SUPERVISOR)  # a late copy
    (shown,) = await _inbox(app, ours)
    assert shown["urge_count"] == 2
    assert shown["last_urged_at"] is not None
    row = (await app.rows("SELECT * FROM assignment_urgings WHERE assignment_id = $1", a["id"]))[0]
    assert (row["count"], row["last_note"], row["last_urged_by"]) == (
        2,
        "第二次督办：今日内处置",
        "区委组织部督办科",
    )
    other = whistled(category="C0201")
    await app.whistle(other)
    (fresh,) = await _inbox(app, {str(other.case_id)})
    assert (fresh["urge_count"], fresh["last_urged_at"]) == (0, None)


async def test_an_unknown_assignment_is_remembered_without_failing(app):
    """Tracking may announce a clock of an assignment dispatch no longer shows (or a test's
    fabricated one): it is kept, harmlessly, and the consumer moves on."""
    ghost = {
        "case_no": "YA-X",
        "area_path": "YA/YA01",
        "category": "C0201",
        "priority": "normal",
        "id": uuid.uuid4(),
        "department_id": "jt",
        "case_id": uuid.uuid4(),
    }
    await _tracking_says(app, ghost, started(ghost, "sign_for", datetime.now(UTC)))
    assert (
        await app.val(
            "SELECT count(*) FROM assignment_clocks WHERE assignment_id = $1", ghost["id"]
        )
        == 1
    )
