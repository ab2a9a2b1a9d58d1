"""One bounded HTTP POST and the classification every HTTP channel shares.

Transport failures (connect, read, timeout) are transient; an HTTP status is classified
by ``domain.is_transient`` (408, 425, 429 and 5xx transient; other non-2xx permanent; 410
Gone means the endpoint is gone for good). Vendors that answer 200 with an error code in the
JSON body classify that body themselves.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from services.notify import domain
from services.notify.channels.base import USER_AGENT, DeliveryResult

JSON_HEADERS = {"content-type": "application/json; charset=utf-8", "user-agent": USER_AGENT}


def json_bytes(payload: Any) -> bytes:
    """UTF-8 JSON, Chinese kept as is (vendors and the Standard Webhooks signature see the
    exact bytes we sign)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def post(client: httpx.AsyncClient, url: str | httpx.URL, *, content: bytes,
               headers: dict[str, str], within: float) -> httpx.Response | DeliveryResult:
    """POST once within ``within`` seconds (connect to last byte). A response of any
    status comes back as is; a transport failure comes back as a transient result."""
    try:
        async with asyncio.timeout(within):
            return await client.post(url, content=content, headers=headers, timeout=within)
    except (httpx.TransportError, TimeoutError) as exc:
        detail = str(exc) or f"no response within {within:g}s"
        code = "timeout" if isinstance(exc, TimeoutError | httpx.TimeoutException) else "network"
        return DeliveryResult.retry(code, f"{type(exc).__name__}: {detail}")


def status_result(resp: httpx.Response) -> DeliveryResult | None:
    """None for a 2xx; else the failure the status stands for."""
    status = resp.status_code
    if domain.is_success(status):
        return None
    detail = f"HTTP {status}: {resp.text[:300]}"
    if domain.is_transient(status):
        return DeliveryResult.retry(f"HTTP {status}", detail, rate_limited=status == 429,
                                    retry_after=retry_after(resp))
    return DeliveryResult.fail(f"HTTP {status}", detail, gone=status == 410)


def retry_after(resp: httpx.Response, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), if given and sane."""
    value = resp.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        return None
    return max(0.0, (at - (now or datetime.now(UTC))).total_seconds())


def vendor_json(resp: httpx.Response, *code_fields: str) -> dict[str, Any] | DeliveryResult:
    """The JSON object a robot answers with, for the vendor to classify by its error code
    (``code_fields``: where the code may be). Robots answer 200 with the code in the body,
    and some answer 4xx with a code too (Feishu's rate limit): the code decides then. 5xx,
    429 and a 4xx without a code are classified by status. A 2xx that is not such a JSON
    object means the URL is not the vendor's robot (a proxy page, a wrong host): permanent,
    fix the settings."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    has_code = isinstance(body, dict) and any(f in body for f in code_fields)
    if has_code and (domain.is_success(resp.status_code)
                     or not domain.is_transient(resp.status_code)):
        return body
    failed = status_result(resp)
    if failed is not None:
        return failed
    return DeliveryResult.fail("not_json", f"HTTP {resp.status_code} without the vendor's "
                                           f"answer: {resp.text[:200]}")
