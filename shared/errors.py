"""Domain errors with a stable code and a message in Simplified Chinese (first) and English.

API layers map them to 4xx with ``{"error": {"code", "message"}}`` (see shared.http);
consumers treat them as deterministic failures (dead-letter topic).
"""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, zh: str, en: str, *, code: str | None = None) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en
        if code:
            self.code = code

    def message(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(DomainError):
    """The caller's role or jurisdiction does not allow this (403, with the reason)."""

    status_code = 403
    code = "forbidden"


class Conflict(DomainError):
    """The request conflicts with the current state (e.g. an action the state does not allow)."""

    status_code = 409
    code = "conflict"


class Invalid(DomainError):
    """Well-formed but semantically wrong input (unknown grid, unknown category...)."""

    status_code = 422
    code = "invalid"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, zh: str, en: str, *, retry_after: int) -> None:
        super().__init__(zh, en)
        self.retry_after = retry_after
