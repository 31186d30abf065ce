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
import contextlib
import enum
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from schemas import ErrorInfo, Event
from services.common.advice import AdviceWriter
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
from services.common.outage import is_outage
from services.common.ports import (
    Checkpoints,
    Clock,
    DeadLetters,
    Emitter,
    Leases,
    Ledger,
    StatusRecorder,
)
from services.common.retry import RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[Event, StageContext], Awaitable[Sequence[Event]]]
FailureFactory = Callable[[Event, ErrorInfo], Event]
# Answers an unreadable request whose sender can still be told (its envelope is intact),
# so a waiting client hears "invalid" instead of a timeout. None when it cannot.
InvalidAnswer = Callable[[RawMessage, DecodeError], Event | None]


# Names the outputs of an event (uuid5 in this namespace), see _derived.
_OUTPUTS = uuid.UUID("6f1c1c52-3a4e-4f0e-9a51-0d7b8f2b9e11")


def _derived(output: Event, stage: str, event_id: str, n: int) -> Event:
    """The ``n``-th output of an event, with the same id however often the event is
    handled: what a redelivery (or a worker that lost the event's partition while still at
    it) emits again is the same event to its consumers, whose ledgers skip it."""
    return output.model_copy(update={"event_id": uuid.uuid5(_OUTPUTS, f"{stage}:{event_id}:{n}")})


def _where(msg: RawMessage) -> str:
    return f"{msg.topic}[{msg.partition}]@{msg.offset}"


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
    # Who handles an event right now, across processes; None: this process alone runs it.
    leases: Leases | None = None
    lease_wait_s: float = 1.0
    # How many events run their handler at once (None: as many as are in hand). A worker
    # has more events in hand than that (STAGE_IN_FLIGHT): their bookkeeping overlaps.
    slots: int | None = None
    # Operator detail of a failure, from _fail to the status record of the same event.
    _details: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    # Events being handled in this process, set when their handling ends.
    _running: dict[str, asyncio.Event] = field(default_factory=dict, init=False, repr=False)
    _slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.slots is not None:
            self._slots = asyncio.Semaphore(self.slots)

    async def process(self, msg: RawMessage) -> Outcome:
        started = time.perf_counter()
        metrics.EVENTS_CONSUMED.labels(self.stage, msg.topic).inc()
        # Everything logged or emitted for this record continues the trace it came with.
        with trace.use(trace.start(msg.header(trace.TRACEPARENT))), bind(stage=self.stage):
            try:
                outcome = await self._process(msg)
            except Exception as exc:
                outcome = await self._give_up(msg, exc)
            # One line per record, with the job, event and trace bound: a job's path
            # through every service can be read from the logs alone.
            log.info("%s: %s[%s]@%s %s in %.3fs", self.stage, msg.topic, msg.partition,
                     msg.offset, outcome.value, time.perf_counter() - started)  # fmt: skip
        metrics.STAGE_OUTCOMES.labels(self.stage, outcome.value).inc()
        metrics.STAGE_DURATION.labels(self.stage, outcome.value).observe(
            time.perf_counter() - started
        )
        return outcome

    async def _give_up(self, msg: RawMessage, exc: Exception) -> Outcome:
        """A record whose handling broke outside the handler (a bug in the bookkeeping
        around it): to the DLQ, where an operator can read and replay it, rather than out
        of the agent, where it would hold its partition's commits for good."""
        log.exception("%s: giving %s up to the DLQ", self.stage, _where(msg))
        headers = dead_letter_headers(
            msg, error=f"internal error while handling: {type(exc).__name__}",
            stage=self.stage, exception=exc,
        )  # fmt: skip
        await self._dead_letter(msg, headers)
        return Outcome.DEAD_LETTER

    async def _process(self, msg: RawMessage) -> Outcome:
        try:
            event = self.codec.read(msg)
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
            answer = self._answer_invalid(msg, exc)
            if answer is not None:
                await self._steadily("emit", _where(msg), lambda: self.emitter.emit([answer]))
            return Outcome.DEAD_LETTER

        annotate(**event_fields(event))
        event_id = str(event.event_id)
        # A rebalance may hand this process an event it is still working on (Faust does not
        # wait for the events in hand): the second delivery waits for the first to end, and
        # then finds it in the ledger instead of doing the work (and paying for it) again.
        while (running := self._running.get(event_id)) is not None:
            await running.wait()
        self._running[event_id] = done = asyncio.Event()
        try:
            return await self._handle(event, event_id)
        finally:
            del self._running[event_id]
            done.set()

    def _answer_invalid(self, msg: RawMessage, exc: DecodeError) -> Event | None:
        if self.on_invalid is None:
            return None
        try:
            return self.on_invalid(msg, exc)
        except Exception:
            # The message is dead-lettered already; a reader that chokes on it must not
            # stop the agent (its event unacked, the partition would stand still).
            log.exception("%s: no answer for the unreadable %s", self.stage, _where(msg))
            return None

    async def _handle(self, event: Event, event_id: str) -> Outcome:
        # The bookkeeping around the handler waits out an outage of its server rather than
        # fail: raised out of the agent, the event would be dropped until a restart.
        # Another worker may have it in hand (it had the partition before a rebalance):
        # wait for it to finish or to let go, then do it only if it was not done.
        leases = self.leases
        if leases is None:
            held = not await self._done(event_id)
        else:
            held = await self._hold(leases, event_id)
        if not held:
            log.info("%s: %s already processed; skipping redelivery", self.stage, event_id)
            return Outcome.DUPLICATE
        if leases is None:
            return await self._handle_held(event, event_id)
        renewing = asyncio.create_task(self._renew(leases, event_id))
        try:
            return await self._handle_held(event, event_id)
        finally:
            renewing.cancel()
            # Let go at once, also when stopped mid-way: the next holder need not wait out
            # the lease (it would expire anyway if this fails).
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.wait_for(
                    leases.release(self.stage, event_id), 5))  # fmt: skip

    async def _done(self, event_id: str) -> bool:
        return await self._steadily("ledger read", event_id,
                                    lambda: self.ledger.seen(self.stage, event_id))  # fmt: skip

    async def _hold(self, leases: Leases, event_id: str) -> bool:
        """Hold the event's lease; False when the event was done, before or meanwhile.
        The ledger is read once the lease is held (and while waiting for it), not before:
        a read before the claim would have to be repeated after it anyway, as the last
        holder may finish and let go in between."""
        waited = False
        while not await self._steadily("lease", event_id,
                                       lambda: leases.claim(self.stage, event_id)):  # fmt: skip
            if await self._done(event_id):
                return False
            if not waited:
                log.info("%s: %s is in another worker's hands; waiting", self.stage, event_id)
                waited = True
            await asyncio.sleep(self.lease_wait_s)
        if await self._done(event_id):
            with contextlib.suppress(Exception):
                await leases.release(self.stage, event_id)
            return False
        return True

    async def _renew(self, leases: Leases, event_id: str) -> None:
        while True:
            await asyncio.sleep(leases.ttl_s / 3)
            try:
                if not await leases.renew(self.stage, event_id):
                    log.error("%s: lost the lease of %s to another worker", self.stage, event_id)
            except Exception as exc:  # the next renewal may get through; the lease outlasts two
                log.warning("%s: lease renewal of %s failed: %s", self.stage, event_id,
                            operator_detail(exc))  # fmt: skip

    async def _handle_held(self, event: Event, event_id: str) -> Outcome:
        status, record = self.status, self._record_key(event)
        async with self._slots or contextlib.nullcontext():
            if status is not None:
                await self._steadily("status", event_id, lambda: status.started(record, event))
            advice = AdviceWriter(status, self.stage) if status is not None else None
            outputs, outcome = await self._run(event, advice)
        outputs = [_derived(o, self.stage, event_id, n) for n, o in enumerate(outputs)]
        await self._steadily("emit", event_id, lambda: self.emitter.emit(outputs))
        if status is not None:
            # The record's progress writes land before it turns terminal (its later
            # writes are refused), but after the emit: they are not what the next stage
            # waits for.
            if advice is not None:
                await advice.settle()
            detail = self._details.pop(event_id, None)
            await self._steadily("status", event_id, lambda: status.finished(
                record, event, outputs, outcome is Outcome.FAILED, detail
            ))  # fmt: skip
        # Recorded only after the outputs are on the broker: a crash in between means the
        # event is handled again, which deterministic output keys make harmless.
        emitted = [str(e.event_id) for e in outputs]
        await self._steadily("ledger write", event_id,
                             lambda: self.ledger.record(self.stage, event_id, emitted))  # fmt: skip
        return outcome

    def _record_key(self, event: Event) -> str:
        return self.record_as(event) if self.record_as is not None else self.stage

    async def _dead_letter(self, msg: RawMessage, headers: list[tuple[str, bytes]]) -> None:
        """Until the DLQ has the message, the agent does not move past it: returning
        would let the offset be committed over a message that went nowhere."""
        await self._steadily("dead-letter write", _where(msg),
                             lambda: self.dead_letters.dead_letter(msg, headers))  # fmt: skip
        metrics.DEAD_LETTERS.labels(msg.topic).inc()

    async def _steadily(self, what: str, subject: str, step: Callable[[], Awaitable[T]]) -> T:
        """``step`` retried with backoff until it succeeds: what the event's outcome rests
        on (its ledger entry, its stage record, its outputs on the broker) is never skipped."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.retry.delay(min(attempt, 20), self.rng)
                log.error("%s: %s of %s failed (attempt %d), retrying in %.2fs: %s",
                          self.stage, what, subject, attempt, delay,
                          operator_detail(exc))  # fmt: skip
                await asyncio.sleep(delay)

    async def _run(
        self, event: Event, advice: AdviceWriter | None = None
    ) -> tuple[Sequence[Event], Outcome]:
        attempt = outages = 0
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
                advice=advice,
            )
            try:
                try:
                    await ctx.check_cancelled()
                    return await self.handler(event, ctx), Outcome.DONE
                except Exception as exc:
                    # A server out of reach is waited out until the event's deadline, and
                    # does not count as an attempt: the job pauses instead of failing.
                    if not is_outage(exc):
                        raise
                    if self.clock() >= deadline:
                        return self._fail(event, exc, "transient_exhausted", True, attempt)
                    outages += 1
                    delay = min(self.retry.delay(min(outages, 20), self.rng),
                                max(0.0, deadline - self.clock()))  # fmt: skip
                    log.warning("%s: a server is out of reach on %s, retrying in %.2fs: %s",
                                self.stage, event.event_id, delay,
                                operator_detail(exc))  # fmt: skip
                    attempt -= 1
                    await asyncio.sleep(delay)
                    continue
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
