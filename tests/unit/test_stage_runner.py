"""StageRunner and Codec with in-memory ports: every path a message can take."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest

from schemas import TOPICS, ErrorInfo, Event
from schemas.clip import ClipFailed, ClipRequested
from services.common.codec import Codec, RawMessage
from services.common.errors import PermanentError, TransientError
from services.common.retry import RetryPolicy
from services.common.stage import Outcome, StageRunner
from tests.support.events import clip_failed, clip_request
from tests.support.fakes import MemoryEmitter, MemoryLedger

TOPIC = "tapedeck.clip.requests"


def request(**kw: object) -> ClipRequested:
    return clip_request(request_id="r1", episode_id="ep1", start_ms=0, duration_ms=1000, **kw)


failed = clip_failed


def make_runner(handler, max_bytes: int = 10_000):
    emitter, ledger = MemoryEmitter(), MemoryLedger()
    runner = StageRunner(
        stage="clip",
        codec=Codec.for_topic(TOPICS.clip_requests, max_bytes),
        handler=handler,
        on_failure=failed,
        emitter=emitter,
        dead_letters=emitter,
        ledger=ledger,
        retry=RetryPolicy(3, 0.0, 0.0),
        rng=random.Random(1),
    )
    return runner, emitter


def raw(value: bytes | None, headers: tuple[tuple[str, bytes], ...] = ()) -> RawMessage:
    return RawMessage(topic=TOPIC, value=value, key=b"r1", headers=headers, partition=0, offset=7)


async def echo(event: Event) -> Sequence[Event]:
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

    async def handler(event: Event) -> Sequence[Event]:
        calls.append(event.event_id)
        return await echo(event)

    runner, emitter = make_runner(handler)
    value = request().model_dump_json().encode()
    assert await runner.process(raw(value)) is Outcome.DONE
    assert await runner.process(raw(value)) is Outcome.DUPLICATE
    assert len(calls) == 1 and len(emitter.events) == 1


async def test_transient_errors_retry_then_succeed() -> None:
    attempts = []

    async def flaky(event: Event) -> Sequence[Event]:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientError("503 from provider")
        return await echo(event)

    runner, emitter = make_runner(flaky)
    assert await runner.process(raw(request().model_dump_json().encode())) is Outcome.DONE
    assert len(attempts) == 3
    assert isinstance(emitter.events[0], ClipFailed) and emitter.events[0].error.code == "echo"


async def test_transient_errors_exhaust_into_a_retryable_failure() -> None:
    async def down(event: Event) -> Sequence[Event]:
        raise TransientError("connection refused")

    runner, emitter = make_runner(down)
    assert await runner.process(raw(request().model_dump_json().encode())) is Outcome.FAILED
    (ev,) = emitter.events
    assert isinstance(ev, ClipFailed)
    assert ev.error.retryable and ev.error.attempts == 3
    assert "connection refused" in ev.error.message


async def test_permanent_error_fails_at_once_with_its_code() -> None:
    async def bad(event: Event) -> Sequence[Event]:
        raise PermanentError("no such episode", code="episode_not_found")

    runner, emitter = make_runner(bad)
    assert await runner.process(raw(request().model_dump_json().encode())) is Outcome.FAILED
    (ev,) = emitter.events
    assert isinstance(ev, ClipFailed)
    assert (ev.error.code, ev.error.retryable, ev.error.attempts) == ("episode_not_found", False, 1)


async def test_a_bug_in_a_handler_still_answers_with_a_failure() -> None:
    async def buggy(event: Event) -> Sequence[Event]:
        raise ZeroDivisionError("oops")

    runner, emitter = make_runner(buggy)
    assert await runner.process(raw(request().model_dump_json().encode())) is Outcome.FAILED
    assert isinstance(emitter.events[0], ClipFailed)
    assert emitter.events[0].error.code == "internal_error"


def test_backoff_is_bounded_and_grows() -> None:
    policy = RetryPolicy(10, 0.1, 1.0)
    rng = random.Random(3)
    delays = [policy.delay(a, rng) for a in range(1, 10)]
    assert all(0 <= d <= 1.0 for d in delays)
    assert max(policy.delay(1, random.Random(s)) for s in range(50)) <= 0.1
