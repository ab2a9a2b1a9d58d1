"""Channel secrets sealed at rest (Fernet keys from CHANNEL_SECRETS_KEYS), on real PostgreSQL
and the real broker, with deliveries to the Standard Webhooks receiver of
tests/component/notify_vendors.py (it checks the signature, so a delivery that arrives
proves the secret was opened right).

- what the API writes is sealed: no secret in the row, the API still shows it masked;
- rows written before sealing existed are sealed when the service starts, and still work;
- rotation: with a new key first, a start re-seals everything under it; then the old key
  can go; with no key that opens them, a channel fails for good (never unsigned) and the
  next one takes over;
- settings: production refuses to start without keys, or with a key that is not one.
"""

from __future__ import annotations

import json
import secrets
import uuid

import asyncpg
import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import ValidationError

from services.notify.config import DEV_SECRETS_KEY, Settings
from services.notify.main import create_app
from shared.contract import CaseDispatched, Priority, new_event
from tests.component.notify_vendors import (  # noqa: F401  (the vendors fixture)
    DING_SECRET,
    HOOK_SECRET,
    SMS,
    vendors,
)
from tests.conftest import migrated_database
from tests.helpers import as_user, eventually, fetch, publish_event, running_app

ADMIN = as_user("admin")
K1, K2, K3 = (Fernet.generate_key().decode() for _ in range(3))
SMTP_PASSWORD = "smtp-password-8765"


def settings(dsn: str, bootstrap: str, keys: str | None) -> Settings:
    return Settings(
        environment="test",
        database_url=dsn,
        kafka_bootstrap_servers=bootstrap,
        kafka_idempotent_producer=False,
        log_json=False,
        outbox_poll_interval_seconds=0.5,
        delivery_poll_interval_seconds=0.2,
        delivery_inline_attempts=1,
        delivery_timeout_seconds=3,
        channel_secrets_keys=keys,
    )


def uid() -> str:
    return uuid.uuid4().hex[:8]


async def row_of(dsn: str, rid: str) -> dict:
    [row] = await fetch(dsn, "SELECT channels, webhook_secret FROM recipients WHERE id = $1", rid)
    return {"channels": json.loads(row["channels"]), "webhook_secret": row["webhook_secret"]}


def opened_with(key: str, row: dict) -> dict:
    """The row's secrets opened with ``key`` alone (InvalidToken if it cannot)."""
    f = Fernet(key)
    return {
        "channels": [
            {"kind": c["kind"], "settings": json.loads(f.decrypt(c["sealed"].encode()))}
            for c in row["channels"]
        ],
        "webhook_secret": f.decrypt(row["webhook_secret"].removeprefix("fernet:").encode()).decode()
        if row["webhook_secret"]
        else None,
    }


def dispatched(dept: str):
    return new_event(
        CaseDispatched(
            case_no=f"YA-{uid()}",
            area_path="YA/YA01/YA0101/YA0101-03",
            category="E0101",
            priority=Priority.NORMAL,
            assignment_id=uuid.uuid4(),
            department_id=dept,
            department_name="榆安区城市管理局",
            role="lead",
            rule_id=None,
            reason="rule",
            description="楼道堆放杂物",
        ),
        case_id=uuid.uuid4(),
        producer="dispatch",
    )


async def delivered(client, event, recipient_id: str, channel: str = "webhook") -> dict:
    async def settled():
        rows = (
            await client.get(
                "/deliveries",
                params={
                    "event_id": str(event.event_id),
                    "recipient_id": recipient_id,
                    "channel": channel,
                },
                headers=ADMIN,
            )
        ).json()
        return rows[0] if rows and rows[0]["status"] in ("sent", "dead") else None

    return await eventually(settled, timeout=45, message=f"{recipient_id}'s {channel} settled")


async def test_what_the_api_writes_is_sealed_and_shown_masked(pg_server, kafka_server, vendors):  # noqa: F811
    dsn = await migrated_database(pg_server, "notify")
    async with running_app(create_app(settings(dsn, kafka_server.bootstrap, K1))) as client:
        rid = f"duty-{uid()}"
        resp = await client.post(
            "/recipients",
            json={
                "id": rid,
                "name": "城管值班室",
                "kind": "department",
                "department_id": "cg",
                "webhook_url": f"{vendors.base}/hooks/{rid}",
                "webhook_secret": HOOK_SECRET,
            },
            headers=ADMIN,
        )
        assert resp.status_code == 201 and resp.json()["webhook_signed"] is True
        prefs = {
            "channels": [
                {
                    "kind": "dingtalk",
                    "settings": {
                        "url": "https://oapi.dingtalk.com/robot/send?access_token=tok-1234567890",
                        "secret": DING_SECRET,
                    },
                },
                {
                    "kind": "email",
                    "settings": {
                        "host": "smtp.example.cn",
                        "from": "n@example.cn",
                        "to": ["duty@example.cn"],
                        "username": "n",
                        "password": SMTP_PASSWORD,
                    },
                },
                {"kind": "sms", "settings": {**SMS, "url": "https://sms.example.cn/v1/send"}},
            ]
        }
        resp = await client.put(f"/recipients/{rid}/preferences", json=prefs, headers=ADMIN)
        assert resp.status_code == 200, resp.text
        shown = resp.json()["channels"]
        assert shown[0]["settings"]["secret"] == "****" + DING_SECRET[-4:]
        assert shown[1]["settings"]["password"] == "****" + SMTP_PASSWORD[-4:]
        raw = await fetch(dsn, "SELECT r::text AS t FROM recipients r WHERE id = $1", rid)
        for secret in (
            DING_SECRET,
            SMTP_PASSWORD,
            SMS["app_secret"],
            "tok-1234567890",
            HOOK_SECRET,
            HOOK_SECRET.removeprefix("whsec_"),
        ):
            assert secret not in raw[0]["t"], secret
        row = await row_of(dsn, rid)
        assert all(set(c) == {"kind", "sealed"} for c in row["channels"])
        assert row["webhook_secret"].startswith("fernet:")
        opened = opened_with(K1, row)
        assert opened["webhook_secret"] == HOOK_SECRET
        assert opened["channels"][1]["settings"]["password"] == SMTP_PASSWORD
        with pytest.raises(InvalidToken):
            opened_with(K2, row)
        # sent back masked, the secrets keep their values (opened, merged, sealed again)
        back = {"channels": [{"kind": c["kind"], "settings": c["settings"]} for c in shown]}
        assert (
            await client.put(f"/recipients/{rid}/preferences", json=back, headers=ADMIN)
        ).status_code == 200
        again = opened_with(K1, await row_of(dsn, rid))
        assert again["channels"] == opened["channels"]
        # and the webhook given the first way is signed with the opened secret
        event = dispatched("cg")
        await publish_event(kafka_server.bootstrap, event)
        row = await delivered(client, event, rid)
        assert row["status"] == "sent", row  # the receiver verified the signature


async def test_plain_rows_are_sealed_at_start_and_keys_rotate(pg_server, kafka_server, vendors):  # noqa: F811
    dsn = await migrated_database(pg_server, "notify")
    dept, legacy, listed = f"cg-{uid()}", f"legacy-{uid()}", f"listed-{uid()}"
    hook = {"url": f"{vendors.base}/hooks/{listed}", "secret": HOOK_SECRET}
    # Rows as they were before sealing: plain settings, a plain webhook secret.
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO recipients (id, name, kind, department_id, webhook_url, webhook_secret,"
            " channels) VALUES ($1, '值班室', 'department', $3, $4, $5, '[]'),"
            " ($2, '夜班', 'department', $3, NULL, NULL, $6::jsonb)",
            legacy,
            listed,
            dept,
            f"{vendors.base}/hooks/{legacy}",
            HOOK_SECRET,
            json.dumps(
                [
                    {"kind": "webhook", "settings": hook},
                    {
                        "kind": "email",
                        "settings": {
                            "host": "smtp.example.cn",
                            "from": "n@example.cn",
                            "to": ["d@example.cn"],
                            "username": "n",
                            "password": SMTP_PASSWORD,
                        },
                    },
                ]
            ),
        )
    finally:
        await conn.close()

    async def sealed_with(key: str):
        try:
            return [opened_with(key, await row_of(dsn, r)) for r in (legacy, listed)]
        except (InvalidToken, AttributeError, KeyError):
            return None

    # 1. The first start with K1 seals them; they still work.
    async with running_app(create_app(settings(dsn, kafka_server.bootstrap, K1))) as client:
        opened = await eventually(lambda: sealed_with(K1), message="the plain rows were sealed")
        assert opened[0]["webhook_secret"] == HOOK_SECRET
        assert opened[1]["channels"][0]["settings"] == hook
        shown = (await client.get(f"/recipients/{listed}/preferences", headers=ADMIN)).json()
        assert shown["channels"][0]["settings"]["secret"] == "****" + HOOK_SECRET[-4:]
        assert shown["channels"][1]["settings"]["password"] == "****" + SMTP_PASSWORD[-4:]
        event = dispatched(dept)
        await publish_event(kafka_server.bootstrap, event)
        assert (await delivered(client, event, legacy))["status"] == "sent"
        assert (await delivered(client, event, listed))["status"] == "sent"

    # 2. A new key first: the start re-seals everything under it …
    async with running_app(create_app(settings(dsn, kafka_server.bootstrap, f"{K2},{K1}"))):
        await eventually(lambda: sealed_with(K2), message="re-sealed under the new key")
    # … so the old key can go.
    async with running_app(create_app(settings(dsn, kafka_server.bootstrap, K2))) as client:
        event = dispatched(dept)
        await publish_event(kafka_server.bootstrap, event)
        assert (await delivered(client, event, legacy))["status"] == "sent"
        assert (await delivered(client, event, listed))["status"] == "sent"

    # 3. With no key that opens them, the channels fail for good — a webhook is never sent
    # unsigned — and the next channel takes over; the rows are left as they are.
    before = [await row_of(dsn, r) for r in (legacy, listed)]
    hits = len(vendors.of("hook"))
    async with running_app(create_app(settings(dsn, kafka_server.bootstrap, K3))) as client:
        event = dispatched(dept)
        await publish_event(kafka_server.bootstrap, event)
        for rid in (legacy, listed):
            row = await delivered(client, event, rid)
            assert row["status"] == "dead", row
            assert row["last_code"] == "secrets_unreadable"
        email = await delivered(client, event, listed, "email")
        assert email["fallback_from"] is not None
        assert len(vendors.of("hook")) == hits
    assert [await row_of(dsn, r) for r in (legacy, listed)] == before


@pytest.mark.parametrize(
    ("environment", "keys", "error"),
    [
        ("production", None, "CHANNEL_SECRETS_KEYS must be set"),
        ("production", DEV_SECRETS_KEY, "CHANNEL_SECRETS_KEYS must be set"),
        ("production", f"{K1},not-a-key", "key 2 is not a Fernet key"),
        ("test", "short", "key 1 is not a Fernet key"),
    ],
    ids=["production-unset", "production-dev-key", "production-second-bad", "test-short"],
)
def test_settings_refuse_missing_or_malformed_keys(environment, keys, error):
    with pytest.raises(ValidationError, match=error):
        Settings(
            environment=environment,
            database_url="postgresql://x@127.0.0.1:1/x",
            auth_secret=secrets.token_urlsafe(36),
            channel_secrets_keys=keys,
        )


def test_keys_newest_first_and_the_dev_key_only_in_dev_mode():
    s = Settings(
        environment="production",
        database_url="postgresql://x@127.0.0.1:1/x",
        auth_secret=secrets.token_urlsafe(36),
        channel_secrets_keys=f" {K2} , {K1} ",
    )
    assert s.secrets_keys() == [K2, K1]
    assert "K2" not in repr(s) and K2 not in repr(s)  # a SecretStr
    dev = Settings(environment="test", database_url="postgresql://x@127.0.0.1:1/x")
    assert dev.secrets_keys() == [DEV_SECRETS_KEY]
