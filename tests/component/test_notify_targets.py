"""Channel targets in loopback, link-local or private networks are refused (SSRF) unless
CHANNEL_ALLOW_PRIVATE_TARGETS: when set (422 over the API, on the real PostgreSQL), and at
delivery for what the host name resolves to (DNS rebinding), against real local servers."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.notify.channels import Outcome, SendContext, targets
from services.notify.config import Settings
from services.notify.main import create_app
from tests.component.notify_vendors import (  # noqa: F401 - fixtures
    HOOK_SECRET,
    MSG,
    email_settings,
    send,
    smtp_servers,
    vendors,
)
from tests.conftest import migrated_database
from tests.helpers import as_user, running_app

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
ADMIN = as_user("admin")
PRIVATE = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.5/hook",
    "http://192.168.1.10/hook",
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://a.localhost/hook",
]


def test_the_embedded_and_test_modes_allow_private_targets_production_does_not():
    dev = Settings(environment="test", database_url="postgresql://x@127.0.0.1:1/x")
    assert dev.allow_private_targets
    assert not Settings(
        environment="test",
        database_url="postgresql://x@127.0.0.1:1/x",
        channel_allow_private_targets=False,
    ).allow_private_targets


@pytest.fixture(scope="module")
async def notify(pg_server, kafka_server):
    dsn = await migrated_database(pg_server, "notify")
    settings = Settings(
        environment="test",
        database_url=dsn,
        kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False,
        log_json=False,
        channel_allow_private_targets=False,
        intake_url="http://127.0.0.1:9",
        dispatch_url="http://127.0.0.1:9",
    )
    async with running_app(create_app(settings)) as client:
        yield client


async def test_private_targets_are_refused_when_set(notify):
    rid = f"duty-{uuid.uuid4().hex[:8]}"
    resp = await notify.post(
        "/recipients",
        headers=ADMIN,
        json={
            "id": rid,
            "name": "值班室",
            "kind": "department",
            "department_id": "cg",
            "webhook_url": "http://169.254.169.254/latest/meta-data",
        },
    )
    assert resp.status_code == 422, resp.text
    assert "内网地址" in resp.json()["error"]["message"]
    resp = await notify.post(
        "/recipients",
        headers=ADMIN,
        json={"id": rid, "name": "值班室", "kind": "department", "department_id": "cg"},
    )
    assert resp.status_code == 201, resp.text
    settings = {
        "webhook": lambda u: {"url": u},
        "wecom": lambda u: {"url": u.replace("http://", "https://") + "?key=k"},
        "sms": lambda u: {
            "url": u.replace("http://", "https://"),
            "app_key": "a",
            "app_secret": "s",
            "template_id": "T",
            "to": ["13800138000"],
        },
    }
    for url in PRIVATE:
        for kind, make in settings.items():
            resp = await notify.put(
                f"/recipients/{rid}/preferences",
                headers=ADMIN,
                json={"channels": [{"kind": kind, "settings": make(url)}]},
            )
            assert resp.status_code == 422, (kind, url, resp.text)
            assert resp.json()["error"]["message"].startswith("channels[0].settings.url：")
    email = {"host": "10.1.2.3", "from": "a@example.cn", "to": ["b@example.cn"]}
    resp = await notify.put(
        f"/recipients/{rid}/preferences",
        headers={**ADMIN, "Accept-Language": "en"},
        json={"channels": [{"kind": "email", "settings": email}]},
    )
    assert resp.status_code == 422 and "private address" in resp.json()["error"]["message"]
    public = {"url": "https://hooks.example.cn/whistle"}
    resp = await notify.put(
        f"/recipients/{rid}/preferences",
        headers=ADMIN,
        json={"channels": [{"kind": "webhook", "settings": public}]},
    )
    assert resp.status_code == 200, resp.text


async def guarded_send(kind: str, raw: dict, **kw):
    async with targets.public_only_client() as client:
        return await send(kind, raw, client, public_only=True, **kw)


async def test_delivery_refuses_a_name_that_resolves_to_a_private_address(vendors):  # noqa: F811
    port = httpx.URL(vendors.base).port
    for host in ("127.0.0.1", "localhost"):
        result = await guarded_send(
            "webhook", {"url": f"http://{host}:{port}/hooks/cg", "secret": HOOK_SECRET}
        )
        assert (result.outcome, result.code) == (Outcome.PERMANENT, "private_target"), result


async def test_delivery_connects_to_the_address_it_checked(vendors, monkeypatch):  # noqa: F811
    """A public-looking name: the connection goes to the address the check returned, not to
    what a second lookup would say (here the check's answer stands in for a public one)."""
    checked: list[str] = []

    async def public_address(host: str, port: int) -> str:
        checked.append(host)
        return "127.0.0.1"

    monkeypatch.setattr(targets, "public_address", public_address)
    port = httpx.URL(vendors.base).port
    result = await guarded_send(
        "webhook", {"url": f"http://hooks.invalid:{port}/hooks/cg", "secret": HOOK_SECRET}
    )
    assert result.ok, result
    assert checked == ["hooks.invalid"]
    assert vendors.of("hook")[-1].headers["host"] == f"hooks.invalid:{port}"


async def test_smtp_delivery_checks_the_address_too(smtp_servers, monkeypatch):  # noqa: F811
    async with httpx.AsyncClient() as client:
        refused = await send(
            "email", email_settings(smtp_servers, "plain"), client, public_only=True
        )
        assert (refused.outcome, refused.code) == (Outcome.PERMANENT, "private_target")
        monkeypatch.setattr(targets, "public_address", lambda host, port: _loopback())
        for which in ("plain", "starttls", "implicit"):
            result = await send(
                "email", email_settings(smtp_servers, which), client, public_only=True
            )
            assert result.ok, (which, result)


async def _loopback() -> str:
    return "127.0.0.1"


def test_a_send_context_is_not_public_only_by_default():
    assert not SendContext().public_only and MSG.id
