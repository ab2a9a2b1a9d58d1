"""Tokens, principals and the shared HTTP limits (no infrastructure needed)."""

from __future__ import annotations

import secrets

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from pydantic import ValidationError

from services.intake.config import Settings as IntakeSettings
from services.intake.main import create_app
from shared.auth import Forbidden, Principal, Role, TokenKeys, Unauthenticated, mint, verify
from shared.http import BodySizeLimit, install_error_handlers
from shared.settings import DEV_AUTH_SECRET, BaseServiceSettings

DSN = "postgresql://nobody@127.0.0.1:1/none"
WORKER = Principal(
    "wangfang",
    "网格员王芳",
    Role.GRID_WORKER,
    "YA/YA01/YA0101/YA0101-03",
    grids=("YA/YA01/YA0101/YA0101-03", "YA/YA01/YA0101/YA0101-04"),
)


def rsa_keys() -> TokenKeys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return TokenKeys("RS256", public, private, "whistle", "whistle")


def test_hs256_round_trip_carries_every_claim():
    keys = TokenKeys("HS256", "k" * 40, "k" * 40, "whistle", "whistle")
    assert verify(keys, mint(keys, WORKER)) == WORKER
    dept = Principal("cg-duty", "值班员", Role.DEPARTMENT, "YA", department_id="cg")
    assert verify(keys, mint(keys, dept)).department_id == "cg"


def test_rs256_services_verify_with_the_public_key_only():
    keys = rsa_keys()
    token = mint(keys, WORKER)
    verifier = TokenKeys("RS256", keys.verify_key, None, "whistle", "whistle")
    assert verify(verifier, token) == WORKER
    with pytest.raises(RuntimeError, match="signing key"):
        mint(verifier, WORKER)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda k, t: (k, t + "x"), "invalid_token"),
        (
            lambda k, t: (TokenKeys("HS256", "z" * 40, None, "whistle", "whistle"), t),
            "invalid_token",
        ),
        (
            lambda k, t: (TokenKeys("HS256", k.verify_key, None, "whistle", "other"), t),
            "invalid_token",
        ),
        (
            lambda k, t: (TokenKeys("HS256", k.verify_key, None, "evil", "whistle"), t),
            "invalid_token",
        ),
    ],
)
def test_tampered_or_foreign_tokens_are_refused(mutate, code):
    keys = TokenKeys("HS256", "k" * 40, "k" * 40, "whistle", "whistle")
    other_keys, token = mutate(keys, mint(keys, WORKER))
    with pytest.raises(Unauthenticated) as err:
        verify(other_keys, token)
    assert err.value.code == code


def test_expired_token_and_alg_none_are_refused():
    keys = TokenKeys("HS256", "k" * 40, "k" * 40, "whistle", "whistle")
    with pytest.raises(Unauthenticated) as err:
        verify(keys, mint(keys, WORKER, ttl_seconds=-1))
    assert err.value.code == "token_expired"
    import jwt

    unsigned = jwt.encode(
        {
            "sub": "x",
            "role": "admin",
            "area": "YA",
            "iat": 1,
            "exp": 2**33,
            "aud": "whistle",
            "iss": "whistle",
        },
        None,
        algorithm="none",
    )
    with pytest.raises(Unauthenticated):
        verify(keys, unsigned)


def test_scope_is_whole_path_segments():
    assert WORKER.covers("YA/YA01/YA0101/YA0101-04")
    assert not WORKER.covers("YA/YA01/YA0101/YA0101-0")  # a string prefix is not a subtree
    street = Principal("s", "街道", Role.STREET, "YA/YA01")
    assert street.covers("YA/YA01/YA0102/YA0102-01") and not street.covers("YA/YA010")
    with pytest.raises(Forbidden) as err:
        street.require_area("YA/YA02/YA0201")
    assert err.value.code == "out_of_scope" and "YA/YA02/YA0201" in err.value.zh
    admin = Principal("a", "管理员", Role.ADMIN, "YA")
    assert not admin.covers("YA/YA01")  # admin manages reference data, not cases
    with pytest.raises(Forbidden):
        Principal("d", "部门", Role.DEPARTMENT, "YA", department_id="cg").require_department("xf")


@pytest.mark.parametrize(
    "secret",
    [
        None,
        DEV_AUTH_SECRET,
        "short",
        # placeholders: the old Kubernetes example, and change-me-like values of any length
        "replace-me-with-a-random-secret-of-at-least-32-characters",
        "change-me-change-me-change-me-change-me-0123456789",
        "CHANGEME" + "Xy7#kQ9!pL2@" * 3,
        "my-Replace-Me-Token-with-plenty-of-vArIeTy-1234567",
        # weak: one repeated character, or too little variety to be random
        "s" * 48,
        "ab" * 24,
        "0123" * 10,
    ],
)
def test_production_refuses_a_missing_default_or_weak_key(secret):
    values = {"service_name": "x", "database_url": DSN, "environment": "production"}
    if secret is not None:
        values["auth_secret"] = secret
    with pytest.raises(ValidationError, match="AUTH_SECRET"):
        BaseServiceSettings(**values)
    with pytest.raises(ValidationError, match="AUTH_PUBLIC_KEY"):
        BaseServiceSettings(service_name="x", database_url=DSN, auth_algorithm="RS256")
    assert BaseServiceSettings(service_name="x", database_url=DSN, environment="embedded")


def test_production_accepts_a_random_key():
    for secret in (secrets.token_urlsafe(36), secrets.token_hex(32)):
        assert BaseServiceSettings(service_name="x", database_url=DSN, auth_secret=secret)


def test_docs_are_closed_in_production_and_open_in_dev_mode():
    prod = create_app(IntakeSettings(database_url=DSN, auth_secret=secrets.token_urlsafe(36)))
    dev = create_app(IntakeSettings(database_url=DSN, environment="embedded"))
    paths = lambda app: {getattr(r, "path", None) for r in app.routes}  # noqa: E731
    assert not {"/docs", "/openapi.json", "/asyncapi"} & paths(prod)
    assert {"/docs", "/openapi.json", "/asyncapi"} <= paths(dev)


async def test_body_size_limit_by_header_and_by_stream():
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"size": len(await request.body())}

    limited = BodySizeLimit(app, max_bytes=1024)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=limited), base_url="http://t"
    ) as client:
        assert (await client.post("/echo", content=b"x" * 1024)).json() == {"size": 1024}
        big = await client.post("/echo", content=b"x" * 1025)
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"

        async def chunks():
            for _ in range(4):
                yield b"y" * 400

        streamed = await client.post("/echo", content=chunks())  # no Content-Length
        assert streamed.status_code == 413
        assert streamed.json()["error"]["message"] == "请求体过大（上限 1 KiB）"
        en = await client.post("/echo", content=b"x" * 2000, headers={"Accept-Language": "en"})
        assert en.json()["error"]["message"].startswith("Request body too large")
