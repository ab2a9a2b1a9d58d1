"""Notify's recipients, administered on real PostgreSQL and the real broker: listed and
updated, bad input and conflicts refused changing nothing, the demo seeded; and who may use
which route. Recipients, their preferences and subscriptions, templates and the delivery log
are admin-only; a department desk's inbox is read by that department's staff, a supervisor
desk's inbox by whoever oversees its area.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from services.notify.config import Settings
from services.notify.demo import seed_demo
from services.notify.main import create_app
from shared import demo
from shared.auth import AREA_ROLES, Role, Rule, TokenKeys
from tests.component import notify_fixtures
from tests.component.notify_fixtures import (
    ADMIN,
    desk,
    new_secret,
    overseer,
    snapshot,
    staff,
    uid,
)
from tests.conftest import migrated_database
from tests.helpers import as_user, fetch, token

notify = notify_fixtures.notify  # notify on real PostgreSQL and the broker, one for the module


async def counts(dsn: str) -> dict[str, int]:
    rows = await fetch(
        dsn,
        """
        SELECT (SELECT count(*) FROM recipients) AS recipients,
               (SELECT count(*) FROM inbox_messages) AS inbox,
               (SELECT count(*) FROM deliveries) AS deliveries""",
    )
    return dict(rows[0])


# --- recipients ---------------------------------------------------------------------------------


async def test_recipients_are_listed_and_updated(notify):
    client, _, _ = notify
    rid = f"duty-{uid()}"
    await desk(client, "jt", rid=rid, name="交通值班室")
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
    await desk(client, "gs", rid=rid, name="供水值班室", webhook_url="http://127.0.0.1:9/hook")
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
