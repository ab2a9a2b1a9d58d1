"""Tokens from an external OIDC provider: a real JWKS endpoint on 127.0.0.1 (an HTTP server in
a thread) whose keys the tests rotate, stop and restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from pydantic import ValidationError

from services.intake.config import Settings as IntakeSettings
from services.intake.main import create_app
from shared.auth import Principal, Role, TokenKeys, Unauthenticated, mint, verify_for
from shared.oidc import IdentityProviderUnavailable, OidcSettings, OidcVerifier
from shared.service import Runtime
from shared.settings import BaseServiceSettings
from web.proxy import token_expiry

DSN = "postgresql://nobody@127.0.0.1:1/none"
ISSUER = "https://sso.example.gov.cn/realms/whistle"
BUILT_IN = TokenKeys("HS256", "k" * 40, "k" * 40, "whistle", "whistle")


class Idp:
    """The provider's JWKS endpoint: serves ``keys`` (kid -> private key), counts fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        self.down = False
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                idp.fetches += 1
                if idp.down:
                    self.send_error(503)
                    return
                if self.path.endswith("/.well-known/openid-configuration"):
                    body = {"issuer": ISSUER, "jwks_uri": f"{idp.url}/jwks"}
                else:
                    body = {"keys": [idp.public_jwk(kid, k) for kid, k in idp.keys.items()]}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def public_jwk(kid: str, key: Any) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else None
        if algorithm is None:
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        else:
            jwk = json.loads(algorithm.to_jwk(key.public_key()))
        return {**jwk, "kid": kid, "use": "sig"}

    def add(self, kid: str, kind: str = "rsa") -> None:
        if kind == "rsa":
            self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.keys[kid] = ec.generate_private_key(ec.SECP256R1())

    def token(self, kid: str, **claims: Any) -> str:
        key = self.keys[kid]
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": "whistle-api",
            "sub": "f3a1-zhang",
            "name": "张伟",
            "iat": now,
            "exp": now + 300,
            "realm_access": {"roles": ["offline_access", "whistle-street"]},
            "whistle_area": "YA/YA01",
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def idp() -> Iterator[Idp]:
    server = Idp()
    server.add("k1")
    yield server
    server.server.shutdown()


def settings(idp: Idp, **change: Any) -> OidcSettings:
    values: dict[str, Any] = {
        "oidc_issuer": ISSUER,
        "oidc_audience": "whistle-api",
        "oidc_jwks_url": f"{idp.url}/jwks",
        "oidc_role_claim": "realm_access.roles",
        "oidc_role_map": {"whistle-street": "street", "whistle-cg": "department"},
        "oidc_area_claim": "whistle_area",
        "oidc_department_claim": "whistle_dept",
        "oidc_jwks_min_refresh_seconds": 0.3,
    }
    values.update(change)
    return OidcSettings(**values)


async def test_a_provider_token_becomes_a_principal(idp: Idp) -> None:
    who = await OidcVerifier(settings(idp)).verify(idp.token("k1"))
    assert who == Principal("f3a1-zhang", "张伟", Role.STREET, "YA/YA01")
    assert who.expires_at and who.expires_at > time.time()


async def test_discovery_finds_the_key_set(idp: Idp) -> None:
    verifier = OidcVerifier(settings(idp, oidc_jwks_url=None, oidc_issuer=idp.url))
    assert (await verifier.verify(idp.token("k1", iss=idp.url))).role is Role.STREET
    assert idp.fetches == 2  # openid-configuration, then jwks


async def test_rotation_is_accepted_after_one_refetch(idp: Idp) -> None:
    verifier = OidcVerifier(settings(idp))
    await verifier.verify(idp.token("k1"))
    assert idp.fetches == 1
    await verifier.verify(idp.token("k1"))
    assert idp.fetches == 1  # cached
    idp.add("k2")
    await asyncio.sleep(0.3)
    assert (await verifier.verify(idp.token("k2"))).subject == "f3a1-zhang"
    assert idp.fetches == 2


async def test_unknown_kids_refetch_at_most_once_per_min_refresh(idp: Idp) -> None:
    verifier = OidcVerifier(settings(idp, oidc_jwks_min_refresh_seconds=1.0))
    await verifier.verify(idp.token("k1"))
    idp.add("forged")
    forged = idp.token("forged")
    del idp.keys["forged"]
    await asyncio.sleep(1.1)
    for _ in range(5):
        with pytest.raises(Unauthenticated, match="not in the provider's key set"):
            await verifier.verify(forged)
    assert idp.fetches == 2  # the first look-up and one refetch, not six
    await asyncio.sleep(1.1)
    with pytest.raises(Unauthenticated):
        await verifier.verify(forged)
    assert idp.fetches == 3  # the next window allows one more


async def test_a_warm_cache_verifies_while_the_provider_is_down(idp: Idp) -> None:
    verifier = OidcVerifier(settings(idp, oidc_jwks_cache_seconds=0.2))
    await verifier.verify(idp.token("k1"))
    idp.down = True
    await asyncio.sleep(0.3)  # the cache is stale: a refetch is tried, fails, the old set stays
    assert (await verifier.verify(idp.token("k1"))).role is Role.STREET
    assert idp.fetches == 2


async def test_a_cold_cache_with_the_provider_down_is_503(idp: Idp) -> None:
    idp.down = True
    verifier = OidcVerifier(settings(idp))
    with pytest.raises(IdentityProviderUnavailable) as err:
        await verifier.verify(idp.token("k1"))
    assert err.value.status_code == 503 and "身份提供方" in err.value.zh
    with pytest.raises(IdentityProviderUnavailable):  # within min_refresh: no new fetch
        await verifier.verify(idp.token("k1"))
    assert idp.fetches == 1
    idp.down = False
    await asyncio.sleep(0.3)
    assert (await verifier.verify(idp.token("k1"))).role is Role.STREET


@pytest.mark.parametrize(
    ("claims", "code", "says"),
    [
        ({"iss": "https://elsewhere"}, "invalid_token", "issuer"),
        ({"aud": "another-app"}, "invalid_token", "Audience"),
        ({"exp": int(time.time()) - 120}, "token_expired", "expired"),
        ({"nbf": int(time.time()) + 600}, "invalid_token", "not yet valid"),
        ({"exp": None}, "invalid_token", "exp"),
        ({"realm_access": {"roles": ["offline_access"]}}, "invalid_token", "no Whistle role"),
        (
            {"realm_access": {"roles": ["whistle-street", "whistle-cg"]}},
            "invalid_token",
            "several Whistle roles",
        ),
        ({"whistle_area": None}, "invalid_token", "needs an area"),
        ({"realm_access": {"roles": ["whistle-cg"]}}, "invalid_token", "whistle_dept"),
    ],
)
async def test_bad_tokens_are_401(idp: Idp, claims: dict[str, Any], code: str, says: str) -> None:
    with pytest.raises(Unauthenticated, match=says) as err:
        await OidcVerifier(settings(idp)).verify(idp.token("k1", **claims))
    assert err.value.code == code


async def test_within_the_leeway_an_expired_token_still_passes(idp: Idp) -> None:
    token = idp.token("k1", exp=int(time.time()) - 5)
    assert await OidcVerifier(settings(idp)).verify(token)


async def test_department_and_grid_mapping(idp: Idp) -> None:
    verifier = OidcVerifier(settings(idp))
    dept = await verifier.verify(
        idp.token("k1", realm_access={"roles": ["whistle-cg"]}, whistle_dept="cg")
    )
    assert (dept.role, dept.department_id) == (Role.DEPARTMENT, "cg")
    worker = OidcVerifier(settings(idp, oidc_role_claim="role", oidc_role_map={}))
    grids = ["YA/YA01/YA0101/YA0101-03", "YA/YA01/YA0101/YA0101-04"]
    who = await worker.verify(idp.token("k1", role="grid_worker", grids=grids, whistle_area=None))
    assert who.grids == tuple(grids) and who.covers("YA/YA01/YA0101/YA0101-04")


async def test_es256_keys_work_too(idp: Idp) -> None:
    idp.add("ec1", "ec")
    assert (await OidcVerifier(settings(idp)).verify(idp.token("ec1"))).role is Role.STREET


async def test_an_algorithm_that_does_not_fit_the_kids_key_is_401(idp: Idp) -> None:
    # ES256 in the header, the kid naming the provider's RSA key: PyJWT alone raises TypeError
    # (a 500); it must be an ordinary invalid_token
    idp.add("ec1", "ec")
    verifier = OidcVerifier(settings(idp))
    claims = jwt.decode(idp.token("k1"), options={"verify_signature": False})
    forged = jwt.encode(
        claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "k1"}
    )
    with pytest.raises(Unauthenticated, match="does not fit") as err:
        await verifier.verify(forged)
    assert err.value.code == "invalid_token"
    # and the other way round: RS256 in the header, the kid naming an EC key
    claims = jwt.decode(idp.token("ec1"), options={"verify_signature": False})
    forged = jwt.encode(claims, idp.keys["k1"], algorithm="RS256", headers={"kid": "ec1"})
    with pytest.raises(Unauthenticated, match="does not fit") as err:
        await verifier.verify(forged)
    assert err.value.code == "invalid_token"


async def test_none_and_hs256_with_the_public_key_are_refused(idp: Idp) -> None:
    verifier = OidcVerifier(settings(idp))
    claims = jwt.decode(idp.token("k1"), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    with pytest.raises(Unauthenticated, match="algorithm 'none' is not accepted"):
        await verifier.verify(unsigned)
    # HS256 "signed" with the provider's public key (anyone can read it): made by hand, PyJWT
    # itself refuses to make such a token
    public_pem = (
        idp.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    signing_input = f"{head}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{_b64(mac)}"
    with pytest.raises(Unauthenticated, match="algorithm 'HS256' is not accepted"):
        await verifier.verify(confused)


def test_settings_refuse_symmetric_algorithms_and_a_shared_issuer() -> None:
    with pytest.raises(ValidationError, match="asymmetric algorithms only"):
        OidcSettings(oidc_algorithms="RS256,HS256")
    with pytest.raises(ValidationError, match="OIDC_AUDIENCE"):
        OidcSettings(oidc_issuer=ISSUER)
    with pytest.raises(ValidationError, match="OIDC_ISSUER and AUTH_ISSUER"):
        BaseServiceSettings(
            service_name="x",
            database_url=DSN,  # type: ignore[arg-type]
            environment="test",
            oidc_issuer="whistle",
            oidc_audience="whistle",
        )
    with pytest.raises(ValidationError, match="oidc_role_map"):
        OidcSettings(oidc_role_map={"x": "mayor"})  # type: ignore[dict-item]


# --- through the apps -----------------------------------------------------------------------


def intake(idp: Idp) -> FastAPI:
    return create_app(
        IntakeSettings(
            database_url=DSN,  # type: ignore[arg-type]
            environment="test",
            auth_secret="k" * 40,  # type: ignore[arg-type]
            **settings(idp).model_dump(),
        )
    )


async def test_an_intake_endpoint_takes_provider_and_built_in_tokens(idp: Idp) -> None:
    """Department staff may not read Open311 requests: a provider token that maps to a
    department is accepted and then refused by the route's role rule (403, before any
    database work), exactly as a built-in department token; a forged one is 401."""
    app = intake(idp)
    dept = idp.token("k1", realm_access={"roles": ["whistle-cg"]}, whistle_dept="cg")
    built_in = mint(BUILT_IN, Principal("d", "值班员", Role.DEPARTMENT, "YA", department_id="cg"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        url = "/open311/v2/requests.json"
        by_key = await client.get(url, params={"api_key": dept})
        by_header = await client.get(url, headers={"Authorization": f"Bearer {dept}"})
        own = await client.get(url, params={"api_key": built_in})
        forged = await client.get(url, params={"api_key": idp.token("k1", aud="someone-else")})
    for r in (by_key, by_header, own):
        assert r.status_code == 403, r.text
        assert "职能部门无权" in r.text
    assert forged.status_code == 401 and "Audience" in forged.text


async def test_the_gateway_cuts_streams_at_the_provider_tokens_expiry(idp: Idp) -> None:
    app = FastAPI()
    app.state.token_keys = BUILT_IN
    app.state.runtime = Runtime(
        settings=BaseServiceSettings(
            service_name="web",
            database_url=DSN,  # type: ignore[arg-type]
            environment="test",
            **settings(idp).model_dump(),
        ),
        broker=None,  # type: ignore[arg-type]
    )
    exp = int(time.time()) + 120
    assert await token_expiry(app, f"Bearer {idp.token('k1', exp=exp)}") == exp
    assert await token_expiry(app, f"Bearer {idp.token('k1', aud='x')}") is None
    own = mint(BUILT_IN, Principal("s", "街道", Role.STREET, "YA/YA01"), ttl_seconds=60)
    assert await token_expiry(app, f"Bearer {own}") == pytest.approx(time.time() + 60, abs=5)
    assert await token_expiry(app, None) is None


async def test_built_in_tokens_pass_and_unknown_issuers_fail(idp: Idp) -> None:
    app = intake(idp)
    own = Principal("s", "街道", Role.STREET, "YA/YA01")
    assert (await verify_for(app, mint(BUILT_IN, own))).subject == "s"
    stranger = jwt.encode(
        {"iss": "https://evil", "sub": "x", "exp": 2**33}, secrets.token_hex(32), "HS256"
    )
    with pytest.raises(Unauthenticated, match="invalid token"):
        await verify_for(app, stranger)
