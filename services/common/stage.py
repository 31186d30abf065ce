"""The stage runner: decode -> idempotency check -> handler(event, ctx) -> emit -> record.

Every service's agent hands each raw record to ``StageRunner.process``. What can go
wrong has exactly one outcome each:

* unreadable message -> original bytes to ``<topic>.dlq`` with the reason; move on;
* already processed (redelivery after a rebalance or crash) -> skipped, no side effects;
* transient error -> retried with backoff, then the stage's ``*.failed`` event;
* permanent error or a bug -> the stage's ``*.failed`` event at once.

So no job is dropped silently: each accepted event ends in an output or a failure event.
Each attempt gets a :class:`~services.common.context.StageContext` whose checkpoints
outlive the attempt, so a retry resumes after the last step the handler saved.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from schemas import ErrorInfo, Event
from services.common.codec import Codec, DecodeError, RawMessage, dead_letter_headers
from services.common.context import CancelCheck, StageContext
from services.common.errors import (
    PermanentError,
    TransientError,
    operator_detail,
    public_text,
)
from services.common.obs import metrics, trace
from services.common.obs.logs import annotate, bind, event_fields
from services.common.ports import Checkpoints, Clock, DeadLetters, Emitter, Ledger, StatusRecorder
from services.common.retry import RetryPolicy

log = logging.getLogger(__name__)

Handler = Callable[[Event, StageContext], Awaitable[Sequence[Event]]]
FailureFactory = Callable[[Event, ErrorInfo], Event]
# Answers an unreadable request whose sender can still be told (its envelope is intact),
# so a waiting client hears "invalid" instead of a timeout. None when it cannot.
InvalidAnswer = Callable[[RawMessage, DecodeError], Event | None]


class Outcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


@dataclass
class StageRunner:
    stage: str
    codec: Codec
    handler: Handler
    on_failure: FailureFactory
    emitter: Emitter
    dead_letters: DeadLetters
    ledger: Ledger
    checkpoints: Checkpoints
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    status: StatusRecorder | None = None
    on_invalid: InvalidAnswer | None = None
    rng: random.Random | None = None
    # How long one event may take, all attempts included; handlers read it from the context.
    deadline_s: float = 900.0
    clock: Clock = time.monotonic
    # Names the stage record an event's status goes to, for stages that keep one record per
    # step or attempt of a job (the merger's ``merge.mux``, a regenerated ``audio.a2``).
    record_as: Callable[[Event], str] | None = None
    # Whether an event's job was cancelled: checked before the handler runs, and by the
    # handler before each expensive step (``ctx.check_cancelled()``).
    cancelled: CancelCheck | None = None
    # Operator detail of a failure, from _fail to the status record of the same event.
    _details: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    async def process(self, msg: RawMessage) -> Outcome:
        started = time.perf_counter()
        metrics.EVENTS_CONSUMED.labels(self.stage, msg.topic).inc()
        # Everything logged or emitted for this record continues the trace it came with.
        with trace.use(trace.start(msg.header(trace.TRACEPARENT))), bind(stage=self.stage):
            outcome = await self._process(msg)
            # One line per record, with the job, event and trace bound: a job's path
            # through every service can be read from the logs alone.
            log.info("%s: %s[%s]@%s %s in %.3fs", self.stage, msg.topic, msg.partition,
                     msg.offset, outcome.value, time.perf_counter() - started)  # fmt: skip
        metrics.STAGE_OUTCOMES.labels(self.stage, outcome.value).inc()
        metrics.STAGE_DURATION.labels(self.stage, outcome.value).observe(
            time.perf_counter() - started
        )
        return outcome

    async def _process(self, msg: RawMessage) -> Outcome:
        try:
            event = self.codec.decode(msg)
        except DecodeError as exc:
            log.warning(
                "%s: dead-lettering %s[%s]@%s: %s",
                self.stage,
                msg.topic,
                msg.partition,
                msg.offset,
                exc.reason,
            )
            headers = dead_letter_headers(
                msg, error=exc.reason, stage=self.stage, exception=exc.cause or exc
            )
            await self._dead_letter(msg, headers)
            metrics.DEAD_LETTERS.labels(msg.topic).inc()
            answer = self.on_invalid(msg, exc) if self.on_invalid is not None else None
            if answer is not None:
                await self.emitter.emit([answer])
            return Outcome.DEAD_LETTER

        annotate(**event_fields(event))
        event_id = str(event.event_id)
        if await self.ledger.seen(self.stage, event_id):
            log.info("%s: %s already processed; skipping redelivery", self.stage, event_id)
            return Outcome.DUPLICATE

        if self.status is not None:
            await self.status.started(self._record_key(event), event)
        outputs, outcome = await self._run(event)
        await self.emitter.emit(outputs)
        if self.status is not None:
            detail = self._details.pop(event_id, None)
            await self.status.finished(
                self._record_key(event), event, outputs, outcome is Outcome.FAILED, detail
            )
        # Recorded only after the outputs are on the broker: a crash in between means the
        # event is handled again, which deterministic output keys make harmless.
        await self.ledger.record(self.stage, event_id, [str(e.event_id) for e in outputs])
        return outcome

    def _record_key(self, event: Event) -> str:
        return self.record_as(event) if self.record_as is not None else self.stage

    async def _dead_letter(self, msg: RawMessage, headers: list[tuple[str, bytes]]) -> None:
        """Until the DLQ has the message, the agent does not move past it: returning
        would let the offset be committed over a message that went nowhere."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.dead_letters.dead_letter(msg, headers)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.retry.delay(min(attempt, 20), self.rng)
                log.error(
                    "%s: dead-letter write of %s[%s]@%s failed (attempt %d), retrying in "
                    "%.2fs: %s",
                    self.stage, msg.topic, msg.partition, msg.offset, attempt, delay,
                    operator_detail(exc),
                )  # fmt: skip
                await asyncio.sleep(delay)

    async def _run(self, event: Event) -> tuple[Sequence[Event], Outcome]:
        attempt = 0
        deadline = self.clock() + self.deadline_s
        while True:
            attempt += 1
            ctx = StageContext(
                stage=self.stage,
                event=event,
                attempt=attempt,
                deadline=deadline,
                checkpoints=self.checkpoints,
                status=self.status,
                clock=self.clock,
                record_key=self._record_key(event),
                cancelled=self.cancelled,
            )
            try:
                await ctx.check_cancelled()
                return await self.handler(event, ctx), Outcome.DONE
            except TransientError as exc:
                if attempt >= self.retry.max_attempts:
                    return self._fail(event, exc, "transient_exhausted", True, attempt)
                delay = self.retry.delay(attempt, self.rng)
                log.warning(
                    "%s: transient error on %s (attempt %d/%d), retrying in %.2fs: %s",
                    self.stage,
                    event.event_id,
                    attempt,
                    self.retry.max_attempts,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
            except PermanentError as exc:
                return self._fail(event, exc, exc.code, False, attempt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A bug must not lose the job: it fails visibly, with the exception named.
                log.exception("%s: unexpected error on %s", self.stage, event.event_id)
                return self._fail(event, exc, "internal_error", False, attempt)

    def _fail(
        self, event: Event, exc: BaseException, code: str, retryable: bool, attempts: int
    ) -> tuple[Sequence[Event], Outcome]:
        # The event is public: it says what failed in plain words. What an operator needs
        # (the exception, a tool's stderr) is logged and kept on the job record instead.
        detail = operator_detail(exc)
        log.warning("%s: %s failed with %s: %s", self.stage, event.event_id, code, detail)
        metrics.STAGE_ERRORS.labels(self.stage, code).inc()
        self._details[str(event.event_id)] = detail
        message = public_text(exc, code)
        error = ErrorInfo(code=code, message=message, retryable=retryable, attempts=attempts)
        return [self.on_failure(event, error)], Outcome.FAILED
