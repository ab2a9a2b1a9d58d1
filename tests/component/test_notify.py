"""Notify against real PostgreSQL, the real broker and a real local HTTP endpoint that
verifies the Standard Webhooks signature of what it receives; and who may use which route.

One app (and one database) serves the whole module, to keep Kafka group joins few; each
test uses its own department ids, recipients and webhook paths so they cannot see each
other's deliveries.

Authorisation: recipients and the delivery log are admin-only; a department desk's inbox is
read by that department's staff, a supervisor desk's inbox by whoever oversees its area.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from standardwebhooks import Webhook

from services.notify.config import Settings
from services.notify.demo import seed_demo
from services.notify.main import create_app
from shared import demo
from shared.auth import AREA_ROLES, Role, Rule, TokenKeys
from shared.contract import CaseDispatched, CaseOverdue, Priority, new_event
from tests.conftest import free_port, migrated_database
from tests.helpers import as_user, bearer, eventually, fetch, publish_event, running_app, token

# --- a real webhook endpoint ---------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # the sender gave up on a hanging request: a broken pipe is expected


class Endpoint:
    """An HTTP server on 127.0.0.1: ``/ok/...`` answers 204; ``/fail/N/...`` answers 500 to
    the first N requests, then 200; ``/reject/...`` answers 400 until ``accept`` is called;
    ``/hang/...`` answers only after the sender gave up."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.accepted: set[str] = set()
        self.opened: list[str] = []  # paths, as requests arrive (before they are answered)
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = endpoint._decide(self.path)
                with endpoint._lock:
                    endpoint.opened.append(self.path)
                if status == 0:
                    time.sleep(8)
                    status = 204
                with endpoint._lock:
                    endpoint.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                            status,
                        )
                    )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _decide(self, path: str) -> int:
        kind = path.strip("/").split("/")[0]
        if kind == "fail":
            failures = int(path.strip("/").split("/")[1])
            with self._lock:
                seen = sum(1 for r in self.received if r.path == path)
            return 500 if seen < failures else 200
        if kind == "reject":
            return 200 if path in self.accepted else 400
        if kind == "hang":
            return 0
        return 204

    async def started(self, path: str) -> int:
        with self._lock:
            return self.opened.count(path)

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint():
    ep = Endpoint()
    yield ep
    ep.close()


@pytest.fixture(scope="module")
async def notify(pg_server, kafka_server):
    dsn = await migrated_database(pg_server, "notify")
    settings = Settings(
        environment="test",
        database_url=dsn,
        kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False,
        log_json=False,
        outbox_poll_interval_seconds=0.5,
        delivery_poll_interval_seconds=0.2,
        delivery_timeout_seconds=2,
        delivery_inline_attempts=3,
        delivery_max_attempts=3,
        delivery_backoff_base_seconds=1.0,
        delivery_backoff_max_seconds=2.0,
        delivery_lease_seconds=15,
        public_base_url=CONSOLE + "/",
        # no intake or dispatch here (not whatever runs on their default ports): messages
        # show codes; test_notify_names shows them named
        intake_url=NOWHERE,
        dispatch_url=NOWHERE,
    )
    async with running_app(create_app(settings)) as client:
        yield client, dsn, kafka_server.bootstrap


async def snapshot(dsn: str) -> dict[str, str]:
    """What the API may change (the worker moves attempts and statuses on its own)."""
    rows = await fetch(
        dsn,
        """
        SELECT (SELECT md5(string_agg(r::text, '|' ORDER BY id)) FROM recipients r) AS recipients,
               (SELECT md5(string_agg(id || ':' || coalesce(read_at::text, ''), '|' ORDER BY id))
                  FROM inbox_messages) AS inbox,
               (SELECT md5(string_agg(id || ':' || replays, '|' ORDER BY id))
                  FROM deliveries) AS deliveries,
               (SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM subscriptions s)
                  AS subscriptions,
               (SELECT md5(string_agg(t::text, '|' ORDER BY kind, locale))
                  FROM message_templates t) AS templates,
               (SELECT revision FROM message_template_revision)::text AS template_revision""",
    )
    return dict(rows[0])


async def counts(dsn: str) -> dict[str, int]:
    rows = await fetch(
        dsn,
        """
        SELECT (SELECT count(*) FROM recipients) AS recipients,
               (SELECT count(*) FROM inbox_messages) AS inbox,
               (SELECT count(*) FROM deliveries) AS deliveries""",
    )
    return dict(rows[0])


def uid() -> str:
    return uuid.uuid4().hex[:8]


# --- who is asking ----------------------------------------------------------------------------

ADMIN = as_user("admin")
CONSOLE = "https://whistle.example.gov.cn"  # PUBLIC_BASE_URL: links in messages start with it
NOWHERE = "http://127.0.0.1:9"  # refuses connections: no reference names


def staff(department_id: str) -> dict[str, str]:
    """A member of staff of the department ``department_id``."""
    return bearer(Role.DEPARTMENT, department_id=department_id)


def overseer(area: str) -> dict[str, str]:
    """A supervisor (督办) of the area subtree ``area``."""
    return bearer(Role.SUPERVISOR, area)


async def add_recipient(client, **fields) -> dict:
    resp = await client.post("/recipients", json=fields, headers=ADMIN)
    assert resp.status_code == 201, resp.text
    return resp.json()


def dispatched(
    department_id: str, *, case_id: uuid.UUID | None = None, case_no: str = "YA20261122-0001"
):
    return new_event(
        CaseDispatched(
            case_no=case_no,
            area_path="YA/YA01/YA0101/YA0101-03",
            category="E0101",
            priority=Priority.NORMAL,
            assignment_id=uuid.uuid4(),
            department_id=department_id,
            department_name="榆安区城市管理局",
            role="lead",
            rule_id=6,
            reason="E0101 × YA → cg",
            description="楼下空地乱堆建筑垃圾",
        ),
        case_id=case_id or uuid.uuid4(),
        producer="dispatch",
    )


async def inbox_of(client, recipient_id: str, who: dict[str, str], **params) -> list[dict]:
    resp = await client.get(f"/recipients/{recipient_id}/inbox", params=params, headers=who)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def deliveries(client, **params) -> list[dict]:
    resp = await client.get("/deliveries", params=params, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- tests -------------------------------------------------------------------------------------


async def test_dispatch_reaches_inbox_and_one_signed_webhook_even_when_duplicated(notify, endpoint):
    client, _, bootstrap = notify
    dept, other = f"cg-{uid()}", f"zj-{uid()}"
    secret = new_secret()
    signed_path, unsigned_path = f"/ok/{uid()}", f"/ok/{uid()}"
    desk = await add_recipient(
        client,
        id=f"duty-{dept}",
        name="城管值班室",
        kind="department",
        department_id=dept,
        webhook_url=endpoint.url + signed_path,
        webhook_secret=secret,
    )
    assert desk["webhook_signed"] is True and "webhook_secret" not in desk
    await add_recipient(
        client,
        id=f"duty2-{dept}",
        name="城管夜班",
        kind="department",
        department_id=dept,
        webhook_url=endpoint.url + unsigned_path,
    )
    await add_recipient(
        client, id=f"duty-{other}", name="住建值班室", kind="department", department_id=other
    )

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
    messages = await inbox_of(client, desk["id"], staff(dept))
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
    read = await client.post(f"/recipients/{desk['id']}/inbox/{m['id']}/read", headers=staff(dept))
    assert read.status_code == 200 and read.json()["read_at"]
    assert await inbox_of(client, desk["id"], staff(dept), unread="true") == []
    assert len(await inbox_of(client, desk["id"], staff(dept), unread="false")) == 1
    webhook_row = next(r for r in rows if r["channel"] == "webhook")
    replay = await client.post(f"/deliveries/{webhook_row['id']}/replay", headers=ADMIN)
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "not_dead"
    assert len(endpoint.at(signed_path)) == 1
    metrics = (await client.get("/metrics")).text
    assert 'whistle_deliveries_total{channel="webhook",outcome="sent",service="notify"}' in metrics


async def test_failing_endpoint_is_retried_with_backoff_then_sent(notify, endpoint):
    client, _, bootstrap = notify
    dept, secret, path = f"gd-{uid()}", new_secret(), f"/fail/4/{uid()}"
    await add_recipient(
        client,
        id=f"duty-{dept}",
        name="供电值班室",
        kind="department",
        department_id=dept,
        webhook_url=endpoint.url + path,
        webhook_secret=secret,
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
        await add_recipient(
            client, id=rid, name="值班室", kind="department", department_id=dept, webhook_url=url
        )
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
    await add_recipient(
        client,
        id=f"duty-{dept}",
        name="司法值班室",
        kind="department",
        department_id=dept,
        webhook_url=endpoint.url + path,
    )
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
    await add_recipient(
        client, id=f"duty-{dept}", name="住建值班室", kind="department", department_id=dept
    )
    await add_recipient(
        client, id=f"sup-{dept}", name="东湖街道督办", kind="supervisor", area_path=street
    )
    await add_recipient(
        client,
        id=f"sup-other-{dept}",
        name="北城街道督办",
        kind="supervisor",
        area_path=other_street,
    )
    event = new_event(
        CaseOverdue(
            case_no="YA20261122-0007",
            area_path="YA/YA03/YA0302/YA0302-05",
            category="E0103",
            priority=Priority.URGENT,
            assignment_id=uuid.uuid4(),
            department_id=dept,
            department_name="榆安区住房和城乡建设局",
            clock="sign_for",
            due_at=datetime.now(UTC) - timedelta(minutes=5),
        ),
        case_id=uuid.uuid4(),
        producer="tracking",
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


async def test_recipients_are_listed_and_updated(notify):
    client, _, _ = notify
    rid = f"duty-{uid()}"
    await add_recipient(client, id=rid, name="交通值班室", kind="department", department_id="jt")
    updated = await client.put(
        f"/recipients/{rid}",
        json={
            "name": "交通运输局值班室",
            "kind": "department",
            "department_id": "jt",
            "webhook_url": "https://hooks.example.cn/jt",
            "webhook_secret": new_secret(),
        },
        headers=ADMIN,
    )
    assert updated.status_code == 200, updated.text
    listed = {
        r["id"]: r for r in (await client.get("/recipients?kind=department", headers=ADMIN)).json()
    }
    assert listed[rid]["name"] == "交通运输局值班室" and listed[rid]["webhook_signed"]
    assert listed[rid]["webhook_url"] == "https://hooks.example.cn/jt"
    supervisors = (
        await client.get("/recipients", params={"kind": "supervisor"}, headers=ADMIN)
    ).json()
    assert rid not in {r["id"] for r in supervisors}


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "code"),
    [
        (
            "post",
            "/recipients",
            {
                "id": "x-bad-url",
                "name": "x",
                "kind": "department",
                "department_id": "cg",
                "webhook_url": "not a url",
            },
            422,
            "invalid_webhook_url",
        ),
        (
            "post",
            "/recipients",
            {"id": "x-no-dept", "name": "x", "kind": "department"},
            422,
            "department_required",
        ),
        (
            "post",
            "/recipients",
            {"id": "x-no-area", "name": "x", "kind": "supervisor"},
            422,
            "area_required",
        ),
        (
            "post",
            "/recipients",
            {"id": "x-kind", "name": "x", "kind": "mayor"},
            422,
            "validation_error",
        ),
        (
            "post",
            "/recipients",
            {"id": "x-extra", "name": "x", "kind": "supervisor", "area_path": "YA", "surprise": 1},
            422,
            "validation_error",
        ),
        (
            "post",
            "/recipients",
            {
                "id": "x-secret",
                "name": "x",
                "kind": "supervisor",
                "area_path": "YA",
                "webhook_secret": "hunter2",
            },
            422,
            "invalid_webhook_secret",
        ),
        (
            "post",
            "/recipients",
            {"id": "bad id!", "name": "x", "kind": "supervisor", "area_path": "YA"},
            422,
            "validation_error",
        ),
        (
            "put",
            "/recipients/nobody",
            {"name": "x", "kind": "supervisor", "area_path": "YA"},
            404,
            "recipient_not_found",
        ),
        # an unknown inbox: 404 for a role that may read inboxes (see the refusals below)
        ("get", "/recipients/nobody/inbox", None, 404, "recipient_not_found"),
        ("post", "/recipients/nobody/inbox/1/read", None, 404, "recipient_not_found"),
        ("post", "/deliveries/999999999/replay", None, 404, "delivery_not_found"),
        ("get", "/deliveries?status=lost", None, 422, "validation_error"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(notify, method, url, body, status, code):
    client, dsn, _ = notify
    who = as_user("command") if "/inbox" in url else ADMIN
    before = await snapshot(dsn)
    resp = await client.request(method.upper(), url, json=body, headers=who)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]
    assert await snapshot(dsn) == before


async def test_conflicts_and_english_errors_change_nothing(notify):
    client, dsn, _ = notify
    rid = f"duty-{uid()}"
    await add_recipient(
        client,
        id=rid,
        name="供水值班室",
        kind="department",
        department_id="gs",
        webhook_url="http://127.0.0.1:9/hook",
    )
    before = await snapshot(dsn)
    again = await client.post(
        "/recipients",
        json={"id": rid, "name": "y", "kind": "supervisor", "area_path": "YA"},
        headers=ADMIN,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "recipient_exists"
    assert again.json()["error"]["message"] == f"接收方“{rid}”已存在"
    bad_put = await client.put(
        f"/recipients/{rid}",
        json={"name": "y", "kind": "department", "department_id": "gs", "webhook_url": "ftp://x/y"},
        headers={"Accept-Language": "en", **ADMIN},
    )
    assert bad_put.status_code == 422
    assert bad_put.json()["error"]["message"] == (
        "webhook_url 'ftp://x/y' is not a valid http(s) URL"
    )
    missing_msg = await client.post(f"/recipients/{rid}/inbox/999999999/read", headers=staff("gs"))
    assert missing_msg.status_code == 404
    assert missing_msg.json()["error"]["code"] == "message_not_found"
    assert await snapshot(dsn) == before


async def test_demo_recipients_seed_idempotently(pg_server):
    dsn = await migrated_database(pg_server, "notify")
    settings = Settings(environment="test", database_url=dsn)
    await seed_demo(settings)
    await seed_demo(settings)
    rows = await fetch(dsn, "SELECT id, department_id, area_path, webhook_url FROM recipients")
    assert len(rows) == len(demo.RECIPIENTS)
    by_id = {r["id"]: r for r in rows}
    assert by_id["duty-cg"]["department_id"] == "cg" and by_id["sup-ya01"]["area_path"] == "YA/YA01"
    assert all(r["webhook_url"] is None for r in rows)


# --- authorisation ------------------------------------------------------------------------------

INBOX_READERS = frozenset({Role.DEPARTMENT, Role.SUPERVISOR, *AREA_ROLES})
ADMIN_ONLY = frozenset({Role.ADMIN})

# Every protected route: its rule, and a request that would change or reveal something
# (placeholders are filled from the ``desks`` fixture).
ROUTES = {
    ("POST", "/recipients"): (
        ADMIN_ONLY,
        "/recipients",
        {"id": "intruder", "name": "x", "kind": "supervisor", "area_path": "YA"},
    ),
    ("PUT", "/recipients/{recipient_id}"): (
        ADMIN_ONLY,
        "/recipients/{cg}",
        {"name": "x", "kind": "department", "department_id": "xf"},
    ),
    ("GET", "/recipients"): (ADMIN_ONLY, "/recipients", None),
    ("PUT", "/recipients/{recipient_id}/preferences"): (
        ADMIN_ONLY,
        "/recipients/{cg}/preferences",
        {"channels": [{"kind": "webhook", "settings": {"url": "http://127.0.0.1:9/x"}}]},
    ),
    ("GET", "/recipients/{recipient_id}/preferences"): (
        ADMIN_ONLY,
        "/recipients/{cg}/preferences",
        None,
    ),
    ("GET", "/recipients/{recipient_id}/inbox"): (INBOX_READERS, "/recipients/{cg}/inbox", None),
    ("POST", "/recipients/{recipient_id}/inbox/{message_id}/read"): (
        INBOX_READERS,
        "/recipients/{cg}/inbox/{cg_msg}/read",
        None,
    ),
    ("GET", "/recipients/{recipient_id}/stream"): (
        INBOX_READERS,
        "/recipients/{cg}/stream?follow=false",
        None,
    ),
    ("POST", "/subscriptions"): (
        ADMIN_ONLY,
        "/subscriptions",
        {"recipient_id": "duty-cg", "event_types": ["case.overdue"]},
    ),
    ("GET", "/subscriptions"): (ADMIN_ONLY, "/subscriptions", None),
    ("DELETE", "/subscriptions/{subscription_id}"): (ADMIN_ONLY, "/subscriptions/{sub}", None),
    ("GET", "/templates"): (ADMIN_ONLY, "/templates", None),
    ("PUT", "/templates/{kind}/{locale}"): (
        ADMIN_ONLY,
        "/templates/case.dispatched/zh-CN",
        {"title": "【派单】${case_no}", "body": "请处理：${link}"},
    ),
    ("DELETE", "/templates/{kind}/{locale}"): (ADMIN_ONLY, "/templates/case.overdue/en", None),
    ("GET", "/deliveries"): (ADMIN_ONLY, "/deliveries", None),
    ("GET", "/deliveries/{delivery_id}"): (ADMIN_ONLY, "/deliveries/{dead}", None),
    ("POST", "/deliveries/{delivery_id}/replay"): (ADMIN_ONLY, "/deliveries/{dead}/replay", None),
}
OPEN_PATHS = {"/livez", "/healthz", "/readyz", "/metrics", "/asyncapi", "/asyncapi.json"}


def rules_of(dependant) -> list[Rule]:
    found = []
    for sub in dependant.dependencies:
        if isinstance(sub.call, Rule):
            found.append(sub.call)
        found.extend(rules_of(sub))
    return found


def test_every_route_states_exactly_one_rule():
    app = create_app(
        Settings(environment="test", database_url="postgresql://x@127.0.0.1:1/x", log_json=False)
    )
    found: dict[tuple[str, str], Rule] = {}
    # FastAPI includes routers lazily: app.routes alone does not list the included routes.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue  # the documentation pages (dev mode only)
        rules = rules_of(route.dependant)
        assert len(rules) == 1, f"{route.path} has {len(rules)} rules"
        for method in route.methods:
            found[(method, route.path)] = rules[0]
    public = {key for key, rule in found.items() if rule.public}
    assert {path for _, path in public} <= OPEN_PATHS
    protected = {key: rule.roles for key, rule in found.items() if not rule.public}
    assert protected == {key: roles for key, (roles, _, _) in ROUTES.items()}


@pytest.fixture(scope="module")
async def desks(notify):
    """A department desk (cg) and a supervisor desk (YA/YA01) with one message each, and a
    dead webhook delivery: what the refused requests below would change. Written straight
    into the database, as the consumer and the worker would have."""
    _, dsn, _ = notify
    u = uid()
    ids = {"cg": f"duty-cg-{u}", "sup": f"sup-ya01-{u}"}
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO recipients (id, name, kind, department_id, area_path) VALUES"
            " ($1, '城管值班室', 'department', 'cg', NULL),"
            " ($2, '迎泽街道督办', 'supervisor', NULL, 'YA/YA01')",
            ids["cg"],
            ids["sup"],
        )
        for key in ("cg", "sup"):
            ids[f"{key}_msg"] = await conn.fetchval(
                "INSERT INTO inbox_messages (recipient_id, event_id, case_id, type, title, body,"
                " title_en, body_en, link) VALUES ($1, $2, $3, 'case.dispatched', '标题', '正文',"
                " 'title', 'body', '/cases/x') RETURNING id",
                ids[key],
                uuid.uuid4(),
                uuid.uuid4(),
            )
        ids["dead"] = await conn.fetchval(
            "INSERT INTO deliveries (event_id, case_id, type, recipient_id, channel, status,"
            " attempts, payload) VALUES ($1, $2, 'case.dispatched', $3, 'webhook', 'dead', 3,"
            " '{}'::jsonb) RETURNING id",
            uuid.uuid4(),
            uuid.uuid4(),
            ids["cg"],
        )
        ids["sub"] = await conn.fetchval(
            "INSERT INTO subscriptions (recipient_id, event_types) VALUES ($1, '{case.overdue}')"
            " RETURNING id",
            ids["sup"],
        )
    finally:
        await conn.close()
    return ids


async def read_at(dsn: str, message_id: int):
    [row] = await fetch(dsn, "SELECT read_at FROM inbox_messages WHERE id = $1", message_id)
    return row["read_at"]


_OTHER_SECRET = "another-secret-that-is-long-enough-but-not-ours"
OTHER_KEYS = TokenKeys("HS256", _OTHER_SECRET, _OTHER_SECRET, "whistle", "whistle")


def bad_credentials() -> dict[str, tuple[dict[str, str], str]]:
    return {
        "none": ({}, "unauthenticated"),
        "not bearer": ({"Authorization": "Basic YWRtaW46YWRtaW4="}, "unauthenticated"),
        "garbage": ({"Authorization": "Bearer not.a.token"}, "invalid_token"),
        "expired": ({"Authorization": f"Bearer {token(Role.ADMIN, ttl=-60)}"}, "token_expired"),
        "other key": (
            {"Authorization": f"Bearer {token(Role.ADMIN, keys=OTHER_KEYS)}"},
            "invalid_token",
        ),
    }


@pytest.mark.parametrize("credentials", ["none", "not bearer", "garbage", "expired", "other key"])
@pytest.mark.parametrize("route", list(ROUTES))
async def test_without_a_valid_token_every_route_is_401_and_changes_nothing(
    notify, desks, route, credentials
):
    client, dsn, _ = notify
    _, url, body = ROUTES[route]
    headers, code = bad_credentials()[credentials]
    before = await snapshot(dsn), await counts(dsn)
    resp = await client.request(route[0], url.format(**desks), json=body, headers=headers)
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]
    assert (await snapshot(dsn), await counts(dsn)) == before


async def test_health_and_metrics_stay_open(notify):
    client, _, _ = notify
    for path in ("/livez", "/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status_code == 200, path


@pytest.mark.parametrize(
    "user", ["wangfang", "taoyuan", "yingze", "command", "cg-duty", "supervisor"]
)
async def test_only_admin_manages_recipients_and_the_delivery_log(notify, desks, user):
    client, dsn, _ = notify
    before = await snapshot(dsn), await counts(dsn)
    for (method, _), (roles, url, body) in ROUTES.items():
        if roles != ADMIN_ONLY:
            continue
        resp = await client.request(method, url.format(**desks), json=body, headers=as_user(user))
        assert resp.status_code == 403, (method, url, resp.text)
        assert resp.json()["error"]["code"] == "role_not_allowed"
    assert (await snapshot(dsn), await counts(dsn)) == before
    [dead] = await fetch(dsn, "SELECT status, replays FROM deliveries WHERE id = $1", desks["dead"])
    assert (dead["status"], dead["replays"]) == ("dead", 0)


async def test_non_admin_creating_a_recipient_is_refused_in_both_languages(notify):
    client, dsn, _ = notify
    before = await counts(dsn)
    body = {"id": f"x-{uid()}", "name": "x", "kind": "department", "department_id": "cg"}
    zh = await client.post("/recipients", json=body, headers=as_user("cg-duty"))
    en = await client.post(
        "/recipients", json=body, headers={**as_user("cg-duty"), "Accept-Language": "en"}
    )
    assert zh.status_code == en.status_code == 403
    assert "职能部门无权进行此操作" in zh.json()["error"]["message"]
    assert "role 'department' may not do this" in en.json()["error"]["message"]
    assert await counts(dsn) == before
    created = await client.post("/recipients", json=body, headers=ADMIN)
    assert created.status_code == 201
    assert (await counts(dsn))["recipients"] == before["recipients"] + 1


@pytest.mark.parametrize(
    ("user", "status", "code"),
    [
        ("cg-duty", 200, None),
        ("xf-duty", 403, "not_your_assignment"),  # another department
        ("supervisor", 403, "not_your_assignment"),  # overseers do not read a department's desk
        ("command", 403, "not_your_assignment"),
        ("admin", 403, "role_not_allowed"),
        ("wangfang", 403, "role_not_allowed"),
    ],
)
async def test_a_department_desk_is_read_only_by_that_department(notify, desks, user, status, code):
    client, _, _ = notify
    resp = await client.get(f"/recipients/{desks['cg']}/inbox", headers=as_user(user))
    assert resp.status_code == status, resp.text
    if code:
        assert resp.json()["error"]["code"] == code
    else:
        assert [m["id"] for m in resp.json()] == [desks["cg_msg"]]


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        (overseer("YA"), 200, None),  # the district's supervisor
        (overseer("YA/YA01"), 200, None),  # the desk's own area
        (overseer("YA/YA03"), 403, "out_of_scope"),  # another street
        (overseer("YA/YA0"), 403, "out_of_scope"),  # a code that is only a string prefix
        (overseer("YA/YA01/YA0101"), 403, "out_of_scope"),  # below the desk's area
        (
            as_user("yingze"),
            403,
            "supervisor_inbox",
        ),  # the street office (YA/YA01): not its supervisor's desk
        (as_user("donghu"), 403, "supervisor_inbox"),  # another street (YA/YA03)
        (as_user("taoyuan"), 403, "supervisor_inbox"),  # a community inside YA/YA01
        (as_user("command"), 200, None),  # district command (YA)
        (as_user("cg-duty"), 403, "out_of_scope"),  # department staff oversee no area
        (as_user("admin"), 403, "role_not_allowed"),
        (as_user("wangfang"), 403, "role_not_allowed"),  # a grid worker inside YA/YA01
    ],
    ids=[
        "sup-YA",
        "sup-YA01",
        "sup-YA03",
        "sup-YA0-prefix",
        "sup-YA0101",
        "street-YA01",
        "street-YA03",
        "community-YA0101",
        "district",
        "department",
        "admin",
        "grid-worker",
    ],
)
async def test_a_supervisor_desk_is_read_by_those_overseeing_its_area(
    notify, desks, who, status, code
):
    client, _, _ = notify
    resp = await client.get(f"/recipients/{desks['sup']}/inbox", headers=who)
    assert resp.status_code == status, resp.text
    if code:
        assert resp.json()["error"]["code"] == code
    else:
        assert [m["id"] for m in resp.json()] == [desks["sup_msg"]]


async def test_mark_read_by_the_wrong_reader_changes_nothing(notify, desks):
    client, dsn, _ = notify
    cg_read = f"/recipients/{desks['cg']}/inbox/{desks['cg_msg']}/read"
    sup_read = f"/recipients/{desks['sup']}/inbox/{desks['sup_msg']}/read"
    before = await snapshot(dsn)
    for url, who, code in [
        (cg_read, as_user("xf-duty"), "not_your_assignment"),
        (cg_read, as_user("supervisor"), "not_your_assignment"),
        (cg_read, as_user("admin"), "role_not_allowed"),
        (cg_read, as_user("wangfang"), "role_not_allowed"),
        # no probing for message ids in someone else's inbox: 403, not 404
        (
            f"/recipients/{desks['cg']}/inbox/999999999/read",
            as_user("xf-duty"),
            "not_your_assignment",
        ),
        (
            sup_read,
            as_user("donghu"),
            "supervisor_inbox",
        ),  # a street office: never a supervisor desk
        (sup_read, as_user("cg-duty"), "out_of_scope"),
        (sup_read, as_user("admin"), "role_not_allowed"),
    ]:
        resp = await client.post(url, headers=who)
        assert resp.status_code == 403, (url, resp.text)
        assert resp.json()["error"]["code"] == code
    assert await read_at(dsn, desks["cg_msg"]) is None
    assert await read_at(dsn, desks["sup_msg"]) is None
    assert await snapshot(dsn) == before

    english = await client.post(cg_read, headers={**as_user("xf-duty"), "Accept-Language": "en"})
    assert english.json()["error"]["message"] == (
        "only the assigned department may act on this assignment (yours: xf, assigned: cg)"
    )

    # The right readers may.
    mine = await client.post(cg_read, headers=as_user("cg-duty"))
    assert mine.status_code == 200 and mine.json()["read_at"]
    assert await read_at(dsn, desks["cg_msg"]) is not None
    street = await client.post(sup_read, headers=as_user("sup-yingze"))
    assert street.status_code == 200 and street.json()["read_at"]
