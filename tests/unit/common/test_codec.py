"""The codec: why a message is unreadable (in words a person can act on), the headers a
dead letter carries back to its origin, and the routing headers every event goes out with."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import TOPICS, ErrorInfo, Event, decode_event
from services.common.codec import (
    Codec,
    DecodeError,
    RawMessage,
    dead_letter_headers,
    event_headers,
)
from tests.support.events import clip_failed, clip_ready, clip_request

CODEC = Codec.for_topic(TOPICS.clip_requests, 100_000)
TOPIC = "tapedeck.clip.requests"


def good() -> dict[str, Any]:
    return json.loads(clip_request().model_dump_json())


def decode_error(value: bytes | dict[str, Any] | list[Any]) -> DecodeError:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    with pytest.raises(DecodeError) as exc:
        CODEC.decode(RawMessage(TOPIC, raw))
    return exc.value


def pydantic_messages(err: DecodeError) -> list[str]:
    """What pydantic said about each problem, in order (the codec adds where and how many)."""
    cause: Any = err.cause
    return [e["msg"] for e in cause.errors()]


def test_a_readable_message_decodes_to_its_event() -> None:
    event = clip_request()
    assert CODEC.decode(RawMessage(TOPIC, event.model_dump_json().encode())) == event


def test_a_tombstone_is_unreadable() -> None:
    with pytest.raises(DecodeError) as exc:
        CODEC.decode(RawMessage(TOPIC, None))
    assert exc.value.reason == "empty message (tombstone) on an event topic"


def test_the_size_limit_is_inclusive() -> None:
    value = clip_request().model_dump_json().encode()
    assert Codec.for_topic(TOPICS.clip_requests, len(value)).decode(RawMessage(TOPIC, value))
    with pytest.raises(DecodeError) as exc:
        Codec.for_topic(TOPICS.clip_requests, len(value) - 1).decode(RawMessage(TOPIC, value))
    assert exc.value.reason == (
        f"message of {len(value)} bytes exceeds the {len(value) - 1} byte limit"
    )


@pytest.mark.parametrize(
    "error",
    [
        ValueError("lone surrogate"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    ],
)
def test_any_other_parse_failure_is_unreadable_too(
    monkeypatch: pytest.MonkeyPatch, error: ValueError
) -> None:
    # Not a pydantic error: no message this codec knows of raises one today, but whatever
    # the parser raises must still end as a dead letter, never as a crashed agent.
    def parse(raw: bytes | str) -> Event:
        raise error

    monkeypatch.setattr("services.common.codec.decode_event", parse)
    err = decode_error(good())
    assert err.reason == f"not valid JSON: {error}"
    assert err.cause is error


def test_the_error_says_its_reason() -> None:
    err = decode_error({**good(), "start_ms": "1"})
    assert str(err) == err.reason
    assert isinstance(err.cause, Exception)


@pytest.mark.parametrize("value", [b"{oops", b'{"event_type": "clip.requested",'])
def test_broken_json_is_named_once(value: bytes) -> None:
    reason = decode_error(value).reason
    assert reason.startswith("not valid JSON: ")
    assert "Invalid JSON" not in reason  # pydantic's own prefix is not repeated
    assert len(reason) > len("not valid JSON: ")


def test_one_problem_is_named_with_where_it_is() -> None:
    err = decode_error({**good(), "start_ms": "1"})
    (msg,) = pydantic_messages(err)
    assert err.reason == f"invalid event: start_ms: {msg}"


def test_several_problems_are_listed_in_order() -> None:
    err = decode_error({**good(), "start_ms": "1", "duration_ms": "x"})
    first, second = pydantic_messages(err)
    assert err.reason == f"invalid event: start_ms: {first}; duration_ms: {second}"


def test_a_problem_inside_a_field_names_the_path_to_it() -> None:
    failed = json.loads(
        clip_failed(
            clip_request(), ErrorInfo(code="x", message="m", retryable=False, attempts=1)
        ).model_dump_json()
    )
    err = decode_error({**failed, "error": {"code": "x", "message": "m", "retryable": False}})
    (msg,) = pydantic_messages(err)
    assert err.reason == f"invalid event: error.attempts: {msg}"


def test_a_problem_with_the_whole_message_says_so() -> None:
    err = decode_error([1, 2])
    (msg,) = pydantic_messages(err)
    assert err.reason == f"invalid event: <message>: {msg}"


@pytest.mark.parametrize(("extra", "listed", "more"), [(10, 10, ""), (11, 10, " (+1 more)"),
                                                       (25, 10, " (+15 more)")])  # fmt: skip
def test_a_message_with_many_problems_lists_ten_and_counts_the_rest(
    extra: int, listed: int, more: str
) -> None:
    err = decode_error({**good(), **{f"f{i:02}": 1 for i in range(extra)}})
    assert err.reason.endswith(f"f{listed - 1:02}: {pydantic_messages(err)[listed - 1]}{more}")
    assert err.reason.count("; ") == listed - 1
    assert f"f{listed:02}:" not in err.reason


def test_an_event_of_another_topic_is_refused() -> None:
    reason = decode_error(json.loads(clip_ready("r1").model_dump_json())).reason
    assert reason.startswith("event_type 'clip.ready' does not belong on topic")


# --- dead letters ----------------------------------------------------------------------


def dlq(*headers: tuple[str, bytes]) -> dict[str, bytes]:
    msg = RawMessage(TOPIC, b"nope", key=b"k", headers=headers, partition=3, offset=42)
    return dict(dead_letter_headers(msg, error="not valid JSON", stage="clip",
                                    exception=ValueError("x")))  # fmt: skip


def test_a_dead_letter_says_where_it_came_from_and_why() -> None:
    headers = dlq()
    assert headers["original_topic"] == TOPIC.encode()
    assert headers["original_partition"] == b"3"
    assert headers["original_offset"] == b"42"
    assert headers["error"] == b"not valid JSON"
    assert headers["stage"] == b"clip"
    assert headers["exception_type"] == b"builtins.ValueError"
    assert headers["attempts"] == b"1"
    first_seen = datetime.fromisoformat(headers["first_seen"].decode())
    assert timedelta(0) <= datetime.now(UTC) - first_seen < timedelta(seconds=30)


def test_a_replayed_dead_letter_keeps_its_first_sighting_and_counts_attempts() -> None:
    headers = dlq(("attempts", b"4"), ("first_seen", b"2026-01-01T00:00:00+00:00"))
    assert headers["attempts"] == b"5"
    assert headers["first_seen"] == b"2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    "replayed",
    [
        (("attempts", b"many"), ("first_seen", b"yesterday")),
        (("attempts", b"-2"), ("first_seen", b"")),
        (("attempts", b""),),
    ],
)
def test_unreadable_replay_headers_start_the_count_again(
    replayed: tuple[tuple[str, bytes], ...],
) -> None:
    headers = dlq(*replayed)
    assert headers["attempts"] == b"1"
    first_seen = datetime.fromisoformat(headers["first_seen"].decode())
    assert timedelta(0) <= datetime.now(UTC) - first_seen < timedelta(seconds=30)


# --- routing headers -------------------------------------------------------------------


@pytest.mark.parametrize("event", [clip_request(correlation_id="corr-1"), clip_ready("r1")])
def test_routing_headers_agree_with_the_event_they_travel_with(event: Event) -> None:
    headers = dict(event_headers(event))
    decoded = decode_event(event.model_dump_json().encode())
    assert headers == {
        "event_type": decoded.event_type.encode(),
        "schema_version": str(decoded.schema_version).encode(),
        "correlation_id": decoded.correlation_id.encode(),
    }
    assert headers["schema_version"] == b"1"


def test_a_record_is_read_only_with_its_events_key() -> None:
    value = clip_request().model_dump_json().encode()
    assert CODEC.read(RawMessage(TOPIC, value, key=b"req-1")) == decode_event(value)
    with pytest.raises(DecodeError) as missing:
        CODEC.read(RawMessage(TOPIC, value))
    assert missing.value.reason == "message has no key (expected the event's request_id, 'req-1')"
    with pytest.raises(DecodeError) as wrong:
        CODEC.read(RawMessage(TOPIC, value, key=b"req-2" + b"x" * 100))
    assert wrong.value.reason.startswith("message key 'req-2xxx")
    assert wrong.value.reason.endswith("...' is not the event's request_id, 'req-1'")
    # An unreadable value is named for what is wrong with it, whatever its key.
    with pytest.raises(DecodeError, match="not valid JSON"):
        CODEC.read(RawMessage(TOPIC, b"{", key=b"req-1"))
