"""Notify's webhook pipeline on real PostgreSQL, the real broker and a real local HTTP
endpoint that verifies the Standard Webhooks signature of what it receives: a case event
reaches the desks' inboxes and their webhooks once; a failing endpoint is retried with
backoff, a dead or hanging one does not hold up a healthy one, a rejected one goes dead and
is replayed; an overdue case reaches the area's supervisors and the late department.

test_notify_names.py and test_notify_templates.py import the app and the helpers they share
with these tests from here (they live in tests/component/notify_fixtures.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from shared.contract import Priority
from tests.component import notify_fixtures
from tests.component.notify_fixtures import (
    ADMIN,
    CONSOLE,
    add_recipient,
    area_desk,
    deliveries,
    desk,
    dispatched,
    inbox_of,
    new_secret,
    overdue_in,
    overseer,
    staff,
    uid,
)

# what test_notify_names and test_notify_templates take from here besides the above
from tests.conftest import free_port
from tests.helpers import eventually, fetch, publish_event

notify = notify_fixtures.notify  # notify on real PostgreSQL and the broker, one for the module
endpoint = notify_fixtures.endpoint  # the local webhook endpoint, one for the module


async def test_dispatch_reaches_inbox_and_one_signed_webhook_even_when_duplicated(notify, endpoint):
    client, _, bootstrap = notify
    dept, other = f"cg-{uid()}", f"zj-{uid()}"
    secret = new_secret()
    signed_path, unsigned_path = f"/ok/{uid()}", f"/ok/{uid()}"
    duty = await add_recipient(
        client,
        id=f"duty-{dept}",
        name="城管值班室",
        kind="department",
        department_id=dept,
        webhook_url=endpoint.url + signed_path,
        webhook_secret=secret,
    )
    assert duty["webhook_signed"] is True and "webhook_secret" not in duty
    await desk(
        client, dept, rid=f"duty2-{dept}", name="城管夜班", webhook_url=endpoint.url + unsigned_path
    )
    await desk(client, other, name="住建值班室")

    event = dispatched(dept)
    await publish_event(bootstrap, event)
    await publish_event(bootstrap, event)  # the same event delivered twice: one effect
    # A later event of the same case (same key → same partition, after the duplicate):
    # once it is in, the duplicate has been handled too.
    sentinel = dispatched(other, case_id=event.case_id)
    await publish_event(bootstrap, sentinel)
    await eventually(
        lambda: inbox_of(client, f"duty-{other}", staff(other)),
        timeout=45,
        message="the sentinel event reached the other department",
    )

    async def both_posted():
        return endpoint.at(signed_path) and endpoint.at(unsigned_path)

    await eventually(both_posted, message="the webhooks were posted")
    messages = await inbox_of(client, duty["id"], staff(dept))
    assert len(messages) == 1
    m = messages[0]
    assert m["body"].startswith(
        "【派单】案件YA20261122-0001（E0101）已派至榆安区城市管理局（主办），请及时签收报到。"
    )
    assert m["body_en"].startswith("[Dispatched] Case YA20261122-0001")
    # the department's desk is taken straight to its assignment, on the console's address
    assert m["link"] == f"{CONSOLE}/assignments/{event.payload.assignment_id}"
    assert m["body"].endswith(f"详情：{m['link']}") and m["read_at"] is None

    [post] = endpoint.at(signed_path)
    payload = Webhook(secret).verify(post.body, post.headers)  # raises if the signature is wrong
    assert payload["type"] == "case.dispatched"
    assert payload["data"]["event_id"] == str(event.event_id)
    assert payload["data"]["text"] == {"zh": m["body"], "en": m["body_en"]}
    assert payload["data"]["link"] == m["link"]
    assert payload["data"]["assignment_id"] == str(event.payload.assignment_id)
    assert post.headers["webhook-id"]
    assert post.headers["content-type"].startswith("application/json")
    [unsigned] = endpoint.at(unsigned_path)
    assert "webhook-signature" not in unsigned.headers
    assert json.loads(unsigned.body)["data"]["recipient_id"] == f"duty2-{dept}"

    # The delivery log: inbox and webhook, each once per recipient, all sent.
    async def log_complete():
        rows = await deliveries(client, event_id=str(event.event_id))
        return rows if all(r["status"] == "sent" for r in rows) and len(rows) == 4 else None

    rows = await eventually(log_complete, message="every delivery marked sent")
    assert sorted((r["recipient_id"], r["channel"], r["attempts"]) for r in rows) == sorted(
        [
            (f"duty-{dept}", "inbox", 1),
            (f"duty-{dept}", "webhook", 1),
            (f"duty2-{dept}", "inbox", 1),
            (f"duty2-{dept}", "webhook", 1),
        ]
    )

    # Reading: the message leaves the unread list; replaying a sent delivery is refused.
    read = await client.post(f"/recipients/{duty['id']}/inbox/{m['id']}/read", headers=staff(dept))
    assert read.status_code == 200 and read.json()["read_at"]
    assert await inbox_of(client, duty["id"], staff(dept), unread="true") == []
    assert len(await inbox_of(client, duty["id"], staff(dept), unread="false")) == 1
    webhook_row = next(r for r in rows if r["channel"] == "webhook")
    replay = await client.post(f"/deliveries/{webhook_row['id']}/replay", headers=ADMIN)
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "not_dead"
    assert len(endpoint.at(signed_path)) == 1
    metrics = (await client.get("/metrics")).text
    assert 'whistle_deliveries_total{channel="webhook",outcome="sent",service="notify"}' in metrics


async def test_failing_endpoint_is_retried_with_backoff_then_sent(notify, endpoint):
    client, _, bootstrap = notify
    dept, secret, path = f"gd-{uid()}", new_secret(), f"/fail/4/{uid()}"
    await desk(
        client, dept, name="供电值班室", webhook_url=endpoint.url + path, webhook_secret=secret
    )
    event = dispatched(dept)
    await publish_event(bootstrap, event)

    async def sent():
        rows = await deliveries(client, event_id=str(event.event_id), channel="webhook")
        return rows[0] if rows and rows[0]["status"] == "sent" else None

    row = await eventually(sent, timeout=45, message="the webhook was sent in the end")
    posts = endpoint.at(path)
    assert [p.status for p in posts] == [500, 500, 500, 500, 200]
    # claim 1: three tries in line (500 ×3) → rescheduled; claim 2: 500, then 200
    assert row["attempts"] == 2 and "HTTP 500" in row["last_error"] and row["sent_at"]
    assert posts[3].at - posts[2].at >= 0.45  # the scheduled backoff (base 1 s, jitter ≥ ½)
    assert posts[1].at - posts[0].at >= 0.15  # the in-line pause
    assert len({p.headers["webhook-id"] for p in posts}) == 1  # one message id for receivers
    for p in posts:
        Webhook(secret).verify(p.body, p.headers)


async def test_dead_or_hanging_endpoint_does_not_delay_a_healthy_one(notify, endpoint):
    client, dsn, bootstrap = notify
    late, healthy = f"xf-{uid()}", f"jt-{uid()}"
    refused = f"http://127.0.0.1:{free_port()}/nobody-home"
    hang_path, ok_path = f"/hang/{uid()}", f"/ok/{uid()}"
    for rid, dept, url in (
        (f"a-refused-{late}", late, refused),
        (f"b-hang-{late}", late, endpoint.url + hang_path),
        (f"c-healthy-{healthy}", healthy, endpoint.url + ok_path),
    ):
        await desk(client, dept, rid=rid, name="值班室", webhook_url=url)
    await publish_event(bootstrap, dispatched(late))
    await eventually(
        lambda: endpoint.started(hang_path),
        timeout=45,
        message="the hanging endpoint has a request open",
    )
    # Only now does the healthy endpoint's delivery exist: it must not queue behind.
    await publish_event(bootstrap, dispatched(healthy))
    await eventually(
        lambda: _sent(dsn, f"c-healthy-{healthy}"), message="the healthy endpoint got its delivery"
    )
    # The hanging endpoint's first claim is still in flight (three tries of 2 s each):
    # the healthy delivery did not wait for it.
    [hang] = await fetch(
        dsn,
        "SELECT status, attempts FROM deliveries WHERE recipient_id = $1 AND channel = 'webhook'",
        f"b-hang-{late}",
    )
    assert (hang["status"], hang["attempts"]) == ("pending", 0)

    async def refused_recorded():
        rows = await deliveries(client, recipient_id=f"a-refused-{late}", channel="webhook")
        return rows[0] if rows and rows[0]["attempts"] >= 1 else None

    row = await eventually(refused_recorded, message="the refused delivery recorded its failure")
    assert row["status"] == "pending" and "Connect" in row["last_error"]


async def _sent(dsn: str, recipient_id: str) -> bool:
    rows = await fetch(
        dsn,
        "SELECT status FROM deliveries WHERE recipient_id = $1 AND channel = 'webhook'",
        recipient_id,
    )
    return bool(rows) and rows[0]["status"] == "sent"


async def test_rejected_webhook_goes_dead_and_a_replay_sends_it(notify, endpoint):
    client, dsn, bootstrap = notify
    dept, path = f"sf-{uid()}", f"/reject/{uid()}"
    await desk(client, dept, name="司法值班室", webhook_url=endpoint.url + path)
    event = dispatched(dept)
    await publish_event(bootstrap, event)

    async def dead():
        rows = await deliveries(client, event_id=str(event.event_id), status="dead")
        return rows[0] if rows else None

    row = await eventually(dead, timeout=45, message="the delivery was parked as dead")
    # a 400 is a permanent refusal: not retried (in line or later), the channel is given up
    assert row["attempts"] == 1 and "HTTP 400" in row["last_error"]
    assert row["last_code"] == "HTTP 400"
    assert len(endpoint.at(path)) == 1
    endpoint.accepted.add(path)
    # Replays are operations: not even the department the delivery is for may start one.
    refused = await client.post(f"/deliveries/{row['id']}/replay", headers=staff(dept))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_not_allowed"
    [still] = await fetch(dsn, "SELECT status, replays FROM deliveries WHERE id = $1", row["id"])
    assert (still["status"], still["replays"]) == ("dead", 0)
    replay = await client.post(f"/deliveries/{row['id']}/replay", headers=ADMIN)
    assert replay.status_code == 200, replay.text
    assert replay.json()["status"] == "pending" and replay.json()["replays"] == 1
    await eventually(lambda: _sent(dsn, f"duty-{dept}"), message="the replay was sent")
    assert [p.status for p in endpoint.at(path)] == [400, 200]


async def test_overdue_reaches_area_supervisors_and_the_late_department(notify):
    client, _, bootstrap = notify
    dept = f"zj-{uid()}"
    street, other_street = "YA/YA03", "YA/YA04"
    await desk(client, dept, name="住建值班室")
    await area_desk(client, f"sup-{dept}", "supervisor", street, "东湖街道督办")
    await area_desk(client, f"sup-other-{dept}", "supervisor", other_street, "北城街道督办")
    event = overdue_in(
        "YA/YA03/YA0302/YA0302-05",
        dept,
        case_no="YA20261122-0007",
        category="E0103",
        priority=Priority.URGENT,
        department_name="榆安区住房和城乡建设局",
        clock="sign_for",
        due_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    await publish_event(bootstrap, event)
    [to_sup] = await eventually(
        lambda: inbox_of(client, f"sup-{dept}", overseer(street)),
        timeout=45,
        message="the street's supervisor heard about it",
    )
    [to_dept] = await eventually(
        lambda: inbox_of(client, f"duty-{dept}", staff(dept)),
        message="the late department was hurried",
    )
    assert to_sup["title"] == "【超时】（紧急）案件YA20261122-0007签收报到已超时"
    assert "请督办" in to_sup["body"] and "请立即办理" in to_dept["body"]
    assert await inbox_of(client, f"sup-other-{dept}", overseer(other_street)) == []
    rows = await deliveries(client, event_id=str(event.event_id))
    assert sorted(r["recipient_id"] for r in rows) == [f"duty-{dept}", f"sup-{dept}"]
    assert {r["channel"] for r in rows} == {"inbox"}  # nobody here has a webhook
