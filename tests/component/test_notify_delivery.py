"""Notify's delivery pipeline on real servers: a recipient's channel preferences (checked,
stored sealed, shown without secrets), and deliveries through the channels — the first
carries the message, a failing one is retried with backoff and the next takes over, a
permanent refusal falls back at once, quiet hours hold what is not urgent, a resend after a
crash keeps its webhook-id, a robot over its rate gets one digest, a hanging channel holds
up nobody else — against the vendor servers of tests/component/notify_vendors.py (robots, a
Standard Webhooks receiver, an SMS gateway, SMTP servers that check signatures as the
vendors document them).

The app runs on a clock the test moves on, so that backoff, quiet hours and a robot's rate
window pass without sleeping.
"""

from __future__ import annotations

import asyncio
import email
import json
import time
from datetime import timedelta
from email.policy import default as default_policy

import asyncpg
import pytest

from services.notify import domain
from services.notify.config import DEV_SECRETS_KEY
from services.notify.sealing import SecretBox
from shared import liveness
from shared.contract import Priority
from tests.component import notify_fixtures, notify_vendors
from tests.component.notify_fixtures import (
    ADMIN,
    CONSOLE,
    deliveries,
    desk,
    dispatched_in,
    uid,
)
from tests.component.notify_vendors import DING_SECRET, FEISHU_SECRET, HOOK_SECRET, SMS
from tests.helpers import eventually, fetch, publish_event

pytestmark = notify_vendors.SMTP_AUTH_WITHOUT_TLS
notify = notify_fixtures.notify_on_clock  # notify on a clock the tests move, one for the module
clock = notify_fixtures.clock
robots = notify_vendors.vendors  # the robots, webhook receiver and SMS gateway
mail = notify_vendors.smtp_servers  # the SMTP servers
DEV_BOX = SecretBox([DEV_SECRETS_KEY])  # the test settings set no key: the dev key seals


async def recipients_digest(dsn: str) -> str:
    [row] = await fetch(
        dsn, "SELECT md5(string_agg(r::text, '|' ORDER BY id)) AS d FROM recipients r"
    )
    return row["d"]


# --- preferences ------------------------------------------------------------------------------


async def test_preferences_are_checked_stored_in_order_and_shown_without_secrets(notify):
    client, dsn, _ = notify
    rid = await desk(client)
    wecom = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-key-{uid()}-0000"
    prefs = {
        "channels": [
            {"kind": "wecom", "settings": {"url": wecom}},
            {
                "kind": "dingtalk",
                "settings": {
                    "url": "https://oapi.dingtalk.com/robot/send?access_token=tok-1234567890",
                    "secret": DING_SECRET,
                },
            },
            {"kind": "sms", "settings": {**SMS, "url": "https://sms.example.cn/v1/send"}},
        ],
        "locale": "en",
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    }
    resp = await client.put(f"/recipients/{rid}/preferences", json=prefs, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    shown = resp.json()
    assert [c["kind"] for c in shown["channels"]] == ["wecom", "dingtalk", "sms"]
    assert shown["locale"] == "en" and shown["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    text = resp.text
    for secret in (DING_SECRET, SMS["app_secret"], "wecom-key-", "tok-1234567890"):
        assert secret not in text, secret
    assert shown["channels"][1]["settings"]["secret"] == "****" + DING_SECRET[-4:]
    assert "access_token=****7890" in shown["channels"][1]["settings"]["url"]
    again = await client.get(f"/recipients/{rid}/preferences", headers=ADMIN)
    assert again.json() == shown
    listed = {r["id"]: r for r in (await client.get("/recipients", headers=ADMIN)).json()}
    assert listed[rid]["channels"] == ["wecom", "dingtalk", "sms"]

    # Sent back as shown (masked), the secrets keep their stored values.
    back = {
        **shown,
        "channels": [
            {"kind": c["kind"], "settings": c["settings"]} for c in reversed(shown["channels"])
        ],
    }
    back.pop("recipient_id")
    resp = await client.put(f"/recipients/{rid}/preferences", json=back, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    [row] = await fetch(dsn, "SELECT channels FROM recipients WHERE id = $1", rid)
    # stored sealed (test_notify_secrets): nothing of a secret in the row, all of it inside
    for secret in (DING_SECRET, SMS["app_secret"], "wecom-key-", "tok-1234567890"):
        assert secret not in row["channels"], secret
    stored = [
        {"kind": c["kind"], "settings": json.loads(DEV_BOX.open(c["sealed"]))}
        for c in json.loads(row["channels"])
    ]
    assert [c["kind"] for c in stored] == ["sms", "dingtalk", "wecom"]
    assert stored[1]["settings"]["secret"] == DING_SECRET
    assert stored[2]["settings"]["url"] == wecom
    assert stored[0]["settings"]["app_secret"] == SMS["app_secret"]


@pytest.mark.parametrize(
    ("body", "status", "code", "names"),
    [
        (
            {"channels": [{"kind": "wecom", "settings": {"url": "not a url"}}]},
            422,
            "invalid_channel_settings",
            "channels[0].settings.url",
        ),
        (
            {
                "channels": [
                    {"kind": "webhook", "settings": {"url": "https://h.example.cn/x"}},
                    {
                        "kind": "dingtalk",
                        "settings": {"url": "https://oapi.dingtalk.com/robot/send?access_token=t"},
                    },
                ]
            },
            422,
            "invalid_channel_settings",
            "channels[1].settings.secret",
        ),
        (
            {
                "channels": [
                    {
                        "kind": "email",
                        "settings": {
                            "host": "smtp.example.cn",
                            "from": "a@example.cn",
                            "to": ["bad"],
                        },
                    }
                ]
            },
            422,
            "invalid_channel_settings",
            "channels[0].settings.to",
        ),
        (
            {
                "channels": [
                    {
                        "kind": "feishu",
                        "settings": {"url": "https://x.example.cn/hook", "secert": "typo"},
                    }
                ]
            },
            422,
            "invalid_channel_settings",
            "channels[0].settings.secert",
        ),
        ({"channels": [{"kind": "inbox"}]}, 422, "inbox_always_on", "channels"),
        (
            {
                "channels": [
                    {"kind": "sms", "settings": {**SMS, "url": "https://s.example.cn"}},
                    {"kind": "sms", "settings": {**SMS, "url": "https://s.example.cn"}},
                ]
            },
            422,
            "duplicate_channel",
            "channels",
        ),
        ({"channels": [{"kind": "carrier_pigeon"}]}, 422, "validation_error", "kind"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, 422, "validation_error", "start"),
        (
            {"quiet_hours": {"start": "07:00", "end": "07:00"}},
            422,
            "invalid_quiet_hours",
            "quiet_hours",
        ),
        ({"locale": "fr"}, 422, "validation_error", "locale"),
        ({"surprise": 1}, 422, "validation_error", "surprise"),
    ],
)
async def test_bad_preferences_are_refused_naming_the_field_and_change_nothing(
    notify, body, status, code, names
):
    client, dsn, _ = notify
    rid = await desk(client)
    good = {
        "channels": [
            {
                "kind": "webhook",
                "settings": {"url": "https://h.example.cn/x", "secret": HOOK_SECRET},
            }
        ]
    }
    assert (
        await client.put(f"/recipients/{rid}/preferences", json=good, headers=ADMIN)
    ).status_code == 200
    before = await recipients_digest(dsn)
    for lang in ("zh", "en"):
        resp = await client.put(
            f"/recipients/{rid}/preferences", json=body, headers={**ADMIN, "Accept-Language": lang}
        )
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert error["code"] == code and names in error["message"], error
    assert await recipients_digest(dsn) == before


async def test_preferences_of_an_unknown_recipient_are_404(notify):
    client, _, _ = notify
    for method in ("GET", "PUT"):
        resp = await client.request(
            method,
            "/recipients/nobody-here/preferences",
            json={} if method == "PUT" else None,
            headers=ADMIN,
        )
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "recipient_not_found"


# --- delivery through the channels -----------------------------------------------------------


async def set_channels(client, rid: str, *channels: tuple[str, dict], **extra) -> None:
    body = {"channels": [{"kind": k, "settings": s} for k, s in channels], **extra}
    resp = await client.put(f"/recipients/{rid}/preferences", json=body, headers=ADMIN)
    assert resp.status_code == 200, resp.text


async def settled_row(
    client, event, channel: str, status: str | tuple[str, ...] = "sent", **kw
) -> dict:
    statuses = (status,) if isinstance(status, str) else status

    async def probe():
        rows = await deliveries(client, event_id=str(event.event_id), channel=channel)
        return (
            rows[0]
            if rows
            and rows[0]["status"] in statuses
            and all(rows[0][k] == v for k, v in kw.items())
            else None
        )

    return await eventually(probe, timeout=45, message=f"{channel} delivery {statuses} {kw or ''}")


def wecom_url(robots, tag: str, key: str = "good-key") -> str:
    return f"{robots.base}/cgi-bin/webhook/send?key={key}&t={tag}"


def hits_for(robots, vendor: str, tag: str, field: str = "t") -> list:
    return [h for h in robots.of(vendor) if h.query.get(field) == tag]


async def test_the_first_channel_carries_the_message_once_and_the_others_stay_unused(
    notify, robots
):
    client, _, bootstrap = notify
    tag, dept = uid(), f"cg-{uid()}"
    rid = await desk(client, dept)
    await set_channels(
        client,
        rid,
        ("wecom", {"url": wecom_url(robots, tag)}),
        ("sms", {**SMS, "url": f"{robots.base}/sms/v1/send"}),
    )
    event = dispatched_in("YA/YA01/YA0101/YA0101-03", dept, case_no=f"YA-{tag}")
    await publish_event(bootstrap, event)
    await publish_event(bootstrap, event)  # redelivered: nothing new
    row = await settled_row(client, event, "wecom")
    assert (row["attempts"], row["position"], row["last_code"]) == (1, 0, "errcode 0")
    [hit] = hits_for(robots, "wecom", tag)
    content = hit.json["markdown"]["content"]
    assert f"YA-{tag}" in content and "榆安区城市管理局" in content and "E0101" in content
    # the robot's markdown links the desk straight to its assignment, absolute
    link = f"{CONSOLE}/assignments/{event.payload.assignment_id}"
    assert f"[查看详情]({link})" in content
    rows = await deliveries(client, event_id=str(event.event_id), recipient_id=rid)
    assert sorted((r["channel"], r["status"]) for r in rows) == [
        ("inbox", "sent"),
        ("wecom", "sent"),
    ]
    metrics = (await client.get("/metrics")).text
    assert 'whistle_deliveries_total{channel="wecom",outcome="sent",service="notify"}' in metrics
    assert 'whistle_delivery_attempt_seconds_count{channel="wecom",outcome="sent"' in metrics


async def test_a_failing_channel_is_retried_with_backoff_then_the_next_channel_takes_over(
    notify, robots, clock
):
    client, dsn, bootstrap = notify
    tag, dept = uid(), f"gd-{uid()}"
    rid = await desk(client, dept)
    feishu = {
        "url": f"{robots.base}/open-apis/bot/v2/hook/signed-bot",
        "secret": FEISHU_SECRET,
        "msg_type": "post",
    }
    await set_channels(
        client,
        rid,
        ("webhook", {"url": f"{robots.base}/status/503/{tag}"}),
        ("feishu", feishu),
        locale="en",
    )
    event = dispatched_in("YA/YA02/YA0201/YA0201-01", dept, case_no=f"YA-{tag}")
    await publish_event(bootstrap, event)

    first = await settled_row(client, event, "webhook", "pending", attempts=1)
    assert first["last_code"] == "HTTP 503" and "HTTP 503" in first["last_error"]
    # the backoff: 30 s × 2^0 with jitter, between 15 and 30 s from the attempt
    [due] = await fetch(
        dsn,
        "SELECT next_attempt_at - $2::timestamptz AS wait FROM deliveries WHERE id = $1",
        first["id"],
        clock(),
    )
    assert timedelta(seconds=13) <= due["wait"] <= timedelta(seconds=31)
    clock.advance(5)
    await asyncio.sleep(0.5)  # not due yet: nothing is tried
    assert (await deliveries(client, event_id=str(event.event_id), channel="webhook"))[0][
        "attempts"
    ] == 1
    clock.advance(30)
    await settled_row(client, event, "webhook", "pending", attempts=2)
    assert not await deliveries(client, event_id=str(event.event_id), channel="feishu")
    clock.advance(61)
    dead = await settled_row(client, event, "webhook", "dead", attempts=3)
    feishu_row = await settled_row(client, event, "feishu")
    assert feishu_row["fallback_from"] == dead["id"] and feishu_row["position"] == 1
    hit = next(h for h in robots.of("feishu") if f"YA-{tag}" in h.body.decode())
    assert hit.json["msg_type"] == "post"
    assert "[Dispatched] Case" in hit.body.decode()  # the recipient reads English
    metrics = (await client.get("/metrics")).text
    assert (
        'whistle_delivery_fallbacks_total{from_channel="webhook",service="notify",'
        'to_channel="feishu"}'
    ) in metrics

    # The dead delivery is kept. Its fallback already told the recipient: a replay would tell
    # him twice, so it is refused naming the fallback, and nothing changes …
    before = await deliveries(client, event_id=str(event.event_id))
    for lang, words in (
        ("zh", f"已通过 feishu 渠道已送达（投递 {feishu_row['id']}）"),
        ("en", f"already went out on feishu (delivery {feishu_row['id']}, sent)"),
    ):
        refused = await client.post(
            f"/deliveries/{dead['id']}/replay", headers={**ADMIN, "Accept-Language": lang}
        )
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "already_delivered" and words in error["message"], error
    assert await deliveries(client, event_id=str(event.event_id)) == before
    hits = len(robots.of("feishu"))
    # … unless forced: then it fails again on its own schedule (and the fallback, already
    # sent, is not queued a second time).
    replay = await client.post(
        f"/deliveries/{dead['id']}/replay", params={"force": "true"}, headers=ADMIN
    )
    assert replay.status_code == 200 and replay.json()["status"] == "pending"
    await settled_row(client, event, "webhook", "pending", attempts=1, replays=1)
    assert len(robots.of("feishu")) == hits


async def test_a_permanent_refusal_falls_back_at_once_and_email_arrives(notify, robots, mail):
    client, _, bootstrap = notify
    tag, dept = uid(), f"xf-{uid()}"
    rid = await desk(client, dept)
    smtp = {
        "host": "127.0.0.1",
        "port": mail.plain.port,
        "security": "none",
        "from": "notify@example.cn",
        "to": [f"duty-{tag}@example.cn"],
    }
    await set_channels(
        client, rid, ("wecom", {"url": wecom_url(robots, tag, "wrong-key")}), ("email", smtp)
    )
    event = dispatched_in(
        "YA/YA03/YA0302/YA0302-04", dept, case_no=f"YA-{tag}", priority=Priority.URGENT
    )
    await publish_event(bootstrap, event)
    dead = await settled_row(client, event, "wecom", "dead")
    assert dead["attempts"] == 1 and dead["last_code"] == "errcode 93000"
    sent = await settled_row(client, event, "email")
    assert sent["fallback_from"] == dead["id"]
    [received] = [m for m in mail.boxes["plain"].mails if f"duty-{tag}@example.cn" in m.rcpt_tos]
    parsed = email.message_from_bytes(received.content, policy=default_policy)
    assert parsed["Subject"] == f"【紧急】【派单】（紧急）案件YA-{tag}已派至榆安区城市管理局"
    link = f"{CONSOLE}/assignments/{event.payload.assignment_id}"
    assert f"详情：{link}" in parsed.get_body(("plain",)).get_content()


async def test_quiet_hours_hold_a_normal_case_but_not_an_urgent_one(notify, robots, clock):
    client, dsn, bootstrap = notify
    dept = f"jt-{uid()}"
    rid = await desk(client, dept)
    beijing = (clock() + timedelta(hours=8)).replace(tzinfo=None)
    start = (beijing - timedelta(hours=1)).strftime("%H:%M")
    end = (beijing + timedelta(hours=1)).strftime("%H:%M")
    hook = {"url": f"{robots.base}/hooks/{dept}", "secret": HOOK_SECRET}
    await set_channels(client, rid, ("webhook", hook), quiet_hours={"start": start, "end": end})
    normal = dispatched_in("YA/YA04/YA0401/YA0401-01", dept, case_no="YA-normal")
    urgent = dispatched_in(
        "YA/YA04/YA0401/YA0401-01", dept, case_no="YA-urgent", priority=Priority.URGENT
    )
    await publish_event(bootstrap, normal)
    await publish_event(bootstrap, urgent)
    await settled_row(client, urgent, "webhook")
    held = await settled_row(client, normal, "webhook", "pending", attempts=0)
    [row] = await fetch(
        dsn,
        "SELECT next_attempt_at - $2::timestamptz AS wait FROM deliveries WHERE id = $1",
        held["id"],
        clock(),
    )
    assert timedelta(minutes=58) <= row["wait"] <= timedelta(minutes=61)
    inbox = await deliveries(client, event_id=str(normal.event_id), channel="inbox")
    assert inbox[0]["status"] == "sent"  # the inbox is never held
    clock.advance(2 * 3600)
    await settled_row(client, normal, "webhook")
    hooks = [h for h in robots.of("hook") if h.headers.get("webhook-id", "").endswith(rid)]
    assert [h.json["data"]["case_no"] for h in hooks] == ["YA-urgent", "YA-normal"]
    # The moved clock let the held message go; its signature still carries the wall clock
    # (a receiver checks it against its own, within minutes — the receiver here too).
    stamp = int(hooks[-1].headers["webhook-timestamp"])
    assert abs(stamp - time.time()) < 60 and abs(stamp - clock().timestamp()) > 3600


async def test_a_resend_after_a_crash_between_send_and_mark_carries_the_same_webhook_id(
    notify, robots, clock
):
    """Notify dies after the POST went out and before the row says sent: the lease runs out
    and the delivery goes again, with the webhook-id of the first time (the receiver drops
    it); the next delivery has an id of its own."""
    client, dsn, bootstrap = notify
    tag, dept = uid(), f"gs-{uid()}"
    rid = await desk(client, dept)
    await set_channels(
        client, rid, ("webhook", {"url": f"{robots.base}/hooks/{dept}", "secret": HOOK_SECRET})
    )
    first = dispatched_in("YA/YA01/YA0101/YA0101-03", dept, case_no=f"YA-{tag}-1")
    await publish_event(bootstrap, first)
    sent = await settled_row(client, first, "webhook")
    # the crash: the mark is lost, the row is as it was claimed, its lease has run out
    await fetch(
        dsn,
        "UPDATE deliveries SET status = 'pending', attempts = 0, sent_at = NULL,"
        " next_attempt_at = now() - interval '1 second' WHERE id = $1",
        sent["id"],
    )

    def hooks(case_no: str) -> list:
        return [
            h for h in robots.of("hook") if (h.json or {}).get("data", {}).get("case_no") == case_no
        ]

    async def resent():
        return len(hooks(f"YA-{tag}-1")) == 2 or None

    await eventually(resent, timeout=45, message="the delivery went again after the lease")
    await settled_row(client, first, "webhook", attempts=1)
    second = dispatched_in("YA/YA01/YA0101/YA0101-03", dept, case_no=f"YA-{tag}-2")
    await publish_event(bootstrap, second)
    await settled_row(client, second, "webhook")
    ids = [h.headers["webhook-id"] for h in hooks(f"YA-{tag}-1")]
    [other] = [h.headers["webhook-id"] for h in hooks(f"YA-{tag}-2")]
    assert ids[0] == ids[1] == domain.webhook_message_id(str(first.event_id), rid)
    assert other != ids[0] and other == domain.webhook_message_id(str(second.event_id), rid)


async def test_a_delivery_taken_by_a_worker_that_died_goes_at_once_not_after_its_lease(
    notify, robots, clock
):
    """A notify process dies holding a claimed delivery (the POST cut off): the restarted or
    another worker sends it on its next round — while the dead worker's session lives (a
    frozen process) its claim holds until the lease."""
    client, dsn, bootstrap = notify
    tag, dept = uid(), f"gs-{uid()}"
    rid = await desk(client, dept)
    await set_channels(
        client, rid, ("webhook", {"url": f"{robots.base}/hooks/{dept}", "secret": HOOK_SECRET})
    )
    event = dispatched_in("YA/YA01/YA0101/YA0101-03", dept, case_no=f"YA-{tag}")
    await publish_event(bootstrap, event)
    sent = await settled_row(client, event, "webhook")

    def hooks() -> int:  # this desk's (an area desk of another test may hear the case too)
        return len([h for h in robots.of("hook") if h.headers.get("webhook-id", "").endswith(rid)])

    assert hooks() == 1
    # The victim: a worker that claimed the delivery a moment ago, lease 10 minutes.
    victim = await asyncpg.connect(dsn)
    try:
        await liveness.hold(victim, "notify-victim")
        await fetch(
            dsn,
            "UPDATE deliveries SET status = 'pending', attempts = 0, sent_at = NULL,"
            " claimed_by = '+notify-victim', next_attempt_at = $2 WHERE id = $1",
            sent["id"],
            clock() + timedelta(minutes=10),  # the app's clock, which this module moves
        )
        await asyncio.sleep(2)  # twenty of the live worker's rounds
        assert hooks() == 1  # frozen, not dead: its claim holds
    finally:
        await victim.close()  # the process is gone, and its session with it
    gone_at = time.monotonic()

    async def resent() -> bool:
        return hooks() == 2

    await eventually(resent, timeout=10, interval=0.05, message="sent again by a live worker")
    row = await settled_row(client, event, "webhook", attempts=1)
    assert row["status"] == "sent"
    claimed_by = await fetch(dsn, "SELECT claimed_by FROM deliveries WHERE id = $1", sent["id"])
    assert claimed_by[0]["claimed_by"] is None
    print(f"\nworker gone: its delivery went again {time.monotonic() - gone_at:.2f}s later")


async def test_a_robot_over_its_rate_gets_one_digest_instead_of_dropped_messages(
    notify, robots, clock
):
    client, _, bootstrap = notify
    tag, dept = uid(), f"hb-{uid()}"
    rid = await desk(client, dept)
    await set_channels(client, rid, ("wecom", {"url": wecom_url(robots, tag)}))
    area = "YA/YA03/YA0301/YA0301-02"
    first = [dispatched_in(area, dept, case_no=f"A{i}-{tag}") for i in range(3)]
    for e in first:
        await publish_event(bootstrap, e)
    for e in first:
        await settled_row(client, e, "wecom")
    more = [dispatched_in(area, dept, case_no=f"B{i}-{tag}") for i in range(5)]
    for e in more:
        await publish_event(bootstrap, e)
    for e in more:  # the robot's minute is full: held, no attempt used
        row = await settled_row(client, e, "wecom", "pending", last_code="paced")
        assert row["attempts"] == 0
    assert len(hits_for(robots, "wecom", tag)) == 3
    clock.advance(61)

    async def digested():
        rows = [
            (await deliveries(client, event_id=str(e.event_id), channel="wecom"))[0] for e in more
        ]
        return rows if all(r["status"] in ("sent", "digested") for r in rows) else None

    rows = await eventually(digested, timeout=45, message="the held messages went out")
    [carrier] = [r for r in rows if r["status"] == "sent"]
    assert carrier["last_code"] == "digest of 5: errcode 0"
    assert sorted(r["digest_id"] for r in rows if r["status"] == "digested") == [carrier["id"]] * 4
    hits = hits_for(robots, "wecom", tag)
    assert len(hits) == 4  # three single messages, then one digest
    digest = hits[-1].json["markdown"]["content"]
    assert digest.startswith("**【汇总】5条案件消息**")
    for i in range(5):
        assert f"B{i}-{tag}" in digest
    metrics = (await client.get("/metrics")).text
    assert 'whistle_delivery_digests_total{channel="wecom",service="notify"}' in metrics


async def test_a_hanging_channel_does_not_hold_up_another_recipient(notify, robots):
    client, _, bootstrap = notify
    tag, slow, fast = uid(), f"sf-{uid()}", f"rs-{uid()}"
    await set_channels(
        client, await desk(client, slow), ("webhook", {"url": f"{robots.base}/hang/{tag}"})
    )
    await set_channels(client, await desk(client, fast), ("wecom", {"url": wecom_url(robots, tag)}))
    hanging = dispatched_in("YA/YA01/YA0102/YA0102-01", slow)
    await publish_event(bootstrap, hanging)

    async def hang_open():
        return [h for h in robots.of("hang") if slow in h.body.decode()]

    await eventually(hang_open, timeout=45, message="the hanging endpoint has a request open")
    quick = dispatched_in("YA/YA01/YA0102/YA0102-01", fast)
    await publish_event(bootstrap, quick)
    await settled_row(client, quick, "wecom")
    [still] = await deliveries(client, event_id=str(hanging.event_id), channel="webhook")
    assert (still["status"], still["attempts"]) == ("pending", 0)  # still in its first attempt
    timed_out = await settled_row(client, hanging, "webhook", "pending", attempts=1)
    assert timed_out["last_code"] == "timeout"


async def test_a_worker_never_takes_its_own_claims_for_dead_ones(pg_server):
    """A worker claims while its sends are in flight: with its lock connection down for a
    moment, its own tracked claims must not look dead to it (it would send them twice); to
    any other worker they do."""
    from services.notify.repository import deliveries as repo
    from shared import db
    from tests.conftest import migrated_database

    dsn = await migrated_database(pg_server, "notify")
    conn = await db.connect_once(dsn)  # with the service's JSON codecs
    try:
        await conn.execute(
            "INSERT INTO recipients (id, name, kind, department_id, webhook_url)"
            " VALUES ('duty-x', '值班', 'department', 'x', 'http://127.0.0.1:9/hook')"
        )
        await conn.execute(
            "INSERT INTO deliveries (event_id, case_id, type, recipient_id, channel, status,"
            " payload, claimed_by, next_attempt_at)"
            " VALUES (gen_random_uuid(), gen_random_uuid(), 'case.dispatched', 'duty-x',"
            " 'webhook', 'pending', '{}', '+notify-w', now() + interval '10 minutes')"
        )
        now = await conn.fetchval("SELECT now()")
        # notify-w holds no lock right now (its connection is down): its claim is a dead one
        # to everybody but itself
        assert await repo.claim_due(conn, 10, 120, now, DEV_BOX, "notify-w") == []
        [taken] = await repo.claim_due(conn, 10, 120, now, DEV_BOX, "notify-other")
        # this test holds no lock for "notify-other" either: a lease-only claim
        claimed_by = "SELECT claimed_by FROM deliveries WHERE id = $1"
        assert await conn.fetchval(claimed_by, taken.id) == "notify-other"
    finally:
        await conn.close()
