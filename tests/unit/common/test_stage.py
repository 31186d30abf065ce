"""StageRunner and Codec with in-memory ports: every path a message can take, retries that
resume from checkpoints, and the order of emit and ledger."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pymongo.errors import ConnectionFailure

from schemas import TOPICS, ErrorInfo, Event
from schemas.clip import ClipFailed, ClipRequested
from schemas.codes import Code
from schemas.names import Stage
from services.common.clip_rules import ClipRejected
from services.common.codec import Codec, DecodeError, RawMessage
from services.common.context import StageContext
from services.common.errors import PermanentError, TransientError
from services.common.job_store import JobStatusRecorder, StageStatus
from services.common.obs import trace
from services.common.obs.logs import bound
from services.common.retry import RetryPolicy
from services.common.stage import Handler, InvalidAnswer, Outcome, StageRunner
from tests.support.events import clip_failed, clip_request
from tests.support.fakes import (
    FakeClock,
    MemoryCheckpoints,
    MemoryEmitter,
    MemoryJobs,
    MemoryLeases,
    MemoryLedger,
)

TOPIC = "tapedeck.clip.requests"


def request(**kw: object) -> ClipRequested:
    return clip_request(request_id="r1", episode_id="ep1", start_ms=0, duration_ms=1000, **kw)


failed = clip_failed


class BoundedRunner(StageRunner):
    """A StageRunner whose ``process`` gives up after a few seconds, so a change that makes
    it loop fails a test instead of hanging it. (Waiting out a dead-letter write that never
    lands is still observable: with a shorter timeout of the test's own.)"""

    async def process(self, msg: RawMessage) -> Outcome:
        async with asyncio.timeout(5):
            return await super().process(msg)


class CapRecorder(random.Random):
    """An rng that never waits: each backoff delay comes out 0 and its cap is kept."""

    def __init__(self) -> None:
        super().__init__(1)
        self.caps: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        self.caps.append(b)
        return 0.0


class World:
    def __init__(
        self,
        handler: Handler,
        max_bytes: int = 10_000,
        attempts: int = 3,
        *,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        on_invalid: InvalidAnswer | None = None,
    ) -> None:
        self.emitter, self.ledger = MemoryEmitter(), MemoryLedger()
        self.checkpoints, self.jobs, self.clock = MemoryCheckpoints(), MemoryJobs(), FakeClock()
        self.runner = BoundedRunner(
            stage=Stage.CLIP,
            codec=Codec.for_topic(TOPICS.clip_requests, max_bytes),
            handler=handler,
            on_failure=failed,
            emitter=self.emitter,
            dead_letters=self.emitter,
            ledger=self.ledger,
            checkpoints=self.checkpoints,
            retry=retry or RetryPolicy(attempts, 0.0, 0.0),
            status=JobStatusRecorder(self.jobs),
            on_invalid=on_invalid,
            rng=rng or random.Random(1),
            deadline_s=60.0,
            clock=self.clock,
        )


def make_runner(handler: Handler, max_bytes: int = 10_000) -> tuple[StageRunner, MemoryEmitter]:
    world = World(handler, max_bytes)
    return world.runner, world.emitter


def raw(value: bytes | None, headers: tuple[tuple[str, bytes], ...] = ()) -> RawMessage:
    return RawMessage(topic=TOPIC, value=value, key=b"r1", headers=headers, partition=0, offset=7)


async def echo(event: Event, ctx: StageContext | None = None) -> Sequence[Event]:
    return [failed(event, ErrorInfo(code="echo", message="", retryable=False, attempts=1))]


def good_dict() -> dict[str, object]:
    return json.loads(request().model_dump_json())


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe", "not valid JSON"),
        (b"{oops", "not valid JSON"),
        (b"[1,2]", "invalid event"),
        (json.dumps({**good_dict(), "event_type": "clip.nope"}).encode(), "unknown event_type"),
        (json.dumps({**good_dict(), "schema_version": 9}).encode(), "no schema_version 9"),
        (json.dumps({**good_dict(), "start_ms": "1"}).encode(), "start_ms"),
        (json.dumps({**good_dict(), "surprise": 1}).encode(), "surprise"),
        (
            json.dumps({k: v for k, v in good_dict().items() if k != "event_type"}).encode(),
            "event_type",
        ),
        (b"{" + b" " * 20_000 + b"}", "exceeds the 10000 byte limit"),
        (None, "tombstone"),
    ],
)
async def test_unreadable_messages_go_to_the_dlq_with_the_reason(
    value: bytes | None, reason: str
) -> None:
    runner, emitter = make_runner(echo)
    assert await runner.process(raw(value)) is Outcome.DEAD_LETTER
    ((msg, headers),) = emitter.dead
    assert msg.value == value
    assert reason in headers["error"].decode()
    assert headers["stage"] == b"clip"
    assert headers["attempts"] == b"1"
    assert headers["original_offset"] == b"7"
    assert emitter.events == []


async def test_event_of_another_topic_is_dead_lettered() -> None:
    runner, emitter = make_runner(echo)
    other = failed(request(), ErrorInfo(code="x", message="", retryable=False, attempts=1))
    assert await runner.process(raw(other.model_dump_json().encode())) is Outcome.DEAD_LETTER
    assert b"does not belong on topic" in emitter.dead[0][1]["error"]


async def test_replayed_dead_letter_counts_attempts_and_keeps_first_seen() -> None:
    runner, emitter = make_runner(echo)
    headers = (("attempts", b"2"), ("first_seen", b"2026-01-01T00:00:00+00:00"))
    await runner.process(raw(b"nope", headers))
    dlq = emitter.dead[0][1]
    assert dlq["attempts"] == b"3"
    assert dlq["first_seen"] == b"2026-01-01T00:00:00+00:00"


async def test_redelivered_event_has_one_effect() -> None:
    calls = []

    async def handler(event: Event, ctx: StageContext) -> Sequence[Event]:
        calls.append(event.event_id)
        return await echo(event)

    runner, emitter = make_runner(handler)
    value = request().model_dump_json().encode()
    assert await runner.process(raw(value)) is Outcome.DONE
    assert await runner.process(raw(value)) is Outcome.DUPLICATE
    assert len(calls) == 1 and len(emitter.events) == 1


async def test_transient_errors_retry_then_succeed() -> None:
    attempts = []

    async def flaky(event: Event, ctx: StageContext) -> Sequence[Event]:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientError("503 from provider")
        return await echo(event)

    runner, emitter = make_runner(flaky)
    assert await runner.process(raw(request().model_dump_json().encode())) is Outcome.DONE
    assert len(attempts) == 3
    assert isinstance(emitter.events[0], ClipFailed) and emitter.events[0].error.code == "echo"


async def test_transient_errors_exhaust_into_a_retryable_failure() -> None:
    async def down(event: Event, ctx: StageContext) -> Sequence[Event]:
        raise TransientError("connection refused")

    world = World(down)
    assert await world.runner.process(raw(request().model_dump_json().encode())) is Outcome.FAILED
    (ev,) = world.emitter.events
    assert isinstance(ev, ClipFailed)
    assert ev.error.retryable and ev.error.attempts == 3
    assert ev.error.code == "transient_exhausted"
    # The cause is for operators: on the stage record, not in the public event.
    assert "connection refused" not in ev.error.message
    doc = await world.jobs.stage("r1", Stage.CLIP)
    assert doc is not None and "connection refused" in doc["operator_detail"]
    assert doc["status"] == StageStatus.FAILED


async def test_failures_never_carry_signed_urls_or_stderr_in_public() -> None:
    url = "http://127.0.0.1:7070/tapedeck/ep.mp3?X-Amz-Credential=tapedeck-local%2F2026&X-Amz-Signature=ab"

    async def corrupt(event: Event, ctx: StageContext) -> Sequence[Event]:
        raise PermanentError(f"ffprobe could not read {url}:\n0x55d1c0 heap", code="not_audio")

    world = World(corrupt)
    await world.runner.process(raw(request().model_dump_json().encode()))
    (ev,) = world.emitter.events
    assert isinstance(ev, ClipFailed)
    assert ev.error.code == "not_audio"
    assert ev.error.message == "the media has no readable audio stream"
    doc = await world.jobs.stage("r1", Stage.CLIP)
    assert doc is not None
    assert "ffprobe could not read http://127.0.0.1:7070/tapedeck/ep.mp3" in doc["operator_detail"]
    assert "tapedeck-local" not in doc["operator_detail"]
    assert "Signature" not in doc["operator_detail"]


async def test_permanent_error_fails_at_once_with_its_code() -> None:
    async def bad(event: Event, ctx: StageContext) -> Sequence[Event]:
        raise PermanentError("no such episode", code="episode_not_found")

    runner, emitter = make_runner(bad)
    assert await runner.process(raw(request().model_dump_json().encode())) is Outcome.FAILED
    (ev,) = emitter.events
    assert isinstance(ev, ClipFailed)
    assert (ev.error.code, ev.error.retryable, ev.error.attempts) == ("episode_not_found", False, 1)


async def test_a_bug_in_a_handler_still_answers_with_a_failure() -> None:
    async def buggy(event: Event, ctx: StageContext) -> Sequence[Event]:
        raise ZeroDivisionError("oops")

    world = World(buggy)
    assert await world.runner.process(raw(request().model_dump_json().encode())) is Outcome.FAILED
    (ev,) = world.emitter.events
    assert isinstance(ev, ClipFailed)
    # A bug is not retried: another attempt would only hit it again.
    assert (ev.error.code, ev.error.retryable, ev.error.attempts) == ("internal_error", False, 1)
    doc = await world.jobs.stage("r1", Stage.CLIP)
    assert doc is not None and doc["status"] == StageStatus.FAILED
    assert doc["operator_detail"] == "ZeroDivisionError: oops"


def test_backoff_grows_with_the_attempt_and_stays_under_its_cap() -> None:
    policy = RetryPolicy(10, 0.1, 1.0)
    # Full jitter: the delay is uniform in [0, cap(attempt)]; the caps double, then stop.
    highest = [max(policy.delay(a, random.Random(s)) for s in range(200)) for a in range(1, 8)]
    assert highest[0] <= 0.1 and highest[1] <= 0.2 and highest[2] <= 0.4
    assert highest[1] > 0.1 and highest[2] > 0.2 and highest[3] > 0.4
    assert all(h <= 1.0 for h in highest) and highest[-1] > 0.9


async def test_a_retry_resumes_after_the_last_saved_checkpoint() -> None:
    calls = {"step1": 0, "step2": 0, "step3": 0}
    attempts: list[int] = []

    async def step(name: str, ctx: StageContext) -> str:
        saved = await ctx.checkpoint(name)
        if saved is not None:
            return str(saved)
        calls[name] += 1
        if name == "step3" and calls[name] == 1:
            raise TransientError("provider 503")
        result = f"{name}-done"
        await ctx.save(name, result)
        return result

    async def paid(event: Event, ctx: StageContext) -> Sequence[Event]:
        attempts.append(ctx.attempt)
        results = [await step(n, ctx) for n in ("step1", "step2", "step3")]
        return [failed(event, ErrorInfo(code="ok", message=",".join(results), retryable=False,
                                        attempts=ctx.attempt))]  # fmt: skip

    world = World(paid)
    event = request()
    assert await world.runner.process(raw(event.model_dump_json().encode())) is Outcome.DONE
    assert attempts == [1, 2]
    # Steps one and two ran once; step three ran again on the retry and then succeeded.
    assert calls == {"step1": 1, "step2": 1, "step3": 2}
    (out,) = world.emitter.events
    assert isinstance(out, ClipFailed)
    assert out.error.message == "step1-done,step2-done,step3-done"
    assert set(world.checkpoints.saved) == {
        (Stage.CLIP, str(event.event_id), name) for name in calls
    }


async def test_a_redelivered_event_resumes_from_checkpoints_saved_before_a_crash() -> None:
    generated: list[str] = []

    async def scenes(event: Event, ctx: StageContext) -> Sequence[Event]:
        for n in range(3):
            if await ctx.checkpoint(f"scene-{n}") is None:
                generated.append(f"scene-{n}")
                await ctx.save(f"scene-{n}", {"key": f"s{n}"})
                if n == 1 and len(generated) == 2:
                    raise asyncio.CancelledError  # the process dies here
        return []

    world = World(scenes)
    value = request().model_dump_json().encode()
    with pytest.raises(asyncio.CancelledError):
        await world.runner.process(raw(value))
    assert world.ledger.done == {}
    assert await world.runner.process(raw(value)) is Outcome.DONE
    assert generated == ["scene-0", "scene-1", "scene-2"]


async def test_progress_lands_on_the_stage_record_until_it_finishes() -> None:
    seen: list[dict[str, object]] = []
    world: World

    async def work(event: Event, ctx: StageContext) -> Sequence[Event]:
        for done in range(1, 4):
            await ctx.progress(done, 3, f"scene {done}")
            await asyncio.sleep(0.001)  # the work goes on; the write lands behind it
            doc = await world.jobs.stage(ctx.job_id, ctx.stage)
            assert doc is not None
            seen.append(dict(doc["progress"]))
        return await echo(event)

    world = World(work)
    await world.runner.process(raw(request().model_dump_json().encode()))
    assert [p["percent"] for p in seen] == [33, 66, 100]
    assert seen[0] == {"done": 1, "total": 3, "percent": 33, "note": "scene 1", "attempt": 1}
    doc = await world.jobs.stage("r1", Stage.CLIP)
    assert doc is not None and doc["status"] == StageStatus.COMPLETED
    # A finished stage takes no more progress: a late writer cannot reopen it.
    assert not await world.jobs.record_progress("r1", Stage.CLIP, {"progress": {"done": 0}})
    assert doc["progress"]["done"] == 3


async def test_a_slow_progress_write_holds_up_neither_the_work_nor_the_emit() -> None:
    gate = asyncio.Event()
    order: list[str] = []
    world: World

    class SlowRecorder(JobStatusRecorder):
        async def progress(self, stage: str, event: Event, fields: Mapping[str, Any]) -> None:
            await gate.wait()
            order.append(f"progress {fields['progress']['done']}")
            await super().progress(stage, event, fields)

        async def finished(self, stage: str, event: Event, outputs: Sequence[Event],
                           failed: bool, detail: str | None = None) -> None:  # fmt: skip
            order.append("finished")
            await super().finished(stage, event, outputs, failed, detail)

    async def work(event: Event, ctx: StageContext) -> Sequence[Event]:
        for done in range(1, 5):
            await ctx.progress(done, 4)
            await asyncio.sleep(0)  # the first write goes out, and waits at the gate
        order.append("handler returned")
        return await echo(event)

    world = World(work)
    world.runner = dataclasses.replace(world.runner, status=SlowRecorder(world.jobs))
    emitted, emit = asyncio.Event(), world.emitter.emit

    async def emit_and_tell(events: Sequence[Event]) -> None:
        await emit(events)
        emitted.set()

    world.emitter.emit = emit_and_tell  # type: ignore[method-assign]
    task = asyncio.create_task(world.runner.process(raw(request().model_dump_json().encode())))
    await asyncio.wait_for(emitted.wait(), 5)
    # Emitted while the first write still waits; the record is not finished before it.
    assert order == ["handler returned"]
    gate.set()
    assert await task is Outcome.DONE
    # The first write, then the three put meanwhile as one (the newest wins), then the end.
    assert order == ["handler returned", "progress 1", "progress 4", "finished"]
    doc = await world.jobs.stage("r1", Stage.CLIP)
    assert doc is not None and doc["status"] == StageStatus.COMPLETED
    assert doc["progress"]["done"] == 4


async def test_the_context_carries_job_attempt_and_deadline() -> None:
    seen: list[tuple[str, int, float]] = []
    world: World

    async def slow(event: Event, ctx: StageContext) -> Sequence[Event]:
        seen.append((ctx.job_id, ctx.attempt, ctx.remaining_s()))
        world.clock.advance(25)
        if ctx.attempt < 3:
            raise TransientError("again")
        assert ctx.expired() is True
        return []

    world = World(slow)
    await world.runner.process(raw(request().model_dump_json().encode()))
    # One deadline for the event, all attempts included.
    assert seen == [("r1", 1, 60.0), ("r1", 2, 35.0), ("r1", 3, 10.0)]


async def test_every_output_is_stored_on_the_stage_record() -> None:
    async def two(event: Event, ctx: StageContext) -> Sequence[Event]:
        first = await echo(event)
        second = failed(event, ErrorInfo(code="two", message="", retryable=False, attempts=1))
        return [*first, second]

    world = World(two)
    await world.runner.process(raw(request().model_dump_json().encode()))
    doc = await world.jobs.stage("r1", Stage.CLIP)
    assert doc is not None
    assert [o["error"]["code"] for o in doc["outputs"]] == ["echo", "two"]


async def test_an_emit_that_fails_is_retried_before_the_ledger_records_it() -> None:
    world = World(echo)
    world.emitter.fail_emits = 2
    value = request().model_dump_json().encode()
    # Raised out of the agent, the event would be dropped until a restart: it is retried
    # until the broker has the outputs, and only then recorded as done.
    assert await world.runner.process(raw(value)) is Outcome.DONE
    assert world.emitter.fail_emits == 0 and len(world.emitter.events) == 1
    assert len(world.ledger.done) == 1


async def test_an_emit_that_never_lands_never_records_the_event() -> None:
    world = World(echo)
    world.emitter.fail_emits = 10**9
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(world.runner.process(raw(request().model_dump_json().encode())), 0.2)
    # Not recorded, so the redelivery after a restart does the work again.
    assert world.ledger.done == {} and world.emitter.events == []


async def test_a_failing_dead_letter_write_holds_the_message_until_it_lands() -> None:
    world = World(echo)
    world.emitter.fail_dead_letters = 3
    # process() does not return (so nothing is committed) until the DLQ has it.
    assert await world.runner.process(raw(b"not json")) is Outcome.DEAD_LETTER
    assert world.emitter.fail_dead_letters == 0
    ((msg, _),) = world.emitter.dead
    assert msg.value == b"not json"


async def test_a_dead_letter_write_that_never_lands_never_returns() -> None:
    world = World(echo)
    world.emitter.fail_dead_letters = 10**9
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(world.runner.process(raw(b"not json")), 0.2)
    assert world.emitter.dead == []


async def test_the_ledger_remembers_what_an_event_produced() -> None:
    world = World(echo)
    event = request()
    await world.runner.process(raw(event.model_dump_json().encode()))
    (out,) = world.emitter.events
    assert world.ledger.done == {(Stage.CLIP, str(event.event_id)): [str(out.event_id)]}


async def test_a_rejection_written_for_the_caller_reaches_them_as_written() -> None:
    async def too_late(event: Event, ctx: StageContext) -> Sequence[Event]:
        raise ClipRejected(Code.START_PAST_END, "start_ms 70000 is past the end", "start_ms")

    world = World(too_late)
    assert await world.runner.process(raw(request().model_dump_json().encode())) is Outcome.FAILED
    (ev,) = world.emitter.events
    assert isinstance(ev, ClipFailed)
    assert (ev.error.code, ev.error.message) == (Code.START_PAST_END,
                                                 "start_ms 70000 is past the end")  # fmt: skip


@pytest.mark.parametrize(
    ("value", "exception_type"),
    [
        (b"{oops", b"pydantic_core._pydantic_core.ValidationError"),
        (json.dumps({**good_dict(), "event_type": "clip.nope"}).encode(),
         b"schemas.registry.UnknownEventType"),
        (json.dumps({**good_dict(), "schema_version": 9}).encode(),
         b"schemas.registry.UnsupportedSchemaVersion"),
        (b"x" * 10_001, b"services.common.codec.DecodeError"),
    ],
)  # fmt: skip
async def test_a_dead_letter_names_what_could_not_read_it(
    value: bytes, exception_type: bytes
) -> None:
    runner, emitter = make_runner(echo)
    await runner.process(raw(value))
    ((_, headers),) = emitter.dead
    assert headers["exception_type"] == exception_type


async def test_an_unreadable_request_with_a_readable_envelope_is_answered() -> None:
    seen: list[tuple[RawMessage, DecodeError]] = []

    def answer(msg: RawMessage, exc: DecodeError) -> Event | None:
        seen.append((msg, exc))
        return failed(request(), ErrorInfo(code="invalid", message=exc.reason, retryable=False,
                                           attempts=1))  # fmt: skip

    world = World(echo, on_invalid=answer)
    message = raw(json.dumps({**good_dict(), "start_ms": "1"}).encode())
    assert await world.runner.process(message) is Outcome.DEAD_LETTER
    ((msg, exc),) = seen
    assert msg == message and "start_ms" in exc.reason
    # Dead-lettered, and the waiting client hears why instead of timing out.
    assert [m for m, _ in world.emitter.dead] == [message]
    (ev,) = world.emitter.events
    assert isinstance(ev, ClipFailed) and ev.error.message == exc.reason


async def test_an_unreadable_message_nobody_can_be_told_about_is_only_dead_lettered() -> None:
    world = World(echo, on_invalid=lambda msg, exc: None)
    assert await world.runner.process(raw(b"not json")) is Outcome.DEAD_LETTER
    assert len(world.emitter.dead) == 1 and world.emitter.events == []


async def test_an_answer_that_fails_leaves_the_message_dead_lettered_and_the_agent_going() -> None:
    def choke(msg: RawMessage, exc: DecodeError) -> Event | None:
        raise RecursionError("maximum recursion depth exceeded")

    world = World(echo, on_invalid=choke)
    assert await world.runner.process(raw(b"[" * 5000)) is Outcome.DEAD_LETTER
    assert len(world.emitter.dead) == 1 and world.emitter.events == []
    # The next message is handled as usual.
    assert await world.runner.process(raw(request().model_dump_json().encode())) is Outcome.DONE


async def test_a_record_whose_bookkeeping_breaks_goes_to_the_dlq(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World(echo)

    def broken(**fields: object) -> None:
        raise KeyError("a bug outside the handler")

    monkeypatch.setattr("services.common.stage.annotate", broken)
    message = raw(request().model_dump_json().encode())
    assert await world.runner.process(message) is Outcome.DEAD_LETTER
    ((msg, headers),) = world.emitter.dead
    assert msg == message and headers["error"] == b"internal error while handling: KeyError"
    assert world.emitter.events == []


async def test_transient_retries_back_off_further_each_time() -> None:
    async def down(event: Event, ctx: StageContext) -> Sequence[Event]:
        raise TransientError("503")

    rng = CapRecorder()
    world = World(down, retry=RetryPolicy(4, 0.5, 100.0), rng=rng)
    await world.runner.process(raw(request().model_dump_json().encode()))
    # Jittered delays under a cap that doubles: after attempts 1, 2 and 3 (4 is the last).
    assert rng.caps == [0.5, 1.0, 2.0]


async def test_dead_letter_retries_back_off_up_to_a_ceiling() -> None:
    rng = CapRecorder()
    world = World(echo, retry=RetryPolicy(3, 1.0, 1e12), rng=rng)
    world.emitter.fail_dead_letters = 23
    assert await world.runner.process(raw(b"not json")) is Outcome.DEAD_LETTER
    # The cap doubles with each failed write until the 20th, then stays: the DLQ is
    # retried for as long as it takes, at a bounded interval.
    assert rng.caps == [2.0**n for n in range(20)] + [2.0**19] * 3
    assert len(world.emitter.dead) == 1


async def test_a_stage_may_keep_one_record_per_step() -> None:
    async def work(event: Event, ctx: StageContext) -> Sequence[Event]:
        await ctx.progress(1, 2)
        return await echo(event)

    world = World(work)
    world.runner.record_as = lambda e: f"clip.from-{getattr(e, 'start_ms', 0)}"
    await world.runner.process(raw(request().model_dump_json().encode()))
    assert await world.jobs.stage("r1", Stage.CLIP) is None
    doc = await world.jobs.stage("r1", "clip.from-0")
    assert doc is not None and doc["status"] == StageStatus.COMPLETED
    assert doc["progress"]["done"] == 1 and len(doc["outputs"]) == 1


async def test_a_cancelled_jobs_event_fails_with_cancelled_and_runs_nothing() -> None:
    calls: list[str] = []

    async def work(event: Event, ctx: StageContext) -> Sequence[Event]:
        calls.append("ran")
        return await echo(event)

    async def cancelled(event: Event) -> bool:
        return True

    world = World(work)
    world.runner.cancelled = cancelled
    assert await world.runner.process(raw(request().model_dump_json().encode())) is Outcome.FAILED
    (ev,) = world.emitter.events
    assert isinstance(ev, ClipFailed) and ev.error.code == "cancelled" and calls == []


@pytest.mark.parametrize("valid", [True, False])
async def test_the_handler_runs_in_the_records_trace_with_its_event_bound(valid: bool) -> None:
    parent = trace.start(None)
    header = parent.header() if valid else "00-" + "0" * 32 + "-00f067aa0ba902b7-01"
    seen: dict[str, str] = {}

    async def handler(event: Event, ctx: StageContext) -> Sequence[Event]:
        seen.update(bound())
        return []

    runner, _ = make_runner(handler)
    event = request()
    headers = ((trace.TRACEPARENT, header.encode()),)
    assert await runner.process(raw(event.model_dump_json().encode(), headers)) is Outcome.DONE
    assert (seen["trace_id"] == parent.trace_id) is valid and len(seen["trace_id"]) == 32
    assert seen["span_id"] != parent.span_id
    assert {k: seen[k] for k in ("job_id", "event_id", "stage", "tenant")} == {
        "job_id": "r1",
        "event_id": str(event.event_id),
        "stage": Stage.CLIP,
        "tenant": "acme",
    }
    assert trace.current() is None and bound() == {}


# -- outages, redeliveries and other workers --------------------------------------------------


class Unreachable(ConnectionFailure):
    """What pymongo raises while MongoDB cannot be reached."""


async def test_an_outage_is_waited_out_without_spending_attempts() -> None:
    calls = 0

    async def flaky(event: Event, ctx: StageContext) -> Sequence[Event]:
        nonlocal calls
        calls += 1
        if calls <= 6:  # twice the attempts the runner allows for transient errors
            world.clock.advance(1.0)
            raise Unreachable("127.0.0.1:27017: connection refused")
        assert ctx.attempt == 1
        return await echo(event)

    world = World(flaky, attempts=3)
    assert await world.runner.process(raw(request().model_dump_json().encode())) is Outcome.DONE
    assert calls == 7 and world.emitter.events[0].error.code == "echo"  # type: ignore[attr-defined]


async def test_an_outage_past_the_events_deadline_fails_it_as_retryable() -> None:
    async def down(event: Event, ctx: StageContext) -> Sequence[Event]:
        world.clock.advance(25.0)
        raise Unreachable("no server")

    world = World(down)
    assert await world.runner.process(raw(request().model_dump_json().encode())) is Outcome.FAILED
    (ev,) = world.emitter.events
    assert isinstance(ev, ClipFailed) and ev.error.code == "transient_exhausted"
    assert ev.error.retryable


async def test_bookkeeping_that_fails_is_retried_not_raised() -> None:
    world = World(echo)
    fails = {"seen": 2, "record": 2}
    seen, record = world.ledger.seen, world.ledger.record

    async def flaky_seen(stage: str, event_id: str) -> bool:
        if fails["seen"]:
            fails["seen"] -= 1
            raise Unreachable("ledger read")
        return await seen(stage, event_id)

    async def flaky_record(stage: str, event_id: str, emitted: Sequence[str]) -> None:
        if fails["record"]:
            fails["record"] -= 1
            raise Unreachable("ledger write")
        await record(stage, event_id, emitted)

    world.ledger.seen = flaky_seen  # type: ignore[method-assign]
    world.ledger.record = flaky_record  # type: ignore[method-assign]
    assert await world.runner.process(raw(request().model_dump_json().encode())) is Outcome.DONE
    assert fails == {"seen": 0, "record": 0} and len(world.ledger.done) == 1


async def test_one_event_delivered_twice_at_once_is_handled_once() -> None:
    release = asyncio.Event()
    calls = 0

    async def slow(event: Event, ctx: StageContext) -> Sequence[Event]:
        nonlocal calls
        calls += 1
        await release.wait()
        return await echo(event)

    world = World(slow)
    value = raw(request().model_dump_json().encode())
    first = asyncio.create_task(world.runner.process(value))
    second = asyncio.create_task(world.runner.process(value))
    await asyncio.sleep(0.05)
    release.set()
    assert sorted(o.value for o in await asyncio.gather(first, second)) == ["done", "duplicate"]
    assert calls == 1 and len(world.emitter.events) == 1


async def test_an_events_outputs_keep_their_ids_when_it_is_handled_again() -> None:
    world = World(echo)
    value = raw(request().model_dump_json().encode())
    await world.runner.process(value)
    world.ledger.done.clear()  # as if killed between the emit and the ledger write
    await world.runner.process(value)
    first, again = world.emitter.events
    # The same event to its consumers, whose ledgers skip the second copy.
    assert first.event_id == again.event_id and first.event_type == again.event_type


async def test_an_event_in_another_workers_hands_is_waited_for_not_redone() -> None:
    calls = 0

    async def count(event: Event, ctx: StageContext) -> Sequence[Event]:
        nonlocal calls
        calls += 1
        return await echo(event)

    world = World(count)
    leases = MemoryLeases("other-worker")
    world.runner.leases, world.runner.lease_wait_s = leases.process("this-worker"), 0.01
    event = request()
    await leases.claim(Stage.CLIP, str(event.event_id))
    waiting = asyncio.create_task(world.runner.process(raw(event.model_dump_json().encode())))
    await asyncio.sleep(0.1)
    assert not waiting.done() and calls == 0
    # The other worker finishes it and lets go: this one does not do it again.
    await world.ledger.record(Stage.CLIP, str(event.event_id), [])
    await leases.release(Stage.CLIP, str(event.event_id))
    assert await waiting is Outcome.DUPLICATE and calls == 0


async def test_an_event_whose_holder_died_is_taken_over_and_let_go() -> None:
    world = World(echo)
    leases = MemoryLeases("dead-worker")
    mine = world.runner.leases = leases.process("this-worker")
    world.runner.lease_wait_s = 0.01
    event = request()
    await leases.claim(Stage.CLIP, str(event.event_id))
    waiting = asyncio.create_task(world.runner.process(raw(event.model_dump_json().encode())))
    await asyncio.sleep(0.05)
    leases.expire(Stage.CLIP, str(event.event_id))  # its holder stopped renewing it
    assert await waiting is Outcome.DONE and len(world.emitter.events) == 1
    assert mine.held == {}


async def test_a_new_event_under_a_lease_costs_one_claim_and_one_ledger_read() -> None:
    world = World(echo)
    leases = world.runner.leases = MemoryLeases("this-worker")
    value = raw(request().model_dump_json().encode())
    assert await world.runner.process(value) is Outcome.DONE
    assert (leases.claims, world.ledger.reads) == (1, 1)
    # Its redelivery is found in the ledger after the claim, and the lease let go.
    assert await world.runner.process(value) is Outcome.DUPLICATE
    assert (leases.claims, world.ledger.reads, leases.held) == (2, 2, {})
    assert len(world.emitter.events) == 1


async def test_slots_bound_the_handlers_running_while_more_events_are_in_hand() -> None:
    running, peak, gate = 0, 0, asyncio.Event()

    async def slow(event: Event, ctx: StageContext) -> Sequence[Event]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return await echo(event)

    world = World(slow)
    runner = dataclasses.replace(world.runner, slots=2)
    values = [dataclasses.replace(raw(clip_request(request_id=f"r{n}").model_dump_json().encode()),
                                  key=f"r{n}".encode(), offset=n) for n in range(6)]  # fmt: skip
    tasks = [asyncio.create_task(runner.process(v)) for v in values]
    await asyncio.sleep(0.05)
    # Two handlers run; the other four events wait for a slot, their stage not yet started.
    assert running == 2
    statuses = [d["status"] for d in world.jobs.stages.values()]
    assert statuses.count(StageStatus.RUNNING.value) == 2 and len(statuses) == 2
    gate.set()
    assert [await t for t in tasks] == [Outcome.DONE] * 6
    assert peak == 2 and len(world.emitter.events) == 6
