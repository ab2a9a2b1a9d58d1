"""The webhook delivery worker (an adapter): claims due webhook deliveries with a lease and
sends each one concurrently, so a slow or dead endpoint holds one slot, never the others.

Each POST is signed the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``) with the recipient's secret, and has its own total timeout (both
done by the webhook channel, ``services.notify.channels.webhook``). A claim tries a few
times in line (tenacity, short jittered pauses) when the failure looks transient; then the
delivery is rescheduled with capped exponential backoff and, after the last scheduled
attempt, parked as 'dead' (kept, replayable). Every replica may run one.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.notify import domain, handlers
from services.notify.channels import webhook as webhook_channel
from services.notify.config import Settings
from services.notify.repository import ClaimedWebhook
from shared.db import TRANSIENT_DB_ERRORS
from shared.service import Runtime

log = structlog.get_logger()


class DeliveryFailed(Exception):
    def __init__(self, error: str, *, transient: bool, gone: bool = False) -> None:
        super().__init__(error)
        self.error = error
        self.transient = transient
        self.gone = gone


def signed_request(claim: ClaimedWebhook, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt; signed if the recipient has a secret."""
    msg_id = domain.webhook_message_id(str(claim.event_id), claim.recipient_id)
    return webhook_channel.signed_request(msg_id, claim.payload, now, claim.webhook_secret)


class WebhookWorker:
    def __init__(self, rt: Runtime, settings: Settings) -> None:
        self._rt = rt
        self._s = settings
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self._s.webhook_timeout_seconds, follow_redirects=False,
            limits=httpx.Limits(max_connections=self._s.webhook_max_in_flight),
        )
        self._task = asyncio.create_task(self._run(), name="webhook-worker")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let in-flight sends finish (bounded); what is cut off stays
        pending and is taken again when its lease runs out."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:
            _, unfinished = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        if self._client:
            await self._client.aclose()

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            claimed = 0
            try:
                claimed = await self.dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook_claim_failed", error=repr(exc))
            if claimed < self._s.delivery_batch_size:
                await asyncio.sleep(self._s.delivery_poll_interval_seconds)

    async def dispatch_due(self) -> int:
        """Claim what is due (as many as free slots allow) and start sending each one."""
        free = self._s.webhook_max_in_flight - len(self._in_flight)
        if free <= 0:
            return 0
        claims = await handlers.claim_webhooks(
            self._rt.get_pool(), min(free, self._s.delivery_batch_size),
            self._s.webhook_lease_seconds,
        )
        for claim in claims:
            task = asyncio.create_task(self.deliver(claim), name=f"webhook-{claim.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claims)

    # -- one delivery ------------------------------------------------------------------------

    async def deliver(self, claim: ClaimedWebhook) -> None:
        structlog.contextvars.bind_contextvars(
            delivery_id=claim.id, case_id=str(claim.case_id), event_id=str(claim.event_id),
        )
        try:
            try:
                await self._send_with_retries(claim)
            except DeliveryFailed as exc:
                failed = exc
                await self._record(lambda: handlers.webhook_failed(
                    self._rt.get_pool(), claim, failed.error, gone=failed.gone,
                    max_attempts=self._s.webhook_max_attempts,
                    backoff_base=self._s.webhook_backoff_base_seconds,
                    backoff_cap=self._s.webhook_backoff_max_seconds,
                ))
            else:
                await self._record(lambda: handlers.webhook_sent(self._rt.get_pool(), claim))
        except Exception as exc:  # not the endpoint's fault: the lease hands it out again
            log.exception("webhook_delivery_error", error=repr(exc))

    async def _send_with_retries(self, claim: ClaimedWebhook) -> None:
        if not claim.webhook_url:
            raise DeliveryFailed("接收方已无 webhook 地址 / recipient has no webhook_url",
                                 transient=False, gone=True)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info("webhook_attempt_failed", attempt=state.attempt_number, error=str(exc))

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._s.webhook_inline_attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=2, jitter=0.2),
            retry=retry_if_exception(lambda e: isinstance(e, DeliveryFailed) and e.transient),
            before_sleep=before_sleep, reraise=True,
        ):
            with attempt:
                await self._post(claim.webhook_url, claim)

    async def _post(self, url: str, claim: ClaimedWebhook) -> None:
        assert self._client is not None
        try:
            body, headers = signed_request(claim, datetime.now(UTC))
        except Exception as exc:  # e.g. a stored secret that cannot be decoded
            raise DeliveryFailed(f"cannot sign: {type(exc).__name__}: {exc}",
                                 transient=False) from exc
        result = await webhook_channel.post_signed(
            self._client, url, body, headers, self._s.webhook_timeout_seconds
        )
        if not result.ok:
            raise DeliveryFailed(result.detail, transient=result.transient, gone=result.gone)

    async def _record(self, write) -> None:
        """Write the outcome, retrying briefly if the database blinks (else the lease
        runs out and the delivery is sent again: at least once, deduplicated by webhook-id)."""
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3), wait=wait_exponential_jitter(multiplier=0.2, max=2),
            retry=retry_if_exception(lambda e: isinstance(e, TRANSIENT_DB_ERRORS)), reraise=True,
        ):
            with attempt:
                await write()
