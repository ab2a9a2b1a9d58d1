"""Who may call the Open311 routes: GeoReport's ``api_key`` carries one of our bearer tokens.

``api_key`` is read from the query string or the form body, then the usual
``Authorization: Bearer`` header; the role rule is the same as intake's own routes, and the
case's scope is checked by the handlers. A ``Rule``, so the route matrix test finds it.
"""

from __future__ import annotations


from fastapi import Request

from shared.auth import Principal, Rule, Unauthenticated, authenticate, verify

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

    async def principal_of(self, request: Request) -> Principal:
        key = await api_key(request)
        if key is not None:
            return verify(request.app.state.token_keys, key)
        if not request.headers.get("authorization"):
            raise Unauthenticated(
                "需要登录：请以 api_key 参数或 Authorization: Bearer 头提供凭证",
                "authentication required: send api_key=<token> or 'Authorization: Bearer <token>'",
                code="unauthenticated",
            )
        return authenticate(request)
