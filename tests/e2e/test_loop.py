"""The whole loop on the real embedded stack: PostgreSQL, the broker and the four services
as separate processes, driven over HTTP as their users would."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from standardwebhooks import Webhook

from shared.contract import Topics
from tests.e2e.conftest import SIGN_FOR_DEADLINE_SECONDS
from tests.helpers import eventually, publish_raw, read_topic

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of a 24-byte test key


def report(grid: str = "YA0101-03", category: str = "E0101", **extra) -> dict:
    return {
        "grid_code": grid,
        "category": category,
        "description": "单元门口乱堆装修垃圾，堵塞通道",
        "priority": "normal",
        "location": {"address": "桃园小区5号楼2单元"},
        "reporter": "网格员王芳",
        **extra,
    }


def as_(stack, subject: str) -> dict[str, str]:
    """Authorization header for a demo user, signed with the stack's own secret."""
    return {"Authorization": f"Bearer {stack.mint_demo_token(subject)}"}


async def set_webhook(http, stack, recipient_id: str, url: str) -> None:
    admin = as_(stack, "admin")
    current = (await http.get(f"{stack.url('notify')}/recipients", headers=admin)).json()
    me = next(r for r in current if r["id"] == recipient_id)
    body = {k: me[k] for k in ("name", "kind", "department_id", "area_path")}
    resp = await http.put(
        f"{stack.url('notify')}/recipients/{recipient_id}",
        json={**body, "webhook_url": url, "webhook_secret": SECRET},
        headers=admin,
    )
    assert resp.status_code == 200, resp.text


def verified(requests: list[dict]) -> list[dict]:
    """Every request must carry a valid Standard Webhooks signature."""
    hook = Webhook(SECRET)
    for r in requests:
        hook.verify(r["body"], {k.lower(): v for k, v in r["headers"].items()})
    return [r["json"] for r in requests]


async def assignment_of(http, stack, department: str, case_id: str) -> dict | None:
    rows = (
        await http.get(
            f"{stack.url('dispatch')}/departments/{department}/assignments",
            headers=as_(stack, f"{department}-duty"),
        )
    ).json()
    return next((a for a in rows if a["case_id"] == case_id), None)


def mentions(message: dict, case_id: str) -> bool:
    return case_id in json.dumps(message, ensure_ascii=False)


async def test_one_case_through_the_loop(stack, http, webhooks):
    await set_webhook(http, stack, "duty-cg", webhooks.url("/cg"))
    intake, dispatch, tracking = stack.url("intake"), stack.url("dispatch"), stack.url("tracking")

    worker, community, cg = as_(stack, "wangfang"), as_(stack, "taoyuan"), as_(stack, "cg-duty")

    # 网格发现: the grid worker reports in his own grid.
    created = await http.post(
        f"{intake}/cases", json=report(), headers={**worker, "X-Correlation-ID": "e2e-loop-1"}
    )
    assert created.status_code == 201, created.text
    case = created.json()
    case_id = case["id"]

    # 社区吹哨: the community whistles it to the departments.
    whistled = await http.post(
        f"{intake}/cases/{case_id}/whistle",
        json={"note": "请尽快清运"},
        headers={**community, "X-Correlation-ID": "e2e-whistle-1"},
    )
    assert whistled.status_code == 200, whistled.text

    # Dispatch routes it by (category, area) to 城管 and the department's webhook hears it.
    assignment = await eventually(
        lambda: assignment_of(http, stack, "cg", case_id),
        message="dispatch assigned the case to cg",
    )
    assert assignment["state"] == "dispatched" and assignment["rule_id"] is not None
    hooks = await eventually(
        lambda: asyncio.sleep(
            0, [m for m in verified(webhooks.received("/cg")) if mentions(m, case_id)]
        ),
        message="the department's webhook received the dispatch",
    )
    assert len(hooks) == 1

    # 部门报到: sign for, then resolve.
    aid = assignment["id"]
    not_mine = await http.post(
        f"{dispatch}/assignments/{aid}/sign-for", json={}, headers=as_(stack, "xf-duty")
    )
    assert not_mine.status_code == 403
    signed = await http.post(f"{dispatch}/assignments/{aid}/sign-for", json={}, headers=cg)
    assert signed.status_code == 200, signed.text
    resolved = await http.post(
        f"{dispatch}/assignments/{aid}/resolve",
        json={"result": "已清运完毕，通道恢复畅通"},
        headers=cg,
    )
    assert resolved.status_code == 200, resolved.text

    # The reporter's view follows, and the community verifies and closes (核查结案).
    async def intake_status():
        resp = await http.get(f"{intake}/cases/{case_id}", headers=worker)
        return resp.json()["status"] == "resolved"

    await eventually(intake_status, message="intake saw the case resolved")
    closed = await http.post(
        f"{intake}/cases/{case_id}/close", json={"note": "现场核查通过"}, headers=community
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"

    # Tracking's timeline shows every step, in order; the whistle request's correlation id
    # flowed through dispatch's event too, and into every service's log lines.
    expected = [
        "case.reported",
        "case.whistled",
        "case.dispatched",
        "case.signed_for",
        "case.resolved",
        "case.closed",
    ]

    async def timeline():
        resp = await http.get(
            f"{tracking}/cases/{case_id}/timeline", headers=as_(stack, "supervisor")
        )
        if resp.status_code != 200:
            return None
        events = resp.json()["events"]
        types = [e["type"] for e in events if e["producer"] != "tracking"]
        return events if types == expected else None

    events = await eventually(timeline, message="timeline complete")
    correlation = {e["type"]: e["correlation_id"] for e in events}
    assert correlation["case.reported"] == "e2e-loop-1"
    assert correlation["case.whistled"] == correlation["case.dispatched"] == "e2e-whistle-1"
    # Every action is attributed: who did it travels in the envelope into the timeline.
    actors = {e["type"]: (e["actor"] or {}).get("subject") for e in events}
    assert actors["case.reported"] == "wangfang" and actors["case.whistled"] == "taoyuan"
    assert actors["case.signed_for"] == actors["case.resolved"] == "cg-duty"
    assert actors["case.closed"] == "taoyuan"
    for service in ("intake", "dispatch", "tracking", "notify"):
        lines = (stack.config.log_dir / f"{service}.log").read_text().splitlines()
        assert any('"correlation_id": "e2e-whistle-1"' in line for line in lines), service


async def test_missed_sign_for_deadline_alerts_the_supervisor_exactly_once(stack, http, webhooks):
    await set_webhook(http, stack, "sup-district", webhooks.url("/supervisor"))
    intake, notify, tracking = stack.url("intake"), stack.url("notify"), stack.url("tracking")
    case = (
        await http.post(
            f"{intake}/cases", json=report("YA0302-04", "E0201"), headers=as_(stack, "lihua")
        )
    ).json()
    case_id = case["id"]
    await http.post(
        f"{intake}/cases/{case_id}/whistle",
        json={"priority": "urgent"},
        headers=as_(stack, "donghu"),
    )
    await eventually(lambda: assignment_of(http, stack, "xf", case_id), message="dispatched to xf")

    async def supervisor_inbox():
        rows = (
            await http.get(
                f"{notify}/recipients/sup-district/inbox", headers=as_(stack, "supervisor")
            )
        ).json()
        return [m for m in rows if m["case_id"] == case_id]

    messages = await eventually(
        supervisor_inbox,
        timeout=SIGN_FOR_DEADLINE_SECONDS + 30,
        message="the overdue alert reached the supervisor's inbox",
    )
    await eventually(
        lambda: asyncio.sleep(
            0, [m for m in verified(webhooks.received("/supervisor")) if mentions(m, case_id)]
        ),
        message="the overdue alert reached the supervisor's webhook",
    )
    # the board lists every late clock of the session's cases: look where this one must be
    board = (
        await http.get(
            f"{tracking}/overdue",
            params={"department_id": "xf", "clock": "sign_for"},
            headers=as_(stack, "supervisor"),
        )
    ).json()
    assert case_id in json.dumps(board)
    await asyncio.sleep(3)  # anything doubled would have arrived by now
    # Escalations (case.escalated) may follow the overdue alert; the alert itself comes once.
    messages = [m for m in await supervisor_inbox() if m["type"] == "case.overdue"]
    hooks = [
        m
        for m in verified(webhooks.received("/supervisor"))
        if mentions(m, case_id) and "case.overdue" in json.dumps(m)
    ]
    assert len(messages) == 1 and messages[0]["type"] == "case.overdue"
    assert len(hooks) == 1
    assert "超时" in messages[0]["title"] + messages[0]["body"]


async def test_same_idempotency_key_and_a_redelivered_event_have_one_effect(stack, http):
    intake, dispatch, tracking = stack.url("intake"), stack.url("dispatch"), stack.url("tracking")
    key = f"mobile-retry-{uuid.uuid4()}"
    jinxiu = as_(stack, "jinxiu")
    first = await http.post(
        f"{intake}/cases",
        json=report("YA0201-02", "C0101"),
        headers={**jinxiu, "Idempotency-Key": key},
    )
    again = await http.post(
        f"{intake}/cases",
        json=report("YA0201-02", "C0101"),
        headers={**jinxiu, "Idempotency-Key": key},
    )
    assert (first.status_code, again.status_code) == (201, 200)
    case_id = first.json()["id"]
    assert again.json()["id"] == case_id
    await http.post(f"{intake}/cases/{case_id}/whistle", json={}, headers=jinxiu)
    await eventually(lambda: assignment_of(http, stack, "gd", case_id), message="dispatched to gd")

    # Publish the whistle event a second time, exactly as the relay did.
    records = [
        r
        for r in await read_topic(stack.kafka.bootstrap, Topics.INTAKE)
        if r.key == case_id.encode()
    ]
    whistle = next(r for r in records if json.loads(r.value)["type"] == "case.whistled")
    await publish_raw(stack.kafka.bootstrap, Topics.INTAKE, whistle.value, whistle.key)

    async def duplicates_seen(service: str) -> bool:
        text = (await http.get(f"{stack.url(service)}/metrics")).text
        return any(
            line.startswith("whistle_events_consumed_total{")
            and 'type="case.whistled"' in line
            and 'outcome="duplicate"' in line
            and float(line.rsplit(" ", 1)[1]) >= 1
            for line in text.splitlines()
        )

    await eventually(lambda: duplicates_seen("dispatch"), message="dispatch saw the duplicate")
    await eventually(lambda: duplicates_seen("tracking"), message="tracking saw the duplicate")
    rows = (
        await http.get(f"{dispatch}/departments/gd/assignments", headers=as_(stack, "gd-duty"))
    ).json()
    assert [a["case_id"] for a in rows].count(case_id) == 1

    async def timeline_types():
        resp = await http.get(f"{tracking}/cases/{case_id}/timeline", headers=jinxiu)
        return [e["type"] for e in resp.json()["events"]] if resp.status_code == 200 else None

    types = await eventually(timeline_types, message="timeline")
    assert types.count("case.reported") == 1 and types.count("case.whistled") == 1
