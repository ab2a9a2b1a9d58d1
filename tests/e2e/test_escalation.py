"""A late case on the real stack (issues 6 and 7): the department never signs for it, so it
passes the warning (预警), the deadline (超时) and two steps of the escalation ladder
(逐级上报: community, then street) — with the tracking service killed (SIGKILL) after the
warning and started again while the deadline passes. Every alert is raised exactly once,
and each reaches exactly the people who must hear it, exactly once, while the street
supervisor's first channel (a WeCom group robot) is down and his webhook takes over.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from shared.contract import Topics
from tests.conftest import free_port
from tests.e2e.conftest import SIGN_FOR_DEADLINE_SECONDS
from tests.e2e.test_loop import SECRET, as_, report, verified
from tests.helpers import eventually, fetchval, read_topic

pytestmark = pytest.mark.e2e

CATEGORY = "E0402"  # 流浪乞讨: no other end-to-end test uses it
DEPARTMENT = "mz"  # the demo rule sends it to 民政局 alone
GRID = "YA0101-04"
STREET_STEP_AFTER = timedelta(minutes=1)
# The ladder for this category only (other tests keep the demo policy): the community hears
# it at the deadline, the street a minute later; no repetition, so the count is exact.
LADDER = {"steps": [["community", "0 minutes"], ["street", "1 minutes"]], "repeat_every": None}
COMMUNITY_DESK = "desk-taoyuan"  # 桃园社区 hears the ladder's first step
STREET_SUPERVISOR = "sup-ya01"  # 迎泽街道督办 hears overdue alerts and the street step
ALERTS = ("case.deadline_warning", "case.overdue", "case.escalated")


async def short_ladder_for_category(http, stack) -> None:
    """A new policy version in force from now on: the demo policy, with a rule giving
    CATEGORY the short ladder (calendar time, so the test does not depend on the hour)."""
    tracking, admin = stack.url("tracking"), as_(stack, "admin")
    items = (await http.get(f"{tracking}/sla/policy-versions", headers=admin)).json()["items"]
    latest = items[-1]["policy"]
    normal = {
        **latest["defaults"]["normal"],
        "sign_for": "30 minutes",
        # The sign-for limit is the stack's SIGN_FOR_DEADLINE_SECONDS for every policy (8 s),
        # the warning ratio this one's: warned early (0.8 s), tracking is killed as soon as
        # it has heard the dispatch, and the deadline is that much further from the kill.
        "warning_ratio": 0.1,
        "ladder": LADDER,
    }
    effective = datetime.now(UTC) + timedelta(seconds=2)
    body = {
        **latest,
        "version": items[-1]["version"] + 1,
        "effective_from": effective.isoformat(),
        "note": "e2e: short escalation ladder",
        "rules": {**latest.get("rules", {}), CATEGORY: {"normal": normal}},
    }
    resp = await http.post(f"{tracking}/sla/policy-versions", json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    await asyncio.sleep(max(0.0, (effective - datetime.now(UTC)).total_seconds()) + 0.2)


async def channels(http, stack, recipient: str, prefs: list[dict]) -> None:
    resp = await http.put(
        f"{stack.url('notify')}/recipients/{recipient}/preferences",
        json={"channels": prefs},
        headers=as_(stack, "admin"),
    )
    assert resp.status_code == 200, resp.text


async def prepare_recipients(http, stack, webhooks) -> None:
    notify, admin = stack.url("notify"), as_(stack, "admin")
    await channels(
        http,
        stack,
        f"duty-{DEPARTMENT}",
        [
            {
                "kind": "webhook",
                "settings": {"url": webhooks.url(f"/{DEPARTMENT}"), "secret": SECRET},
            }
        ],
    )
    desk = {
        "id": COMMUNITY_DESK,
        "name": "桃园社区网格站",
        "kind": "community",
        "area_path": "YA/YA01/YA0101",
    }
    resp = await http.post(f"{notify}/recipients", json=desk, headers=admin)
    assert resp.status_code in (201, 409), resp.text
    await channels(
        http,
        stack,
        COMMUNITY_DESK,
        [{"kind": "webhook", "settings": {"url": webhooks.url("/taoyuan"), "secret": SECRET}}],
    )
    dead = f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send?key=down"  # nothing listens
    await channels(
        http,
        stack,
        STREET_SUPERVISOR,
        [
            {"kind": "wecom", "settings": {"url": dead}},
            {"kind": "webhook", "settings": {"url": webhooks.url("/ya01"), "secret": SECRET}},
        ],
    )


async def test_warning_overdue_and_two_escalations_survive_a_tracking_crash(stack, http, webhooks):
    intake, tracking, notify = stack.url("intake"), stack.url("tracking"), stack.url("notify")
    await short_ladder_for_category(http, stack)
    await prepare_recipients(http, stack, webhooks)

    case = await http.post(
        f"{intake}/cases", json=report(GRID, CATEGORY), headers=as_(stack, "wangfang")
    )
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]
    whistled = await http.post(
        f"{intake}/cases/{case_id}/whistle", json={}, headers=as_(stack, "taoyuan")
    )
    assert whistled.status_code == 200, whistled.text

    async def assignments():
        resp = await http.get(
            f"{tracking}/cases/{case_id}/timeline", headers=as_(stack, "supervisor")
        )
        return resp.json()["assignments"] if resp.status_code == 200 else None

    (assignment,) = await eventually(assignments, message="tracking heard the dispatch")
    assert assignment["department_id"] == DEPARTMENT
    department = DEPARTMENT
    dispatched_at = datetime.fromisoformat(assignment["dispatched_at"])
    due_at = dispatched_at + timedelta(seconds=SIGN_FOR_DEADLINE_SECONDS)

    # The warning fires at half the sign-for limit; then tracking crashes before the deadline.
    dsn = stack.dsn("tracking")

    async def fired(kind: str) -> int:
        return await fetchval(
            dsn,
            "SELECT count(*) FROM timers WHERE case_id = $1 AND kind = $2 AND state = 'fired'",
            case_id,
            kind,
        )

    await eventually(
        lambda: fired("warning"),
        timeout=SIGN_FOR_DEADLINE_SECONDS + 10,
        interval=0.1,
        message="the warning fired",
    )

    # … and was sent, so this test is about the timers alone: killed between publishing it and
    # marking it sent, the warning goes again after the restart (at-least-once; the relay's
    # takeover of a dead relay's rows is tested in tests/component/test_outbox_faults.py).
    async def warning_sent() -> int:
        return await fetchval(
            dsn,
            "SELECT count(*) FROM outbox WHERE key = $1 AND type = 'case.deadline_warning'"
            " AND sent_at IS NOT NULL",
            case_id,
        )

    await eventually(warning_sent, timeout=SIGN_FOR_DEADLINE_SECONDS, interval=0.05)
    stack.stop_service("tracking", kill=True)
    killed_at = datetime.now(UTC)
    # Down while the deadline and the community step fall due: nothing can fire them now.
    await asyncio.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds()) + 2)
    restarted_at = datetime.now(UTC)
    stack.start_service("tracking")
    await asyncio.to_thread(stack.wait_ready, ("tracking",))
    assert killed_at < due_at < restarted_at, "the deadline passed while tracking was down"

    # After the restart the missed alerts fire (late, once), and the street step on time.
    street_at = due_at + STREET_STEP_AFTER
    await eventually(
        lambda: fired("escalation"),
        timeout=(street_at - datetime.now(UTC)).total_seconds() + 30,
        message="the escalations fired",
    )

    async def both_steps() -> bool:
        return await fired("escalation") == 2

    await eventually(
        both_steps,
        timeout=(street_at - datetime.now(UTC)).total_seconds() + 30,
        message="the street step fired",
    )

    # Every alert exactly once on the tracking topic, each step of the ladder once.
    async def alerts_on_topic() -> list[dict]:
        records = await read_topic(stack.kafka.bootstrap, Topics.TRACKING)
        events = [json.loads(r.value) for r in records if r.key == case_id.encode()]
        return [e for e in events if e["type"] in ALERTS]

    async def all_four():
        found = await alerts_on_topic()
        return found if len(found) >= 4 else None

    alerts = await eventually(all_four, message="four alerts published")
    await asyncio.sleep(3)  # anything doubled (a second firing, a re-sent outbox row) by now
    alerts = await alerts_on_topic()
    kinds = Counter(
        (e["type"], e["payload"].get("level"), e["payload"].get("step")) for e in alerts
    )
    assert kinds == Counter(
        {
            ("case.deadline_warning", None, None): 1,
            ("case.overdue", None, None): 1,
            ("case.escalated", "community", 0): 1,
            ("case.escalated", "street", 1): 1,
        }
    ), kinds
    assert len({e["event_id"] for e in alerts}) == 4
    by_type = {(e["type"], e["payload"].get("step")): e for e in alerts}
    assert datetime.fromisoformat(by_type[("case.overdue", None)]["occurred_at"]) >= restarted_at
    assert datetime.fromisoformat(by_type[("case.escalated", 1)]["occurred_at"]) >= street_at
    # The timeline shows each once, too.
    timeline = (
        await http.get(f"{tracking}/cases/{case_id}/timeline", headers=as_(stack, "supervisor"))
    ).json()
    on_timeline = Counter(e["type"] for e in timeline["events"] if e["type"] in ALERTS)
    assert on_timeline == Counter(
        {"case.deadline_warning": 1, "case.overdue": 1, "case.escalated": 2}
    )

    # Notify: exactly the expected recipients, once per event, on the channel that works.
    expected = {
        ("case.dispatched", f"duty-{department}"),
        ("case.deadline_warning", f"duty-{department}"),
        ("case.overdue", f"duty-{department}"),
        ("case.overdue", "sup-district"),
        ("case.overdue", STREET_SUPERVISOR),
        ("case.escalated", COMMUNITY_DESK),  # the community step
        ("case.escalated", STREET_SUPERVISOR),  # the street step
    }

    async def deliveries() -> list[dict]:
        resp = await http.get(
            f"{notify}/deliveries",
            params={"case_id": case_id, "limit": 500},
            headers=as_(stack, "admin"),
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def settled():
        rows = await deliveries()
        pending = [d for d in rows if d["status"] not in ("sent", "dead")]
        webhook_sent = {
            (d["type"], d["recipient_id"])
            for d in rows
            if d["channel"] == "webhook" and d["status"] == "sent"
        }
        return (
            rows
            if not pending and webhook_sent >= expected - {("case.overdue", "sup-district")}
            else None
        )

    rows = await eventually(settled, timeout=60, message="every delivery settled")
    inbox = Counter((d["type"], d["recipient_id"]) for d in rows if d["channel"] == "inbox")
    assert set(inbox) == expected and set(inbox.values()) == {1}, inbox
    # The street supervisor's robot was down: each of his messages went dead there after its
    # bounded retries and was carried once by the next channel, his webhook.
    robot = [d for d in rows if d["recipient_id"] == STREET_SUPERVISOR and d["channel"] == "wecom"]
    assert robot and all(d["status"] == "dead" and d["attempts"] >= 1 for d in robot), robot
    fallback = [
        d for d in rows if d["recipient_id"] == STREET_SUPERVISOR and d["channel"] == "webhook"
    ]
    assert sorted(d["fallback_from"] for d in fallback) == sorted(d["id"] for d in robot)
    assert all(d["status"] == "sent" for d in fallback)

    # What the receivers got: each message once, signed, naming the case.
    def received(path: str) -> Counter:
        return Counter(
            m["type"]
            for m in verified(webhooks.received(path))
            if case_id in json.dumps(m, ensure_ascii=False)
        )

    assert received(f"/{department}") == Counter(
        {"case.dispatched": 1, "case.deadline_warning": 1, "case.overdue": 1}
    )
    assert received("/taoyuan") == Counter({"case.escalated": 1})
    assert received("/ya01") == Counter({"case.overdue": 1, "case.escalated": 1})
