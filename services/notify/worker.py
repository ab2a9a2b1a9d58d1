"""The delivery worker (an adapter): claims due deliveries with a lease and sends each one
through its channel (``channels.channel(kind).send``), concurrently, so that a slow or dead
endpoint holds one slot and never the others; every attempt has its own timeout.

A claim tries a few times in line (tenacity: short, jittered pauses) while the failure
looks transient; then the delivery is rescheduled with capped exponential backoff and
jitter (``domain.retry_delay``, at least what a ``Retry-After`` or a robot's "too fast"
asks); after the last scheduled attempt, or at once for a permanent refusal, the channel is
given up: the delivery is kept as 'dead' (replayable) and the recipient's next channel gets
a delivery of its own. Robots are paced: when more messages are due for one robot than its
minute has room for, they go as one digest (汇总); when there is no room, they wait.

Every replica may run one: claims are leased rows (``FOR UPDATE SKIP LOCKED``) naming the
worker; a worker whose process is gone (``shared.liveness``) loses them at once, a frozen
one when the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from datetime import datetime
from typing import Any

import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.notify import channels, domain, handlers
from services.notify.channels import DeliveryResult, Message, SendContext, send_bounded, targets
from services.notify.config import Settings
from services.notify.domain import Channel, RobotPlan
from services.notify.handlers import RetryPolicy
from services.notify.handlers.events import SERVICE
from services.notify.repository import Claim
from services.notify.sealing import UNREADABLE, SecretBox
from shared.clock import utcnow
from shared import liveness, metrics
from shared.db import TRANSIENT_DB_ERRORS
from shared.service import Runtime

log = structlog.get_logger()


class _TryAgain(Exception):
    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.detail or result.code)
        self.result = result


def message_for(claim: Claim, *, digest_of: list[Claim] | None = None) -> Message:
    """What the recipient is told on this channel, in his language. A webhook receives the
    whole event body (both languages); the others the facts an SMS template may need."""
    data = claim.payload.get("data", {})
    locale = claim.recipient.preferences.locale
    lang = "en" if locale.startswith("en") else "zh"
    msg_id = domain.webhook_message_id(str(claim.event_id), claim.recipient_id)
    if digest_of:
        title, text = domain.digest([c.payload for c in digest_of], lang == "en")
        # Notify's own markdown (its titles, its links): sent as it is, not made literal.
        return Message(
            id=f"{msg_id}_digest",
            title=title,
            text=text,
            markdown=f"**{title}**\n\n{text}",
            urgent=any(c.urgent for c in digest_of),
            locale=locale,
            kind="notify.digest",
            data={"count": str(len(digest_of))},
        )
    facts = data.get("facts", {})
    return Message(
        id=msg_id,
        title=data.get("title", {}).get(lang, ""),
        text=data.get("text", {}).get(lang, ""),
        link=data.get("link"),
        urgent=claim.urgent,
        locale=locale,
        kind=claim.payload.get("type", claim.type),
        data=data if claim.channel is Channel.WEBHOOK else facts,
    )


def settings_for(claim: Claim) -> Any | DeliveryResult:
    """The channel's typed settings as the recipient has them now, or why they cannot be
    used (removed, no longer valid, or sealed with a key no longer configured: permanent,
    the next channel takes over)."""
    pref = next((c for c in claim.recipient.channel_list() if c.kind is claim.channel), None)
    if pref is None:
        return DeliveryResult.fail(
            "not_configured", "接收方已不再使用该渠道 / the recipient no longer has this channel"
        )
    if UNREADABLE in pref.settings or UNREADABLE in pref.settings.values():
        return DeliveryResult.fail(
            "secrets_unreadable",
            "渠道设置无法用当前密钥解密 / the "
            "channel's settings cannot be opened with the configured keys",
        )
    try:
        return channels.validate_settings(claim.channel.value, pref.settings)
    except channels.InvalidSetting as exc:
        return DeliveryResult.fail("invalid_settings", exc.en)


def destination(claim: Claim, settings: Any) -> str | None:
    url = getattr(settings, "url", None)
    return domain.robot_destination(claim.channel.value, url) if claim.channel.robot else None


class DeliveryWorker:
    def __init__(
        self, rt: Runtime, settings: Settings, clock: Callable[[], datetime], box: SecretBox
    ) -> None:
        self._rt = rt
        self._s = settings
        self._clock = clock
        self._box = box
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task | None = None
        # Its claims name it; it holds its liveness (shared.liveness) while it runs, so when
        # its process dies another worker sends what it had taken at once, not after the lease.
        self.worker_id = f"notify-{uuid.uuid4().hex[:12]}"
        self._stopping = asyncio.Event()
        self._alive = asyncio.Event()
        self._liveness: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._recording: set[asyncio.Task] = set()
        self._policy = RetryPolicy(
            settings.delivery_max_attempts,
            settings.delivery_backoff_base_seconds,
            settings.delivery_backoff_max_seconds,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        client = httpx.AsyncClient if self._s.allow_private_targets else targets.public_only_client
        self._client = client(
            timeout=self._s.delivery_timeout_seconds,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=self._s.delivery_max_in_flight),
        )
        self._liveness = asyncio.create_task(
            liveness.keep(
                self._s.database_url.get_secret_value(),
                self.worker_id,
                stopping=self._stopping,
                held=self._alive,
                retry_interval=self._s.delivery_poll_interval_seconds,
            ),
            name="delivery-worker-liveness",
        )
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let in-flight sends finish (bounded); what is cut off stays
        pending and is taken again by the next worker (the liveness goes last)."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:
            _, unfinished = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        if self._recording:  # outcomes of sends that did go out: written, not cut off
            await asyncio.wait(set(self._recording), timeout=grace)
        if self._client:
            await self._client.aclose()
        self._stopping.set()  # not before: the liveness reconnects until the sends are over
        if self._liveness:
            self._liveness.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._liveness

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        await liveness.first_held(self._alive, self._s.delivery_poll_interval_seconds * 5)
        while True:
            claimed = 0
            try:
                claimed = await self.dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("delivery_claim_failed", error=repr(exc))
            if claimed < self._s.delivery_batch_size:
                await asyncio.sleep(self._s.delivery_poll_interval_seconds)

    async def dispatch_due(self) -> int:
        """Claim what is due (as many as free slots allow) and start sending: each delivery
        on its own, a robot's deliveries together (they share its rate window)."""
        free = self._s.delivery_max_in_flight - len(self._in_flight)
        if free <= 0:
            return 0
        claims = await handlers.claim_due(
            self._rt.get_pool(),
            min(free, self._s.delivery_batch_size),
            self._s.delivery_lease_seconds,
            self._clock(),
            self._box,
            self.worker_id,
        )
        robots: dict[str, list[tuple[Claim, Any]]] = defaultdict(list)
        for claim in claims:
            settings = settings_for(claim)
            dest = None if isinstance(settings, DeliveryResult) else destination(claim, settings)
            if dest is None:
                self._spawn(self.deliver(claim, settings), f"delivery-{claim.id}")
            else:
                robots[dest].append((claim, settings))
        for dest, group in robots.items():
            self._spawn(self.deliver_to_robot(dest, group), f"robot-{dest}")
        return len(claims)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    # -- sending -----------------------------------------------------------------------------

    async def deliver(self, claim: Claim, settings: Any, dest: str | None = None) -> None:
        structlog.contextvars.bind_contextvars(
            delivery_id=claim.id, case_id=str(claim.case_id), event_id=str(claim.event_id)
        )
        pool = self._rt.get_pool()
        try:
            result = (
                settings
                if isinstance(settings, DeliveryResult)
                else await self._send_with_retries(claim, message_for(claim), settings)
            )
            if result.ok:  # nothing but the one UPDATE between the answer and the mark
                await self._record(
                    lambda: handlers.delivery_sent(
                        pool, claim, result, now=self._clock(), destination=dest
                    )
                )
            else:
                await self._record(
                    lambda: handlers.delivery_failed(
                        pool, claim, result, now=self._clock(), policy=self._policy
                    )
                )
        except Exception as exc:  # not the endpoint's fault: the lease hands it out again
            log.exception("delivery_error", error=repr(exc))

    async def deliver_to_robot(self, dest: str, group: list[tuple[Claim, Any]]) -> None:
        """Pace one robot: each message while its minute has room, else one digest, else
        wait for room (no attempt used)."""
        pool = self._rt.get_pool()
        try:
            now = self._clock()
            sent = await handlers.robot_window(pool, dest, now)
            pacing = domain.pace_robot(len(group), sent, now, self._s.robot_messages_per_minute)
            if pacing.plan is RobotPlan.EACH:
                await asyncio.gather(*(self.deliver(c, s, dest) for c, s in group))
            elif pacing.plan is RobotPlan.WAIT:
                assert pacing.wait_until is not None
                for claim, _ in group:
                    await self._record(
                        partial(
                            handlers.delivery_held,
                            pool,
                            claim,
                            until=pacing.wait_until,
                            reason="机器人本分钟消息已满，稍后合并发送 / "
                            "the robot's minute is full; sent later, together",
                        )
                    )
            else:
                await self._send_digest(dest, group)
        except Exception as exc:
            log.exception("robot_delivery_error", error=repr(exc))

    async def _send_digest(self, dest: str, group: list[tuple[Claim, Any]]) -> None:
        pool = self._rt.get_pool()
        (carrier, settings), rest = group[0], [c for c, _ in group[1:]]
        message = message_for(carrier, digest_of=[c for c, _ in group])
        result = await self._send_with_retries(carrier, message, settings)
        now = self._clock()
        if result.ok:
            await self._record(
                lambda: handlers.digest_sent(pool, carrier, rest, result, now=now, destination=dest)
            )
            return
        for claim, _ in group:
            await self._record(
                partial(handlers.delivery_failed, pool, claim, result, now=now, policy=self._policy)
            )

    async def _send_with_retries(
        self, claim: Claim, message: Message, settings: Any
    ) -> DeliveryResult:
        assert self._client is not None
        channel = channels.channel(claim.channel.value)
        # Signatures (webhook-timestamp, DingTalk's and Feishu's timestamps, an SMS gateway's,
        # an email's Date) carry the wall clock, not self._clock: a receiver checks them
        # against its own clock within minutes, and self._clock only schedules (tests move
        # it hours on to pass backoff and quiet hours).
        ctx = SendContext(
            http=self._client,
            timeout=self._s.delivery_timeout_seconds,
            clock=utcnow,
            public_only=not self._s.allow_private_targets,
        )

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info(
                "delivery_attempt_failed",
                attempt=state.attempt_number,
                error=str(exc),
                channel=claim.channel.value,
            )

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._s.delivery_inline_attempts),
                wait=wait_exponential_jitter(multiplier=0.2, max=2, jitter=0.2),
                # a robot's "too fast" is not retried in line: it waits for its minute
                retry=retry_if_exception(
                    lambda e: isinstance(e, _TryAgain) and not e.result.rate_limited
                ),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    started = time.monotonic()
                    result = await send_bounded(channel, message, settings, ctx)
                    metrics.DELIVERY_ATTEMPT_SECONDS.labels(
                        SERVICE,
                        claim.channel.value,
                        result.outcome.value,
                    ).observe(time.monotonic() - started)
                    if result.transient:
                        raise _TryAgain(result)
                    return result
        except _TryAgain as exc:
            return exc.result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _record(self, write: Callable[[], Awaitable[object]]) -> None:
        """Write the outcome, retrying briefly if the database blinks (else the lease
        runs out and the delivery is sent again: at least once, deduplicated by its id).

        The write is shielded from cancellation: once a message has gone out, stopping the
        worker (``stop`` cancels sends that outlive their grace) must not cut the mark that
        says so, which would send it again after the lease. ``stop`` waits for it."""
        task = asyncio.create_task(self._write(write), name="delivery-record")
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)
        await asyncio.shield(task)

    @staticmethod
    async def _write(write: Callable[[], Awaitable[object]]) -> None:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(3),
            wait=wait_exponential_jitter(multiplier=0.2, max=2),
            retry=retry_if_exception(lambda e: isinstance(e, TRANSIENT_DB_ERRORS)),
            reraise=True,
        ):
            with attempt:
                await write()
