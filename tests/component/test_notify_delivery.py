"""Notify's delivery pipeline on real servers: recipients' channel preferences and quiet
hours, subscriptions, and deliveries through the channels — retries, fallback to the next
channel, dead and replayed deliveries, robot digests — against the vendor servers of
tests/component/test_notify_channels.py (robots, a Standard Webhooks receiver, an SMS
gateway, SMTP servers that check signatures as the vendors document them).

The app runs with a controllable clock (real time plus an offset the test moves on), so
that backoff, quiet hours and a robot's rate window pass without sleeping.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.notify.config import Settings
from services.notify.main import create_app
from tests.component.test_notify_channels import (  # noqa: F401  (fixtures)
    DING_SECRET,
    FEISHU_SECRET,
    HOOK_SECRET,
    SMS,
    smtp_servers,
    vendors,
)
from shared.events import (
    CaseClosed,
    CaseDispatched,
    CaseOverdue,
    CaseResolved,
    CaseWhistled,
    Location,
    Priority,
    new_event,
)
from tests.conftest import migrated_database
from tests.helpers import as_user, bearer, eventually, publish_event, running_app

ADMIN = as_user("admin")


class Clock:
    """Real time plus an offset that only moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def robots(vendors):  # noqa: F811  (the vendor servers of test_notify_channels)
    return vendors


@pytest.fixture(scope="module")
def mail(smtp_servers):  # noqa: F811
    return smtp_servers


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def notify(pg_server, kafka_server, clock):
    dsn = await migrated_database(pg_server, "notify")
    settings = Settings(
        environment="test", database_url=dsn, kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False, log_json=False, outbox_poll_interval_seconds=0.5,
        delivery_poll_interval_seconds=0.1,
    )
    async with running_app(create_app(settings, clock=clock)) as client:
        yield client, dsn, kafka_server.bootstrap


async def fetch(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def recipients_digest(dsn: str) -> str:
    [row] = await fetch(dsn, "SELECT md5(string_agg(r::text, '|' ORDER BY id)) AS d"
                             " FROM recipients r")
    return row["d"]


def uid() -> str:
    return uuid.uuid4().hex[:8]


async def add_recipient(client, **fields) -> dict:
    resp = await client.post("/recipients", json=fields, headers=ADMIN)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def desk(client, dept: str | None = None, **extra) -> str:
    dept = dept or f"cg-{uid()}"
    rid = f"duty-{dept}"
    await add_recipient(client, id=rid, name="城管值班室", kind="department", department_id=dept,
                        **extra)
    return rid


# --- 1. preferences ---------------------------------------------------------------------------


async def test_preferences_are_checked_stored_in_order_and_shown_without_secrets(notify):
    client, dsn, _ = notify
    rid = await desk(client)
    wecom = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-key-{uid()}-0000"
    prefs = {
        "channels": [
            {"kind": "wecom", "settings": {"url": wecom}},
            {"kind": "dingtalk", "settings": {
                "url": "https://oapi.dingtalk.com/robot/send?access_token=tok-1234567890",
                "secret": DING_SECRET}},
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
    back = {**shown, "channels": [{"kind": c["kind"], "settings": c["settings"]}
                                  for c in reversed(shown["channels"])]}
    back.pop("recipient_id")
    resp = await client.put(f"/recipients/{rid}/preferences", json=back, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    [row] = await fetch(dsn, "SELECT channels FROM recipients WHERE id = $1", rid)
    stored = json.loads(row["channels"])
    assert [c["kind"] for c in stored] == ["sms", "dingtalk", "wecom"]
    assert stored[1]["settings"]["secret"] == DING_SECRET
    assert stored[2]["settings"]["url"] == wecom
    assert stored[0]["settings"]["app_secret"] == SMS["app_secret"]


@pytest.mark.parametrize(("body", "status", "code", "names"), [
    ({"channels": [{"kind": "wecom", "settings": {"url": "not a url"}}]},
     422, "invalid_channel_settings", "channels[0].settings.url"),
    ({"channels": [{"kind": "webhook", "settings": {"url": "https://h.example.cn/x"}},
                   {"kind": "dingtalk", "settings": {
                       "url": "https://oapi.dingtalk.com/robot/send?access_token=t"}}]},
     422, "invalid_channel_settings", "channels[1].settings.secret"),
    ({"channels": [{"kind": "email", "settings": {"host": "smtp.example.cn",
                                                   "from": "a@example.cn", "to": ["bad"]}}]},
     422, "invalid_channel_settings", "channels[0].settings.to"),
    ({"channels": [{"kind": "feishu", "settings": {"url": "https://x.example.cn/hook",
                                                    "secert": "typo"}}]},
     422, "invalid_channel_settings", "channels[0].settings.secert"),
    ({"channels": [{"kind": "inbox"}]}, 422, "inbox_always_on", "channels"),
    ({"channels": [{"kind": "sms", "settings": {**SMS, "url": "https://s.example.cn"}},
                   {"kind": "sms", "settings": {**SMS, "url": "https://s.example.cn"}}]},
     422, "duplicate_channel", "channels"),
    ({"channels": [{"kind": "carrier_pigeon"}]}, 422, "validation_error", "kind"),
    ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, 422, "validation_error", "start"),
    ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, 422, "invalid_quiet_hours",
     "quiet_hours"),
    ({"locale": "fr"}, 422, "validation_error", "locale"),
    ({"surprise": 1}, 422, "validation_error", "surprise"),
])
async def test_bad_preferences_are_refused_naming_the_field_and_change_nothing(
    notify, body, status, code, names
):
    client, dsn, _ = notify
    rid = await desk(client)
    good = {"channels": [{"kind": "webhook", "settings": {"url": "https://h.example.cn/x",
                                                          "secret": HOOK_SECRET}}]}
    assert (await client.put(f"/recipients/{rid}/preferences", json=good,
                             headers=ADMIN)).status_code == 200
    before = await recipients_digest(dsn)
    for lang in ("zh", "en"):
        resp = await client.put(f"/recipients/{rid}/preferences", json=body,
                                headers={**ADMIN, "Accept-Language": lang})
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert error["code"] == code and names in error["message"], error
    assert await recipients_digest(dsn) == before


async def test_preferences_of_an_unknown_recipient_are_404(notify):
    client, _, _ = notify
    for method in ("GET", "PUT"):
        resp = await client.request(method, "/recipients/nobody-here/preferences",
                                    json={} if method == "PUT" else None, headers=ADMIN)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "recipient_not_found"


# --- 2. subscriptions and who hears what -----------------------------------------------------


def facts(area: str, **kw):
    return {"case_no": kw.pop("case_no", "YA20261122-0101"), "area_path": area,
            "category": kw.pop("category", "E0101"),
            "priority": kw.pop("priority", Priority.NORMAL), **kw}


def dispatched_in(area: str, dept: str, case_id=None, **kw):
    return new_event(CaseDispatched(
        **facts(area, **kw), assignment_id=uuid.uuid4(), department_id=dept,
        department_name="榆安区城市管理局", role="lead", rule_id=None, reason="rule",
        description="楼道堆放杂物"), case_id=case_id or uuid.uuid4(), producer="dispatch")


def overdue_in(area: str, dept: str, case_id=None, **kw):
    return new_event(CaseOverdue(
        **facts(area, **kw), assignment_id=uuid.uuid4(), department_id=dept,
        department_name="榆安区城市管理局", clock="resolve",
        due_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC)),
        case_id=case_id or uuid.uuid4(), producer="tracking")


async def inbox_types(client, rid: str, case_id) -> list[str]:
    conn_rows = await client.get("/deliveries", params={"recipient_id": rid, "channel": "inbox",
                                                         "case_id": str(case_id)},
                                 headers=ADMIN)
    return sorted(r["type"] for r in conn_rows.json())


async def test_defaults_and_subscriptions_decide_who_hears_each_event_once(notify):
    client, _, bootstrap = notify
    u = uid()
    street, community = f"Z{u}/S1", f"Z{u}/S1/C1"
    grid, elsewhere = f"{community}/G1", f"Z{u}/S2/C9/G9"
    dept, other = f"cg-{u}", f"zj-{u}"
    people = {
        "dept": await desk(client, dept), "other": await desk(client, other),
        "sup": (await add_recipient(client, id=f"sup-{u}", name="街道督办", kind="supervisor",
                                    area_path=street))["id"],
        "community": (await add_recipient(client, id=f"com-{u}", name="社区", kind="community",
                                          area_path=community))["id"],
        "grid": (await add_recipient(client, id=f"grid-{u}", name="网格员", kind="grid_worker",
                                     area_path=grid))["id"],
        "far": (await add_recipient(client, id=f"far-{u}", name="别的社区", kind="community",
                                    area_path=f"Z{u}/S2/C9"))["id"],
        "watcher": (await add_recipient(client, id=f"watch-{u}", name="城管局长",
                                        kind="supervisor", area_path=f"Z{u}/S3"))["id"],
    }
    # the other department's head watches urgent C01… dispatches of the whole district
    sub = await client.post("/subscriptions", json={
        "recipient_id": people["watcher"], "event_types": ["case.dispatched"],
        "area_path": f"Z{u}", "categories": ["C01"], "priorities": ["urgent"]}, headers=ADMIN)
    assert sub.status_code == 201, sub.text

    case = uuid.uuid4()
    events = [
        dispatched_in(grid, dept, case),
        dispatched_in(grid, dept, case, category="C0103", priority=Priority.URGENT),
        overdue_in(grid, dept, case),
        new_event(CaseWhistled(**facts(grid), grid_code="G1", description="占道经营",
                               location=Location(address="柳巷12号"), level="street"),
                  case_id=case, producer="intake"),
        new_event(CaseWhistled(**facts(grid), grid_code="G1", description="x",
                               location=Location(), level="community"),
                  case_id=case, producer="intake"),
        new_event(CaseResolved(**facts(grid), assignment_id=uuid.uuid4(), department_id=dept,
                               result="已清理", case_resolved=False),
                  case_id=case, producer="dispatch"),
        new_event(CaseResolved(**facts(grid), assignment_id=uuid.uuid4(), department_id=dept,
                               result="已清理", case_resolved=True),
                  case_id=case, producer="dispatch"),
        new_event(CaseClosed(**facts(grid)), case_id=case, producer="intake"),
        dispatched_in(elsewhere, other),
    ]
    for e in events:
        await publish_event(bootstrap, e)
    await publish_event(bootstrap, events[0])  # a redelivery: nothing new

    async def closed_heard():
        return "case.closed" in await inbox_types(client, people["grid"], case)

    await eventually(closed_heard, timeout=45, message="the reporter's side heard the closure")
    await eventually(lambda: inbox_types(client, people["other"], events[-1].case_id),
                     message="the last event was handled")
    heard = {who: await inbox_types(client, rid, case) for who, rid in people.items()}
    assert heard == {
        "dept": ["case.dispatched", "case.dispatched", "case.overdue"],
        "other": [],
        "sup": ["case.overdue", "case.whistled"],
        "community": ["case.closed", "case.resolved"],
        "grid": ["case.closed", "case.resolved"],
        "far": [],
        "watcher": ["case.dispatched"],  # the urgent C0103 one only
    }
    [escalation] = (await client.get(f"/recipients/{people['sup']}/inbox",
                                     headers=bearer("supervisor", street))).json()[:1]
    assert escalation["title"] == "【升级】案件YA20261122-0101已由街道级吹哨"
    assert "柳巷12号" in escalation["body"] and escalation["body_en"].startswith("[Escalated]")

    # Unsubscribed, the watcher hears no more.
    assert (await client.delete(f"/subscriptions/{sub.json()['id']}",
                                headers=ADMIN)).status_code == 204
    again = dispatched_in(grid, dept, category="C0103", priority=Priority.URGENT)
    await publish_event(bootstrap, again)
    await eventually(lambda: inbox_types(client, people["dept"], again.case_id),
                     message="the department heard the new dispatch")
    assert await inbox_types(client, people["watcher"], again.case_id) == []


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"recipient_id": "nobody-at-all", "event_types": ["case.overdue"]}, 404,
     "recipient_not_found"),
    ({"recipient_id": "{rid}", "event_types": []}, 422, "validation_error"),
    ({"recipient_id": "{rid}", "event_types": ["case.reported"]}, 422, "validation_error"),
    ({"recipient_id": "{rid}", "event_types": ["case.overdue", "case.overdue"]}, 422,
     "invalid_subscription"),
    ({"recipient_id": "{rid}", "event_types": ["case.overdue"], "area_path": "YA//YA01"}, 422,
     "invalid_subscription"),
    ({"recipient_id": "{rid}", "event_types": ["case.overdue"], "categories": ["路灯"]}, 422,
     "invalid_subscription"),
    ({"recipient_id": "{rid}", "event_types": ["case.overdue"], "priorities": ["asap"]}, 422,
     "validation_error"),
    ({"recipient_id": "{rid}", "event_types": ["case.overdue"], "mute": True}, 422,
     "validation_error"),
])
async def test_bad_subscriptions_are_refused_and_change_nothing(notify, body, status, code):
    client, dsn, _ = notify
    rid = await desk(client)
    body = {**body, "recipient_id": body["recipient_id"].replace("{rid}", rid)}
    before = await fetch(dsn, "SELECT count(*) AS n FROM subscriptions")
    resp = await client.post("/subscriptions", json=body, headers=ADMIN)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]
    assert await fetch(dsn, "SELECT count(*) AS n FROM subscriptions") == before
    gone = await client.delete("/subscriptions/999999999", headers=ADMIN)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "subscription_not_found"


async def test_subscriptions_are_listed_by_recipient_and_type(notify):
    client, _, _ = notify
    rid = await desk(client)
    for types in (["case.overdue"], ["case.dispatched", "case.closed"]):
        resp = await client.post("/subscriptions", json={"recipient_id": rid,
                                                         "event_types": types}, headers=ADMIN)
        assert resp.status_code == 201, resp.text
    mine = (await client.get("/subscriptions", params={"recipient_id": rid},
                             headers=ADMIN)).json()
    assert [s["event_types"] for s in mine] == [["case.overdue"],
                                                ["case.dispatched", "case.closed"]]
    closed = (await client.get("/subscriptions", params={"recipient_id": rid,
                                                         "event_type": "case.closed"},
                               headers=ADMIN)).json()
    assert len(closed) == 1 and closed[0]["recipient_id"] == rid
