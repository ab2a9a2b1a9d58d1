"""Tokens from an external OpenID Connect provider (Keycloak, Authing, Azure AD, …).

Beside the built-in sign-in (``AUTH_ISSUER``), a service accepts tokens whose ``iss`` is
``OIDC_ISSUER``: signed with a key from the provider's JWKS (``OIDC_JWKS_URL``, or found by
discovery at ``{issuer}/.well-known/openid-configuration``), for ``OIDC_AUDIENCE``, with the
asymmetric algorithms ``OIDC_ALGORITHMS`` only. Their claims are mapped onto a ``Principal``
by settings: the role from ``OIDC_ROLE_CLAIM`` (a dotted path, a string or a list) through
``OIDC_ROLE_MAP``, the area, department, grids and name from their claims.

The key set is cached for ``OIDC_JWKS_CACHE_SECONDS``; a token signed with a key not in it
(the provider rotated its keys) refetches the set, at most once per
``OIDC_JWKS_MIN_REFRESH_SECONDS`` (a forged ``kid`` cannot make us hammer the provider); while
the provider is unreachable the last good set keeps verifying.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import structlog
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth import AREA_ROLES, Principal, Role
from shared.errors import DomainError, Unauthenticated

__all__ = ["IdentityProviderUnavailable", "JwksCache", "OidcSettings", "OidcVerifier"]

log = structlog.get_logger()

# Asymmetric algorithms only: a shared-secret (HS*) or "none" token can never pass.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class IdentityProviderUnavailable(DomainError):
    status_code = 503
    code = "identity_provider_unavailable"


class OidcSettings(BaseSettings):
    """The external provider; unset ``OIDC_ISSUER`` means only built-in tokens are accepted."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_algorithms: str = "RS256,ES256"
    oidc_subject_claim: str = "sub"
    oidc_name_claim: str = "name"
    oidc_role_claim: str = "role"
    # {"provider's role or group": "whistle role"}; empty: the claim holds Whistle's roles.
    oidc_role_map: dict[str, Role] = Field(default_factory=dict)
    oidc_area_claim: str = "area"
    oidc_department_claim: str = "dept"
    oidc_grids_claim: str = "grids"
    oidc_jwks_cache_seconds: float = Field(default=300.0, gt=0)
    oidc_jwks_min_refresh_seconds: float = Field(default=10.0, ge=0)
    oidc_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    oidc_http_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric(cls, value: str) -> str:
        algorithms = [a.strip() for a in value.split(",") if a.strip()]
        if not algorithms or set(algorithms) - ASYMMETRIC:
            raise ValueError(
                f"OIDC_ALGORITHMS={value!r}: list asymmetric algorithms only "
                f"({', '.join(sorted(ASYMMETRIC))})"
            )
        return ",".join(algorithms)

    @model_validator(mode="after")
    def _complete(self) -> OidcSettings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("OIDC_ISSUER is set: OIDC_AUDIENCE (this API's client id) is needed")
        return self

    @property
    def oidc_algorithm_list(self) -> list[str]:
        return self.oidc_algorithms.split(",")


class JwksCache:
    """The provider's key set: cached, refetched on an unknown key (rate-limited), kept when
    the provider is away."""

    def __init__(self, s: OidcSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.s = s
        self.clock = clock
        self.fetches = 0
        self._keys: dict[str | None, jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        if self._keys is None or self.clock() - self._fetched_at >= self.s.oidc_jwks_cache_seconds:
            await self._refresh()
        found = self._find(kid)
        if found is None and self._may_fetch():
            await self._refresh()  # the provider may have rotated its keys
            found = self._find(kid)
        if found is None:
            raise Unauthenticated(
                "登录凭证的签名密钥不在身份提供方的公钥集中",
                f"the token's signing key {kid!r} is not in the provider's key set",
                code="invalid_token",
            )
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        keys = self._keys or {}
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        return keys.get(kid)

    def _may_fetch(self) -> bool:
        last = self._attempted_at
        return last is None or self.clock() - last >= self.s.oidc_jwks_min_refresh_seconds

    async def _refresh(self) -> None:
        attempted = self._attempted_at
        async with self._lock:
            if self._attempted_at != attempted:
                return  # another request fetched while this one waited
            if not self._may_fetch():
                if self._keys is None:
                    raise _unavailable("the last attempt failed moments ago")
                return
            self._attempted_at = self.clock()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                log.warning("oidc_jwks_unavailable", error=str(exc), cached=self._keys is not None)
                if self._keys is None:
                    raise _unavailable(str(exc)) from exc
                return  # stale-if-error: the last good set keeps verifying
            self._keys, self._fetched_at = keys, self.clock()

    async def _fetch(self) -> dict[str | None, jwt.PyJWK]:
        self.fetches += 1
        async with httpx.AsyncClient(timeout=self.s.oidc_http_timeout_seconds) as http:
            url = self.s.oidc_jwks_url
            if not url:
                discovery = (
                    f"{(self.s.oidc_issuer or '').rstrip('/')}/.well-known/openid-configuration"
                )
                response = await http.get(discovery)
                response.raise_for_status()
                url = str(response.json()["jwks_uri"])
            response = await http.get(url)
            response.raise_for_status()
            key_set = jwt.PyJWKSet.from_dict(response.json())
        return {k.key_id: k for k in key_set.keys}


def _unavailable(why: str) -> IdentityProviderUnavailable:
    return IdentityProviderUnavailable(
        "暂时无法取得身份提供方的公钥，请稍后重试",
        f"the identity provider's keys cannot be fetched right now ({why})",
    )


def _invalid(zh: str, en: str) -> Unauthenticated:
    return Unauthenticated(zh, en, code="invalid_token")


# The JWK key type (kty) each algorithm family signs with.
KEY_TYPE_OF = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def _check_key_fits(alg: str, key: jwt.PyJWK) -> None:
    """A token whose ``alg`` does not fit the key its ``kid`` names is invalid, not a crash."""
    wanted = KEY_TYPE_OF.get(alg[:2])
    if wanted != key.key_type:
        raise _invalid(
            "登录凭证的签名算法与其密钥不符",
            f"the algorithm {alg!r} does not fit the {key.key_type} key {key.key_id!r}",
        )


def claim(claims: dict[str, Any], path: str) -> Any:
    """The claim at a dotted path (``realm_access.roles``), None if absent."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class OidcVerifier:
    """Verifies the external provider's tokens and maps their claims onto a Principal."""

    def __init__(self, s: OidcSettings) -> None:
        self.s = s
        self.issuer = s.oidc_issuer or ""
        self.jwks = JwksCache(s)

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise _invalid("登录凭证无效", f"invalid token: {exc}") from exc
        if header.get("alg") not in self.s.oidc_algorithm_list:
            raise _invalid(
                "登录凭证的签名算法不被接受",
                f"algorithm {header.get('alg')!r} is not accepted "
                f"(OIDC_ALGORITHMS: {self.s.oidc_algorithms})",
            )
        key = await self.jwks.key(header.get("kid"))
        _check_key_fits(str(header.get("alg")), key)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=self.s.oidc_algorithm_list,
                audience=self.s.oidc_audience,
                issuer=self.issuer,
                leeway=self.s.oidc_leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated(
                "登录凭证已过期，请重新登录", "the token has expired", code="token_expired"
            ) from exc
        except (jwt.InvalidTokenError, jwt.InvalidKeyError, TypeError, ValueError) as exc:
            raise _invalid("登录凭证无效", f"invalid token: {exc}") from exc
        return self.principal(claims)

    def principal(self, claims: dict[str, Any]) -> Principal:
        s = self.s
        subject = claim(claims, s.oidc_subject_claim)
        if not subject:
            raise _invalid("登录凭证缺少用户标识", f"the token has no {s.oidc_subject_claim!r}")
        role = self._role(claim(claims, s.oidc_role_claim))
        area = claim(claims, s.oidc_area_claim)
        dept = claim(claims, s.oidc_department_claim)
        grids = claim(claims, s.oidc_grids_claim) or ()
        grids = (grids,) if isinstance(grids, str) else tuple(str(g) for g in grids)
        needs_area = role in (*AREA_ROLES, Role.SUPERVISOR) or (
            role is Role.GRID_WORKER and not grids
        )
        if needs_area and not area:
            raise _invalid(
                f"登录凭证缺少辖区（{s.oidc_area_claim}）",
                f"a {role.value} token needs an area in {s.oidc_area_claim!r}",
            )
        if role is Role.DEPARTMENT and not dept:
            raise _invalid(
                f"职能部门凭证缺少部门编号（{s.oidc_department_claim}）",
                f"a department token needs {s.oidc_department_claim!r}",
            )
        return Principal(
            subject=str(subject),
            name=str(claim(claims, s.oidc_name_claim) or subject),
            role=role,
            area=str(area or ""),
            department_id=str(dept) if dept else None,
            grids=grids,
            expires_at=float(claims["exp"]),
        )

    def _role(self, value: Any) -> Role:
        values = [value] if isinstance(value, str) else list(value or ())
        mapping: dict[str, Role] = self.s.oidc_role_map or {r.value: r for r in Role}
        roles = {mapping[str(v)] for v in values if str(v) in mapping}
        if len(roles) != 1:
            why = "no Whistle role" if not roles else "several Whistle roles"
            raise _invalid(
                "登录凭证中的角色无法对应到本系统的唯一角色",
                f"the token's {self.s.oidc_role_claim!r} ({json.dumps(value)}) maps to {why}",
            )
        return roles.pop()


def verifier_from(settings: object) -> OidcVerifier | None:
    """The app's verifier, if its settings name an external provider."""
    if isinstance(settings, OidcSettings) and settings.oidc_issuer:
        return OidcVerifier(settings)
    return None
