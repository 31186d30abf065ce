"""Webhook delivery logic over ports: a job outcome becomes a recorded delivery at once
(never a request: a slow receiver must not hold up the consumer), and each attempt is
made, signed and recorded on its own, when the delivery is due.

A stage's outcome (audio, voiceover, video, merge) is delivered the same way, as
``stage.completed`` / ``stage.failed``, when the job's spec sets ``callback_stages``.

An attempt re-checks the callback URL first (its DNS may have changed since the job was
accepted): a refused URL ends the delivery, and no request is made. Then it signs the
body with every live secret of the tenant and POSTs it; 2xx is success, 410 Gone ends
the delivery, anything else (or no answer) is tried again on the schedule until the
delivery is a day old.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from schemas import Event
from schemas.names import parent_job_id
from services.common.callbacks import CallbackRefused
from services.common.obs import metrics, trace
from services.common.obs.logs import bind
from services.common.ports import Clock
from services.common.redact import redact
from services.webhooks.plan import (
    GAVE_UP,
    NOT_SENT,
    OUTCOMES,
    RETRYING,
    SENT,
    STAGE_OUTCOMES,
    Attempt,
    Delivery,
    Doc,
    Outcome,
    Schedule,
    StageOutcome,
    body,
    message_id,
    stage_body,
    stage_type,
)
from services.webhooks.signing import headers

log = logging.getLogger(__name__)

# The metric's outcome words (deploy/observability's rules and panels use them).
_METRIC_OUTCOME = {SENT: "delivered", RETRYING: "retry", GAVE_UP: "failed", NOT_SENT: "refused"}

USER_AGENT = "Tapedeck-Webhooks/1"
NO_SECRET = "no_signing_secret"
# Longer than one attempt may take, so a live attempt is never taken over; a worker that
# died mid-attempt leaves the delivery to be picked up again after it.
LEASE = timedelta(seconds=60)


class DeliveryBook(Protocol):
    async def add(self, delivery: Delivery) -> bool:
        """Record a new delivery, due now; False when it is already there."""

    async def due(self, now: datetime, limit: int) -> list[str]: ...

    async def claim(self, msg_id: str, now: datetime, lease: timedelta) -> Delivery | None:
        """The delivery, if it is due and now leased to the caller alone."""

    async def settle(self, delivery: Delivery, attempt: Attempt) -> bool:
        """Record ``attempt`` and the state it leads to; False when another worker
        recorded this attempt first."""


class JobBook(Protocol):
    async def get(self, job_id: str) -> Doc | None:
        """The job's ``tenant_id``, ``callback_url`` and ``spec.callback_stages``."""

    async def record(self, job_id: str, attempt: Attempt) -> None:
        """Append ``attempt`` to the job's ``webhooks`` (the last ones only)."""


class SecretSource(Protocol):
    async def signing_secrets(self, tenant_id: str) -> list[str]: ...


# POST ``body`` to ``url`` with ``headers``; the HTTP status, or an exception.
Send = Callable[[str, Mapping[str, str], bytes], Awaitable[int]]
# Raises CallbackRefused when the URL may not be called (now).
CheckUrl = Callable[[str], Awaitable[object]]


def _now() -> datetime:
    return datetime.now(UTC)


def _asks_for_stages(job: Doc) -> bool:
    spec = job.get("spec")
    return isinstance(spec, dict) and spec.get("callback_stages") is True


class WebhookHandler:
    def __init__(
        self,
        *,
        book: DeliveryBook,
        jobs: JobBook,
        secrets: SecretSource,
        send: Send,
        check_url: CheckUrl,
        schedule: Schedule,
        now: Callable[[], datetime] = _now,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self._book, self._jobs, self._secrets = book, jobs, secrets
        self._send, self._check_url = send, check_url
        self._schedule = schedule
        self._now, self._clock, self._rng, self._lease = now, clock, rng, lease

    async def record(self, event: Event) -> str | None:
        """Record the delivery a job outcome (or a stage outcome of a job that asked for
        stage webhooks) needs; its id, or None when there is none to make (not an
        outcome, no callback URL, stages not asked for, already recorded)."""
        if isinstance(event, OUTCOMES):
            return await self._add(event, event.job_id, event.event_type, body(event))
        if isinstance(event, STAGE_OUTCOMES):
            job_id = parent_job_id(event.job_id)
            return await self._add(event, job_id, stage_type(event), stage_body(event),
                                   stages=True)  # fmt: skip
        return None

    async def _add(self, event: Outcome | StageOutcome, job_id: str, kind: str, payload: bytes,
                   *, stages: bool = False) -> str | None:  # fmt: skip
        job = await self._jobs.get(job_id)
        url = job.get("callback_url") if job is not None else None
        if job is None or not url:
            return None
        if stages and not _asks_for_stages(job):
            return None
        if job.get("tenant_id") != event.tenant_id:
            # Only the job's own tenant's outcome may reach its URL, signed with its secret.
            log.warning("webhook: %s for job %s names another tenant than the job; not sent",
                        event.event_type, event.job_id)  # fmt: skip
            return None
        now = self._now()
        ctx = trace.current()
        delivery = Delivery(message_id(event), job_id, event.tenant_id, kind, str(url), payload,
                            now, self._schedule.deadline(now),
                            traceparent=ctx.header() if ctx is not None else None)  # fmt: skip
        if not await self._book.add(delivery):
            return None
        return delivery.msg_id

    async def due(self, limit: int) -> list[str]:
        return await self._book.due(self._now(), limit)

    async def attempt(self, msg_id: str) -> Attempt | None:
        """Try a delivery once if it is due and no other worker is on it; what the
        attempt came to, or None when there was nothing to do."""
        delivery = await self._book.claim(msg_id, self._now(), self._lease)
        if delivery is None:
            return None
        # The attempt is a span in the outcome's trace; its request names it to the receiver.
        with (
            trace.use(trace.start(delivery.traceparent)),
            bind(job_id=delivery.job_id, tenant=delivery.tenant_id),
        ):
            return await self._attempt(delivery)

    async def _attempt(self, delivery: Delivery) -> Attempt:
        msg_id = delivery.msg_id
        n = delivery.attempts + 1
        try:
            await self._check_url(delivery.url)
        except CallbackRefused as exc:
            log.warning("webhook %s (job %s) to %s refused: %s", msg_id, delivery.job_id,
                        redact(delivery.url), exc.message)  # fmt: skip
            refused = Attempt(msg_id, delivery.event_type, n, self._now(), NOT_SENT,
                              reason=exc.message)  # fmt: skip
            return await self._settle(delivery, refused)
        at = self._now()
        secrets = await self._secrets.signing_secrets(delivery.tenant_id)
        if secrets:
            status, error, duration_ms = await self._post(delivery, secrets, at)
        else:
            status, error, duration_ms = None, NO_SECRET, None
        attempt = self._outcome(delivery, n, at, status, error, duration_ms)
        log.info("webhook %s (job %s) attempt %d to %s: %s %s", msg_id, delivery.job_id, n,
                 redact(delivery.url), status or error, attempt.outcome)  # fmt: skip
        return await self._settle(delivery, attempt)

    async def _post(
        self, delivery: Delivery, secrets: list[str], at: datetime
    ) -> tuple[int | None, str | None, int]:
        signed = headers(secrets, delivery.msg_id, int(at.timestamp()), delivery.body)
        sent = {"content-type": "application/json", "user-agent": USER_AGENT, **signed,
                **trace.http_headers()}  # fmt: skip
        start = self._clock()
        try:
            status: int | None = await self._send(delivery.url, sent, delivery.body)
            error = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The class only: an HTTP library's message may quote the URL and its token.
            status, error = None, type(exc).__name__
        return status, error, int((self._clock() - start) * 1000)

    def _outcome(
        self, delivery: Delivery, n: int, at: datetime, status: int | None,
        error: str | None, duration_ms: int | None,
    ) -> Attempt:  # fmt: skip
        tried = Attempt(delivery.msg_id, delivery.event_type, n, at, RETRYING, status=status,
                        error=error, duration_ms=duration_ms)  # fmt: skip
        if status is not None and 200 <= status < 300:
            return replace(tried, outcome=SENT)
        if status == 410:
            return replace(tried, outcome=GAVE_UP, reason="the receiver answered 410 Gone")
        next_at = self._schedule.next_at(n, self._now(), delivery.deadline, self._rng)
        if next_at is None:
            hours = self._schedule.max_age_s / 3600
            why = f"no 2xx answer in {n} attempts over {hours:g} h"
            return replace(tried, outcome=GAVE_UP, reason=why)
        return replace(tried, next_at=next_at)

    async def _settle(self, delivery: Delivery, attempt: Attempt) -> Attempt:
        metrics.WEBHOOK_DELIVERIES.labels(_METRIC_OUTCOME.get(attempt.outcome, "failed")).inc()
        if not await self._book.settle(delivery, attempt):
            log.warning("webhook %s: attempt %d was recorded by another worker",
                        delivery.msg_id, attempt.attempt)  # fmt: skip
        # On the job either way: the request was made, and the job's history says so.
        await self._jobs.record(delivery.job_id, attempt)
        return attempt
