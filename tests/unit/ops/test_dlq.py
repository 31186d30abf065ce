"""Dead letters without a broker: how a record reads, what a replay sends as headers,
and which topic names are dead-letter topics."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import pytest
from aiokafka.structs import ConsumerRecord

from schemas import TOPICS
from schemas.dlq import HEADER_ATTEMPTS, HEADER_FIRST_SEEN
from services.common.codec import RawMessage, dead_letter_headers, event_headers
from services.common.settings import Settings
from services.ops.dlq import DeadLetterOps, UnknownDlqTopic, dead_letter_from, replay_headers
from tests.support.events import clip_request
from tests.support.fakes import MemoryMongo

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.mongo import Doc

ORIGINAL = "p.tapedeck.clip.requests"


def dlq_record(
    value: bytes, headers: list[tuple[str, bytes]], offset: int = 7
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        ORIGINAL + ".dlq",
        2,
        offset,
        1_700_000_000_000,
        0,
        b"req-1",
        value,
        None,
        5,
        len(value),
        tuple(headers),
    )


def stage_headers(attempts_before: int | None = None) -> list[tuple[str, bytes]]:
    """What a stage writes when it gives up on a message (a replayed one, when the
    message carries ``attempts`` already)."""
    carried: tuple[tuple[str, bytes], ...] = ()
    if attempts_before is not None:
        carried = (
            (HEADER_FIRST_SEEN, b"2024-01-02T03:04:05+00:00"),
            (HEADER_ATTEMPTS, str(attempts_before).encode()),
        )
    msg = RawMessage(ORIGINAL, b"x", b"req-1", (("trace", b"t1"), *carried), 4, 99)
    return dead_letter_headers(msg, error="not valid JSON", stage="clip", exception="E")


def test_a_record_reads_as_a_dead_letter() -> None:
    body = json.dumps({"event_type": "clip.requested", "n": 1}).encode()
    letter = dead_letter_from(dlq_record(body, stage_headers(2)), ORIGINAL, None)
    assert (letter.partition, letter.offset, letter.ref) == (2, 7, "2-7")
    assert letter.timestamp == datetime.fromtimestamp(1_700_000_000, UTC)
    assert (letter.error, letter.stage, letter.attempts) == ("not valid JSON", "clip", 3)
    assert letter.first_seen == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert letter.headers["original_offset"] == "99" and letter.original_topic == ORIGINAL
    assert (letter.state, letter.actions, letter.truncated) == ("pending", [], False)
    assert letter.pretty == json.dumps(json.loads(body), indent=2)


def test_a_settled_record_says_so_and_bad_bytes_are_escaped() -> None:
    at = datetime.now(UTC)
    settled = {"action": "discarded", "actor": "Ana (k1)", "at": at, "detail": "discarded"}
    letter = dead_letter_from(dlq_record(b"\xff{oops", stage_headers()), ORIGINAL, settled)
    assert letter.state == "discarded" and letter.actions[0].actor == "Ana (k1)"
    assert letter.pretty == "\\xff{oops" and letter.attempts == 1


def test_json_nested_too_deep_to_indent_shows_as_text() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    letter = dead_letter_from(dlq_record(body, stage_headers()), ORIGINAL, None)
    assert letter.pretty == body.decode()


def test_replay_headers_drop_the_dlqs_own_and_keep_the_attempt_count() -> None:
    raw = (("trace", b"t1"), ("event_type", b"clip.requested"), *stage_headers(1))
    kept = dict(replay_headers(raw))
    assert kept.keys() == {"trace", "event_type", HEADER_FIRST_SEEN, HEADER_ATTEMPTS}
    assert kept[HEADER_ATTEMPTS] == b"2"
    # Failing again after the replay: the count goes on from there.
    again = dict(
        dead_letter_headers(
            RawMessage(ORIGINAL, b"x", None, tuple(kept.items())),
            error="e",
            stage="clip",
            exception="E",
        )
    )
    assert again[HEADER_ATTEMPTS] == b"3" and again[HEADER_FIRST_SEEN] == kept[HEADER_FIRST_SEEN]

    event = clip_request(request_id="req-2")
    edited = replay_headers(raw, event_headers(event))
    names = [k for k, _ in edited]
    assert names.count("event_type") == 1 and "correlation_id" in names
    assert dict(edited)["correlation_id"] == event.correlation_id.encode()


def test_only_the_registry_dlqs_under_the_prefix_are_dead_letter_topics() -> None:
    ops = DeadLetterOps(Settings(TOPIC_PREFIX="p."), cast("AsyncDatabase[Doc]", MemoryMongo()))
    assert ops.original("p.tapedeck.clip.requests.dlq") == TOPICS.clip_requests
    for name in ("tapedeck.clip.requests.dlq", "p.tapedeck.clip.requests", "p.other.dlq"):
        with pytest.raises(UnknownDlqTopic) as refused:
            ops.original(name)
        assert refused.value.public and refused.value.code == "not_found"
