"""Who may call the Open311 routes: GeoReport's ``api_key`` carries one of our bearer tokens.

``api_key`` is read from the query string or the form body, then the usual
``Authorization: Bearer`` header; the role rule is the same as intake's own routes, and the
case's scope is checked by the handlers. A ``Rule``, so the route matrix test finds it.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request

from shared.auth import ROLE_ZH, Forbidden, Principal, Role, Rule, Unauthenticated, verify

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def api_key(request: Request) -> str | None:
    """The api_key parameter, query first, then the form body; empty counts as absent."""
    key = request.query_params.get("api_key")
    content_type = request.headers.get("content-type", "")
    if not key and request.method == "POST" and content_type.startswith(_FORM_TYPES):
        value = (await request.form()).get("api_key")  # cached: the endpoint reads it again
        key = value if isinstance(value, str) else None
    return key.strip() if key and key.strip() else None


class ApiKeyRule(Rule):
    """``allow(...)`` that also accepts GeoReport's ``api_key``."""

    def __init__(self, roles: Iterable[Role]) -> None:
        super().__init__(roles)

    async def __call__(self, request: Request) -> Principal | None:
        key = await api_key(request)
        if key is None:
            if not request.headers.get("authorization"):
                raise Unauthenticated(
                    "需要登录：请以 api_key 参数或 Authorization: Bearer 头提供凭证",
                    "authentication required: send api_key=<token> or "
                    "'Authorization: Bearer <token>'",
                    code="unauthenticated",
                )
            return await super().__call__(request)
        principal = verify(request.app.state.token_keys, key)
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
