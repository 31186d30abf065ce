"""Checking a hand-written event for a topic: JSON Schema first, then the topic's codec;
the key and headers are the emitter's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from schemas import TOPICS
from schemas.export import PACKAGE_DIR
from services.cli.args import CliError
from services.cli.events import Refused, check_event, topic_named
from services.common.codec import event_headers

EXAMPLE = json.loads((PACKAGE_DIR / "examples" / "clip.requested.json").read_text())


def raw(**changes: Any) -> bytes:
    event = {**EXAMPLE, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


def refusal(data: bytes, **kw: Any) -> str:
    with pytest.raises(Refused) as exc:
        check_event(TOPICS.clip_requests, data, max_bytes=1024 * 1024, **kw)
    assert exc.value.code == 1 and exc.value.message.startswith("refused, nothing produced: ")
    return exc.value.reason


def test_topics_are_named_as_in_the_registry() -> None:
    assert topic_named("clip.requests") is TOPICS.clip_requests
    assert topic_named("tapedeck.jobs.requests") is TOPICS.jobs_requests
    for name, words in [("clips", "no topic 'clips'"), ("clip.requests.dlq", "dlq replay")]:
        with pytest.raises(CliError) as exc:
            topic_named(name)
        assert exc.value.code == 2 and words in exc.value.message


def test_a_valid_event_gets_the_emitters_key_headers_and_encoding() -> None:
    checked = check_event(TOPICS.clip_requests, raw(), max_bytes=1024 * 1024)
    assert checked.key == b"req-clip-0001"
    assert checked.headers == event_headers(checked.event)
    assert dict(checked.headers)["correlation_id"] == b"corr-clip-0001"
    assert json.loads(checked.value) == {**EXAMPLE, "occurred_at": "2025-01-15T12:00:00Z"}
    # Left out, the envelope's defaults are filled in once, here: the id on the topic is
    # the one the headers and the output name.
    minimal = check_event(
        TOPICS.clip_requests, raw(event_id=None, correlation_id=None), max_bytes=1024 * 1024
    )
    assert (
        json.loads(minimal.value)["correlation_id"]
        == dict(minimal.headers)["correlation_id"].decode()
    )


def test_json_schema_violations_are_named_by_path() -> None:
    assert refusal(raw(start_ms="x", format="flac")) == (
        "clip.requested v1 breaks its JSON Schema: format: 'flac' is not one of "
        "['mp3', 'm4a', 'wav']; start_ms: 'x' is not of type 'integer'"
    )
    assert "Additional properties are not allowed ('extra' was unexpected)" in refusal(raw(extra=1))
    assert "event_id: 'nope' is not a 'uuid'" in refusal(raw(event_id="nope"))
    many = refusal(
        raw(
            **{f"x{n}": n for n in range(3)},
            start_ms="a",
            duration_ms="b",
            format=1,
            accurate=2,
            tenant_id=3,
            episode_id=4,
        )
    )
    assert many.count("; ") == 4 and re.search(r"'string' \(\+\d+ more\)$", many), many


def test_what_the_schema_allows_the_codec_may_still_refuse() -> None:
    # JSON Schema's integer takes 5000.0; the strict event models do not.
    assert refusal(raw(duration_ms=5000.0)) == (
        "tapedeck.clip.requests would not take it: invalid event: duration_ms: "
        "Input should be a valid integer"
    )


def test_an_event_of_another_topic_is_refused_by_the_codec() -> None:
    ready = (PACKAGE_DIR / "examples" / "clip.ready.json").read_bytes()
    assert refusal(ready) == (
        "tapedeck.clip.requests would not take it: event_type 'clip.ready' does not belong "
        "on topic tapedeck.clip.requests (expected one of ['clip.requested'])"
    )


def test_unreadable_or_unknown_events_are_refused() -> None:
    assert refusal(b"{") == "not valid JSON (line 1, column 2)"
    assert refusal(b'{"a": "\xff"}') == "not valid JSON (not UTF-8 text)"
    assert refusal(b"[]") == "an event is a JSON object"
    assert refusal(raw(schema_version="1")) == (
        "the event must state event_type (a string) and schema_version (an int)"
    )
    assert refusal(raw(event_type="clip.cut")) == (
        "no JSON Schema for event_type 'clip.cut' version 1"
    )
    assert refusal(raw(schema_version=2)) == (
        "no JSON Schema for event_type 'clip.requested' version 2"
    )


def test_an_oversized_event_is_refused_by_the_codec() -> None:
    with pytest.raises(Refused) as exc:
        check_event(TOPICS.clip_requests, raw(), max_bytes=100)
    assert "exceeds the 100 byte limit" in exc.value.reason


def test_the_schema_comes_from_the_exported_files(tmp_path: Path) -> None:
    schema = json.loads((PACKAGE_DIR / "json" / "clip.requested.schema.json").read_text())
    schema["properties"]["start_ms"]["maximum"] = 10
    (tmp_path / "clip.requested.schema.json").write_text(json.dumps(schema))
    assert "start_ms: 90000 is greater than the maximum of 10" in refusal(
        raw(), schema_directory=tmp_path
    )
