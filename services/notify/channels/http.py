"""One bounded HTTP POST and the classification every HTTP channel shares.

Transport failures (connect, read, timeout) are transient; an HTTP status is classified
by ``domain.is_transient`` (408, 425, 429 and 5xx transient; other non-2xx permanent; 410
Gone means the endpoint is gone for good). Vendors that answer 200 with an error code in the
JSON body classify that body themselves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from services.notify import domain
from services.notify.channels.base import USER_AGENT, DeliveryResult, SendContext
from services.notify.channels.targets import PrivateTarget

JSON_HEADERS = {"content-type": "application/json; charset=utf-8", "user-agent": USER_AGENT}


def json_bytes(payload: Any) -> bytes:
    """UTF-8 JSON, Chinese kept as is (vendors and the Standard Webhooks signature see the
    exact bytes we sign)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def post(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    *,
    content: bytes,
    headers: dict[str, str],
    within: float,
) -> httpx.Response | DeliveryResult:
    """POST once within ``within`` seconds (connect to last byte). A response of any
    status comes back as is; a transport failure comes back as a transient result."""
    try:
        async with asyncio.timeout(within):
            return await client.post(url, content=content, headers=headers, timeout=within)
    except PrivateTarget as exc:  # fix the settings: trying again cannot help
        return DeliveryResult.fail("private_target", str(exc))
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
        return DeliveryResult.retry(
            f"HTTP {status}", detail, rate_limited=status == 429, retry_after=retry_after(resp)
        )
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
    if has_code and (
        domain.is_success(resp.status_code) or not domain.is_transient(resp.status_code)
    ):
        return body
    failed = status_result(resp)
    if failed is not None:
        return failed
    return DeliveryResult.fail(
        "not_json", f"HTTP {resp.status_code} without the vendor's answer: {resp.text[:200]}"
    )


async def post_to_robot(
    ctx: SendContext,
    url: str | httpx.URL,
    payload: Any,
    classify: Callable[[dict[str, Any]], DeliveryResult],
    *code_fields: str,
) -> DeliveryResult:
    """A chat robot's one attempt: POST ``payload`` as JSON, then let the vendor's
    ``classify`` read the error code it answers with (see :func:`vendor_json`)."""
    resp = await post(
        ctx.client(), url, content=json_bytes(payload), headers=JSON_HEADERS, within=ctx.timeout
    )
    if isinstance(resp, DeliveryResult):
        return resp
    answer = vendor_json(resp, *code_fields)
    return answer if isinstance(answer, DeliveryResult) else classify(answer)


def errcode_classifier(
    vendor: str,
    *,
    rate_limited: Collection[Any],
    busy: Collection[Any] = (),
    gone: Collection[Any] = (),
) -> Callable[[Mapping[str, Any]], DeliveryResult]:
    """How to read a robot that answers ``{"errcode", "errmsg"}`` (WeCom, DingTalk): by
    :func:`code_result`, with the vendor's own rate-limit, busy and gone codes."""

    def classify(answer: Mapping[str, Any]) -> DeliveryResult:
        return code_result(
            answer,
            answer.get("errcode"),
            answer.get("errmsg", ""),
            field="errcode",
            vendor=vendor,
            rate_limited=rate_limited,
            busy=busy,
            gone=gone,
        )

    return classify


def code_result(
    answer: Mapping[str, Any],
    code: Any,
    msg: Any,
    *,
    field: str,
    vendor: str,
    rate_limited: Collection[Any],
    busy: Collection[Any] = (),
    gone: Collection[Any] = (),
    limited: bool = False,
) -> DeliveryResult:
    """A robot's answer by its error ``code`` (named ``field`` in the result's code): 0 is
    sent; a rate-limit code (or ``limited``) and a "busy" code are transient; a missing or
    non-integer code means the answer is not the vendor's; any other code is permanent,
    ``gone`` ones saying the robot no longer exists."""
    detail = f"{field} {code}: {msg}"
    if code == 0:
        return DeliveryResult.sent(f"{field} 0", detail)
    if code in rate_limited or limited:
        return DeliveryResult.retry(f"{field} {code}", detail, rate_limited=True)
    if code in busy:
        return DeliveryResult.retry(f"{field} {code}", detail)
    if not isinstance(code, int):
        return DeliveryResult.fail(f"no_{field}", f"not a {vendor} answer: {answer}"[:300])
    return DeliveryResult.fail(f"{field} {code}", detail, gone=code in gone)
