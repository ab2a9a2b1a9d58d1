"""Who may call the Open311 routes: GeoReport's ``api_key`` carries one of our bearer tokens.

``api_key`` is read from the query string or the form body, then the usual
``Authorization: Bearer`` header; the role rule is the same as intake's own routes, and the
case's scope is checked by the handlers. A ``Rule``, so the route matrix test finds it.
"""

from __future__ import annotations


from typing import ClassVar

from fastapi import Request

from shared.auth import Principal, Rule, Unauthenticated, authenticate, verify_for

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

    security = (*Rule.security, {"open311ApiKey": []})
    security_schemes: ClassVar[dict[str, dict[str, str]]] = {
        "open311ApiKey": {
            "type": "apiKey",
            "in": "query",
            "name": "api_key",
            "description": "GeoReport v2 的 api_key：登录令牌，也可放在表单字段 api_key 中 / "
            "GeoReport's api_key: the sign-in token, also accepted as the form field api_key",
        }
    }

    async def principal_of(self, request: Request) -> Principal:
        key = await api_key(request)
        if key is not None:
            return await verify_for(request.app, key)
        if not request.headers.get("authorization"):
            raise Unauthenticated(
                "需要登录：请以 api_key 参数或 Authorization: Bearer 头提供凭证",
                "authentication required: send api_key=<token> or 'Authorization: Bearer <token>'",
                code="unauthenticated",
            )
        return await authenticate(request)


class ResidentOrStaffRule(ApiKeyRule):
    """GeoReport's ``api_key`` is optional where a resident may act without an account:
    no credential at all is a resident (None); a credential sent is checked as ever (a bad
    or expired one is 401, never taken for a resident), and its role must be allowed."""

    security = (*ApiKeyRule.security, {})  # {}: a resident sends no credential

    def __repr__(self) -> str:
        return f"resident or {super().__repr__()}"

    async def __call__(self, request: Request) -> Principal | None:
        if await api_key(request) is None and not request.headers.get("authorization"):
            return None
        return await super().__call__(request)
