"""Identity and authorisation, one layer for every service.

Bearer tokens (JWT) carry the subject, display name, role, the jurisdiction node the holder
acts for (an area path such as ``YA/YA01/YA0101``; grid workers may hold several grids) and,
for department staff, the department id. An endpoint states its rule in one line::

    who: Annotated[Principal, Depends(allow(Role.COMMUNITY, Role.STREET))]

and checks the resource's scope with ``who.require_area(path)`` or
``who.require_department(dept)`` before it changes anything.

Tokens come from the built-in sign-in (``AUTH_ISSUER``, verified with ``TokenKeys``) or, when
``OIDC_ISSUER`` is set, from an external OpenID Connect provider (shared/oidc.py); a token's
``iss`` says which verifies it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import jwt
from fastapi import FastAPI, Request

from shared.contract import Actor
from shared.contract import areas as area_paths
from shared.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from shared.oidc import OidcVerifier

__all__ = [
    "PUBLIC",
    "Forbidden",
    "Principal",
    "Role",
    "Rule",
    "TokenKeys",
    "Unauthenticated",
    "allow",
    "authenticate",
    "bearer_token",
    "mint",
    "verify",
    "verify_for",
]


class Role(StrEnum):
    GRID_WORKER = "grid_worker"  # 网格员
    COMMUNITY = "community"  # 社区
    STREET = "street"  # 街道
    DISTRICT = "district"  # 区指挥中心
    DEPARTMENT = "department"  # 职能部门
    SUPERVISOR = "supervisor"  # 督办/考核
    ADMIN = "admin"  # 系统管理员


ROLE_ZH = {
    Role.GRID_WORKER: "网格员",
    Role.COMMUNITY: "社区",
    Role.STREET: "街道",
    Role.DISTRICT: "区指挥中心",
    Role.DEPARTMENT: "职能部门",
    Role.SUPERVISOR: "督办",
    Role.ADMIN: "系统管理员",
}

# Roles that govern an area subtree (community, street, district command).
AREA_ROLES = (Role.COMMUNITY, Role.STREET, Role.DISTRICT)


@dataclass(frozen=True)
class Principal:
    subject: str
    name: str
    role: Role
    area: str
    department_id: str | None = None
    grids: tuple[str, ...] = field(default_factory=tuple)
    # When the token that proved it expires (epoch seconds): a live stream ends then.
    expires_at: float | None = field(default=None, compare=False, repr=False)

    @property
    def actor(self) -> Actor:
        return Actor(subject=self.subject, role=self.role.value, name=self.name)

    @property
    def areas(self) -> tuple[str, ...]:
        """The area roots this principal may act on or read."""
        if self.role is Role.GRID_WORKER:
            return self.grids or (self.area,)
        if self.role in (*AREA_ROLES, Role.SUPERVISOR):
            return (self.area,)
        return ()

    def covers(self, area_path: str) -> bool:
        return any(area_paths.within(area_path, root) for root in self.areas)

    def require_area(self, area_path: str) -> None:
        if not self.covers(area_path):
            mine = "、".join(self.areas) or "无"
            raise Forbidden(
                f"{ROLE_ZH[self.role]}“{self.name}”无权处理辖区 {area_path} 的事项（本人辖区：{mine}）",
                f"{self.role.value} '{self.subject}' may not act on area {area_path} "
                f"(own areas: {', '.join(self.areas) or 'none'})",
                code="out_of_scope",
            )

    def require_department(self, department_id: str) -> None:
        if self.role is not Role.DEPARTMENT or self.department_id != department_id:
            raise Forbidden(
                f"只能办理本部门的派单（本部门：{self.department_id or '无'}，派单部门：{department_id}）",
                f"only the assigned department may act on this assignment "
                f"(yours: {self.department_id or 'none'}, assigned: {department_id})",
                code="not_your_assignment",
            )

    def area_filter(self) -> tuple[str, ...] | None:
        """For list endpoints: the area roots to restrict results to; None means no area
        restriction applies (department staff are restricted by department instead)."""
        return None if self.role is Role.DEPARTMENT else self.areas


# --- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenKeys:
    algorithm: str
    verify_key: Any
    sign_key: Any | None
    issuer: str
    audience: str


def mint(
    keys: TokenKeys, principal: Principal, ttl_seconds: int = 12 * 3600, now: float | None = None
) -> str:
    if keys.sign_key is None:
        raise RuntimeError("no signing key configured")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": principal.subject,
        "name": principal.name,
        "role": principal.role.value,
        "area": principal.area,
        "iss": keys.issuer,
        "aud": keys.audience,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if principal.department_id:
        claims["dept"] = principal.department_id
    if principal.grids:
        claims["grids"] = list(principal.grids)
    return jwt.encode(claims, keys.sign_key, algorithm=keys.algorithm)


def verify(keys: TokenKeys, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            keys.verify_key,
            algorithms=[keys.algorithm],
            audience=keys.audience,
            issuer=keys.issuer,
            options={"require": ["sub", "role", "area", "exp", "iat"]},
        )
        role = Role(claims["role"])
        grids = tuple(str(g) for g in claims.get("grids") or ())
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated(
            "登录凭证已过期，请重新登录", "the token has expired", code="token_expired"
        ) from exc
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise Unauthenticated(
            "登录凭证无效", f"invalid token: {exc}", code="invalid_token"
        ) from exc
    if role is Role.DEPARTMENT and not claims.get("dept"):
        raise Unauthenticated(
            "职能部门凭证缺少部门编号", "a department token needs 'dept'", code="invalid_token"
        )
    return Principal(
        subject=str(claims["sub"]),
        name=str(claims.get("name") or claims["sub"]),
        role=role,
        area=str(claims["area"]),
        department_id=claims.get("dept"),
        grids=grids,
        expires_at=float(claims["exp"]),
    )


# --- the FastAPI dependency -----------------------------------------------------------------


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, None without one."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(request: Request) -> Principal:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthenticated(
            "需要登录：请在 Authorization 头中提供 Bearer 凭证",
            "authentication required: send 'Authorization: Bearer <token>'",
            code="unauthenticated",
        )
    return await verify_for(request.app, token)


async def verify_for(app: FastAPI, token: str) -> Principal:
    """Who ``token`` proves, for this app: an external provider's token (its ``iss`` is
    ``OIDC_ISSUER``) is verified against the provider's keys, any other as a built-in one."""
    keys: TokenKeys = app.state.token_keys
    external = _external_verifier(app)
    if external is not None and _unverified_issuer(token) == external.issuer != keys.issuer:
        return await external.verify(token)
    return verify(keys, token)


def _unverified_issuer(token: str) -> str | None:
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.InvalidTokenError:
        return None
    return issuer if isinstance(issuer, str) else None


def _external_verifier(app: FastAPI) -> OidcVerifier | None:
    """The app's OIDC verifier, made once from its settings (``app.state.runtime``)."""
    try:
        verifier: OidcVerifier | None = app.state.oidc_verifier
        return verifier
    except AttributeError:
        from shared.oidc import verifier_from  # shared.oidc builds on this module

        runtime = getattr(app.state, "runtime", None)
        app.state.oidc_verifier = verifier_from(getattr(runtime, "settings", None))
        return app.state.oidc_verifier


# The OpenAPI name of the bearer-token scheme (declared by shared/api_docs.py).
BEARER = "bearerAuth"


class Rule:
    """An endpoint's authorisation rule; also what the route matrix test reads."""

    # How OpenAPI describes the credentials the rule accepts (shared/api_docs.py): the
    # alternatives, each {scheme: scopes} (``{}``: none needed), and any scheme of its own
    # beside the bearer token.
    security: ClassVar[tuple[dict[str, list[str]], ...]] = ({BEARER: []},)
    security_schemes: ClassVar[dict[str, dict[str, str]]] = {}

    def __init__(self, roles: Iterable[Role] | None, *, public: bool = False) -> None:
        self.roles = frozenset(roles or ())
        self.public = public

    def __repr__(self) -> str:
        return "PUBLIC" if self.public else f"allow({', '.join(sorted(self.roles))})"

    async def principal_of(self, request: Request) -> Principal:
        """Who is calling: the bearer token's holder (a rule may accept other credentials)."""
        return await authenticate(request)

    async def __call__(self, request: Request) -> Principal | None:
        if self.public:
            return None
        principal = await self.principal_of(request)
        if principal.role not in self.roles:
            allowed = "、".join(ROLE_ZH[r] for r in sorted(self.roles))
            raise Forbidden(
                f"{ROLE_ZH[principal.role]}无权进行此操作（允许：{allowed}）",
                f"role '{principal.role.value}' may not do this "
                f"(allowed: {', '.join(sorted(self.roles))})",
                code="role_not_allowed",
            )
        request.state.principal = principal
        return principal


def allow(*roles: Role) -> Rule:
    return Rule(roles)


PUBLIC = Rule(None, public=True)
