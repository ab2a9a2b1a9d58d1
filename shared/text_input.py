"""Refuse the NUL character (U+0000) in request input, once for every route of every service.

PostgreSQL's ``text`` cannot hold NUL: without this check a ``\\u0000`` in a JSON field, a
query or path parameter, a form field or a header reaches asyncpg and answers 500. The app
installs :func:`reject_nul` as a dependency of every route (``create_service_app``), so it
runs after FastAPI has read the body (the parsed JSON and form are cached on the request)
and before the route's own dependencies and handler — nothing is written. File parts of a
multipart upload are bytes and may contain NUL; only the text fields are checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from shared.errors import Invalid

NUL = "\x00"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class NulCharacter(Invalid):
    code = "nul_character"

    def __init__(self, where: str) -> None:
        super().__init__(
            f"请求内容无效 — {where}: 不允许包含空字符（NUL, U+0000）",
            f"Invalid request — {where}: the NUL character (U+0000) is not allowed",
        )


def _in_json(value: Any, where: str) -> Iterator[str]:
    """Locations (``body.a.0.b``) of every key or string holding NUL in a parsed JSON value."""
    if isinstance(value, str):
        if NUL in value:
            yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield where
            yield from _in_json(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _in_json(item, f"{where}.{index}")


async def _body_location(request: Request) -> str | None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _FORM_TYPES:
        form = await request.form()  # cached: FastAPI read it already for a form route
        for key, value in form.multi_items():
            if NUL in key or (not isinstance(value, UploadFile) and NUL in value):
                return f"form.{key}"
        return None
    if content_type == "application/json" or content_type.endswith("+json"):
        body = await request.body()  # cached
        if b"\\u0000" not in body:  # the only way NUL can appear in valid JSON
            return None
        try:
            parsed = await request.json()
        except ValueError:
            return None  # FastAPI reports malformed JSON itself
        return next(_in_json(parsed, "body"), None)
    return None


async def reject_nul(request: Request) -> None:
    """FastAPI dependency: 422 ``nul_character`` if any text input holds NUL."""
    if NUL in request.scope.get("path", ""):
        raise NulCharacter("path")
    for key, value in request.query_params.multi_items():
        if NUL in key or NUL in value:
            raise NulCharacter(f"query.{key}".replace(NUL, "\\u0000"))
    for name, value in request.scope.get("headers") or ():
        if b"\x00" in name or b"\x00" in value:
            raise NulCharacter(f"header.{name.decode('latin-1')}".replace(NUL, "\\u0000"))
    where = await _body_location(request)
    if where is not None:
        raise NulCharacter(where.replace(NUL, "\\u0000"))
