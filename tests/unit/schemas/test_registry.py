"""Event models: round trips, strictness and the cross-field rules."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas.audio import AudioJobSubmitted, AudioParams, Scene
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from schemas.envelope import Event
from schemas.errors import ErrorInfo
from schemas.example_events import EXAMPLES
from schemas.job import AudioJobSpec, ClipJobSpec, JobRequested, MergeJobSpec
from schemas.merge import MergeRequested
from schemas.registry import (
    EVENT_MODELS,
    AnyEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode_event,
    encode_event,
    model_for,
)
from schemas.video import VideoJobSubmitted

pytestmark = pytest.mark.unit

EXAMPLE_KEYS = sorted(EXAMPLES)
ANY_EVENT: TypeAdapter[Any] = TypeAdapter(AnyEvent)


def example_dict(event_type: str) -> dict[str, Any]:
    """An example as parsed JSON, ready to be broken and re-encoded."""
    result: dict[str, Any] = json.loads(EXAMPLES[(event_type, 1)].model_dump_json())
    return result


def validate(event_type: str, document: dict[str, Any]) -> Event:
    return model_for(event_type, 1).model_validate_json(json.dumps(document))


def envelope(**overrides: Any) -> dict[str, Any]:
    return {"tenant_id": "acme", "producer": "tests", **overrides}


def test_every_model_has_an_example() -> None:
    assert set(EXAMPLES) == set(EVENT_MODELS)
    assert len({event.event_id for event in EXAMPLES.values()}) == len(EXAMPLES)


@pytest.mark.parametrize("key", EXAMPLE_KEYS, ids=[k[0] for k in EXAMPLE_KEYS])
def test_round_trip(key: tuple[str, int]) -> None:
    example = EXAMPLES[key]
    model = EVENT_MODELS[key]
    raw = example.model_dump_json()
    assert type(example) is model
    assert model.model_validate_json(raw) == example
    decoded = decode_event(encode_event(example))
    assert type(decoded) is model
    assert decoded == example
    assert ANY_EVENT.validate_json(raw) == example


def test_json_accepts_iso_datetimes_and_uuid_strings() -> None:
    document = example_dict("clip.requested")
    document["event_id"] = "6f1c2a9e-3b7d-4c55-9e2a-0d6f4b1e8a77"
    document["occurred_at"] = "2025-01-15T14:00:00+02:00"
    event = validate("clip.requested", document)
    assert event.event_id == UUID("6f1c2a9e-3b7d-4c55-9e2a-0d6f4b1e8a77")
    assert event.occurred_at == datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start_ms", "1"),  # no str -> int coercion
        ("start_ms", 1.0),  # no float -> int either, even a whole one
        ("start_ms", True),
        ("duration_ms", None),
        ("tenant_id", 1),  # no int -> str
        ("accurate", "true"),
        ("accurate", 1),
        ("format", "flac"),
        ("event_id", "not-a-uuid"),
        ("occurred_at", 1736942400),  # no unix timestamps
        ("schema_version", "1"),
        ("schema_version", 1.0),
        ("schema_version", True),
        ("schema_version", 2),
        ("event_type", "clip.ready"),
    ],
)
def test_rejects_wrong_types(field: str, value: Any) -> None:
    document = example_dict("clip.requested") | {field: value}
    with pytest.raises(ValidationError):
        validate("clip.requested", document)


def test_python_constructor_is_strict_too() -> None:
    wrong: dict[str, Any] = {"start_ms": "1"}
    with pytest.raises(ValidationError):
        ClipRequested(**envelope(), request_id="r", episode_id="e", duration_ms=1, **wrong)


@pytest.mark.parametrize("event_type", ["clip.requested", "audio.job.submitted"])
def test_rejects_extra_fields(event_type: str) -> None:
    with pytest.raises(ValidationError, match="extra"):
        validate(event_type, example_dict(event_type) | {"priority": 5})


def test_rejects_extra_nested_fields() -> None:
    document = example_dict("audio.job.submitted")
    document["scenes"][0]["mood"] = "sad"
    with pytest.raises(ValidationError, match="extra"):
        validate("audio.job.submitted", document)


def test_rejects_naive_datetimes() -> None:
    document = example_dict("clip.requested") | {"occurred_at": "2025-01-15T12:00:00"}
    with pytest.raises(ValidationError, match="timezone"):
        validate("clip.requested", document)
    with pytest.raises(ValidationError, match="timezone"):
        ClipRequested(
            **envelope(occurred_at=datetime(2025, 1, 15)),
            request_id="r",
            episode_id="e",
            start_ms=0,
            duration_ms=1,
        )


def test_non_utc_offsets_are_normalised() -> None:
    tz = datetime(2025, 1, 15, 9, 0, tzinfo=UTC).astimezone().tzinfo
    event = ClipRequested(
        **envelope(occurred_at=datetime(2025, 1, 15, 9, 0, tzinfo=tz)),
        request_id="r",
        episode_id="e",
        start_ms=0,
        duration_ms=1,
    )
    assert event.occurred_at.tzinfo is UTC


def test_envelope_defaults() -> None:
    first = ClipRequested(**envelope(), request_id="r", episode_id="e", start_ms=0, duration_ms=1)
    second = ClipRequested(**envelope(), request_id="r", episode_id="e", start_ms=0, duration_ms=1)
    assert first.event_id != second.event_id
    assert first.event_id.version == 4
    assert first.correlation_id != second.correlation_id
    assert len(first.correlation_id) == 32
    assert abs(datetime.now(UTC) - first.occurred_at) < timedelta(minutes=1)
    assert (first.event_type, first.schema_version) == ("clip.requested", 1)


@pytest.mark.parametrize("field", ["event_type", "schema_version"])
def test_messages_must_state_type_and_version(field: str) -> None:
    document = example_dict("clip.requested")
    del document[field]
    with pytest.raises(ValidationError, match=field):
        validate("clip.requested", document)


def test_events_are_frozen() -> None:
    event = EXAMPLES[("clip.requested", 1)]
    with pytest.raises(ValidationError, match="frozen"):
        event.tenant_id = "other"  # type: ignore[misc]


# One per rule of PlainId; any text at all is the property tests' job (test_ids.py).
BAD_IDS = [
    "",  # empty
    "a/b",  # outside the alphabet (path separators, controls, spaces, non-ASCII)
    "a..b",  # parent-directory dots anywhere
    ".hidden",  # must start with a letter or digit
    "-flag",
    "trailing-newline\n",  # ``$`` alone would accept it
    "x" * 129,  # too long
]
GOOD_IDS = ["a", "0", "A-1_b.c", "job.v2", "x" * 128]


@pytest.mark.parametrize("field", ["request_id", "tenant_id", "episode_id", "producer"])
@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_rejects_bad_ids(field: str, bad: str) -> None:
    with pytest.raises(ValidationError):
        validate("clip.requested", example_dict("clip.requested") | {field: bad})


@pytest.mark.parametrize("good", GOOD_IDS)
def test_accepts_plain_ids(good: str) -> None:
    document = example_dict("clip.requested") | {"request_id": good, "episode_id": good}
    event = validate("clip.requested", document)
    assert isinstance(event, ClipRequested)
    assert event.episode_id == good


@pytest.mark.parametrize("bad", ["../x", "a/b", ""])
def test_job_ids_are_plain_ids(bad: str) -> None:
    with pytest.raises(ValidationError):
        validate("merge.completed", example_dict("merge.completed") | {"job_id": bad})


def test_clip_failed_echoes_bad_episode_ids() -> None:
    document = example_dict("clip.failed") | {"episode_id": "../etc/passwd"}
    event = validate("clip.failed", document)
    assert isinstance(event, ClipFailed)
    assert event.episode_id == "../etc/passwd"
    with pytest.raises(ValidationError):
        validate("clip.failed", document | {"episode_id": "x" * 513})


def test_clip_requested_leaves_business_limits_to_the_clipper() -> None:
    document = example_dict("clip.requested") | {"duration_ms": 10**12, "start_ms": 10**12}
    assert validate("clip.requested", document)
    for field, value in [("start_ms", -1), ("duration_ms", 0)]:
        with pytest.raises(ValidationError):
            validate("clip.requested", document | {field: value})


def test_clip_ready_rules() -> None:
    document = example_dict("clip.ready")
    for broken in [
        {"end_ms": document["start_ms"]},
        {"clip_url": "ftp://x/y"},
        {"clip_url": "clips/a.mp3"},
        {"expires_at": "2025-01-15T13:00:00"},
        {"size_bytes": -1},
    ]:
        with pytest.raises(ValidationError):
            validate("clip.ready", document | broken)
    assert isinstance(ClipReady.model_validate_json(json.dumps(document)), ClipReady)


@pytest.mark.parametrize("bad_key", ["", "/abs/key.mp4", "a/../b.mp4", "./a.mp4", "a\nb"])
def test_rejects_bad_s3_keys(bad_key: str) -> None:
    with pytest.raises(ValidationError):
        validate("merge.requested", example_dict("merge.requested") | {"output_key": bad_key})
    with pytest.raises(ValidationError):
        validate("merge.requested", example_dict("merge.requested") | {"inputs": [bad_key]})


def test_merge_needs_an_input() -> None:
    with pytest.raises(ValidationError):
        validate("merge.requested", example_dict("merge.requested") | {"inputs": []})


def test_error_info_attempts_start_at_one() -> None:
    with pytest.raises(ValidationError):
        ErrorInfo(code="x", message="", retryable=False, attempts=0)
    assert ErrorInfo(code="x", message="", retryable=False, attempts=1).attempts == 1


def audio_job(kind: str, scenes: list[Scene]) -> AudioJobSubmitted:
    return AudioJobSubmitted(
        **envelope(),
        job_id="job-1",
        tier="basic",
        kind=kind,  # type: ignore[arg-type]
        scenes=scenes,
    )


def test_voiceover_needs_text() -> None:
    with pytest.raises(ValidationError, match="voiceover scenes need text"):
        audio_job("voiceover", [Scene(index=0, prompt="calm narrator", duration_s=5.0)])
    job = audio_job(
        "voiceover", [Scene(index=0, prompt="calm narrator", duration_s=5.0, text="Hello.")]
    )
    assert job.scenes[0].text == "Hello."
    # Text is optional for the other kinds.
    assert audio_job("sfx", [Scene(index=0, prompt="door slam", duration_s=1.0)])


def test_scene_indexes_are_unique() -> None:
    scene = Scene(index=3, prompt="rain", duration_s=2.0)
    with pytest.raises(ValidationError, match="unique"):
        audio_job("music", [scene, scene])
    with pytest.raises(ValidationError):
        audio_job("music", [])


@pytest.mark.parametrize("duration", [0.0, -1.0, 600.5, math.nan, math.inf])
def test_scene_duration_bounds(duration: float) -> None:
    with pytest.raises(ValidationError):
        Scene(index=0, prompt="x", duration_s=duration)


def test_scene_prompt_must_say_something() -> None:
    with pytest.raises(ValidationError):
        Scene(index=0, prompt="   ", duration_s=1.0)
    assert Scene(index=0, prompt="x", duration_s=600).duration_s == 600.0


@pytest.mark.parametrize("rate", [44101, True, "44100"])
def test_sample_rate_is_one_of_the_supported(rate: Any) -> None:
    with pytest.raises(ValidationError):
        AudioParams(sample_rate=rate)


def test_video_params_keep_their_types() -> None:
    example = EXAMPLES[("video.job.submitted", 1)]
    decoded = VideoJobSubmitted.model_validate_json(example.model_dump_json())
    assert isinstance(decoded, VideoJobSubmitted)
    assert {k: type(v) for k, v in decoded.params.items()} == {
        "fps": int,
        "guidance": float,
        "seed": str,
        "loop": bool,
    }


SPEC_CASES: list[tuple[dict[str, Any], type]] = [
    (
        {
            "job_kind": "audio",
            "tier": "premium",
            "kind": "voiceover",
            "scenes": [{"index": 0, "prompt": "warm", "duration_s": 3.5, "text": "Hi"}],
        },
        AudioJobSpec,
    ),
    (
        {"job_kind": "clip", "episode_id": "ep-1", "start_ms": 0, "duration_ms": 1000},
        ClipJobSpec,
    ),
    (
        {
            "job_kind": "merge",
            "operation": "concat_video",
            "inputs": ["a.mp4", "b.mp4"],
            "output_key": "out.mp4",
        },
        MergeJobSpec,
    ),
]


@pytest.mark.parametrize(("spec", "expected"), SPEC_CASES, ids=["audio", "clip", "merge"])
def test_job_requested_picks_the_spec(spec: dict[str, Any], expected: type) -> None:
    document = example_dict("job.requested") | {"spec": spec}
    event = validate("job.requested", document)
    assert isinstance(event, JobRequested)
    assert type(event.spec) is expected
    assert JobRequested.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize("job_kind", ["video", None, "missing"])
def test_job_requested_needs_a_known_job_kind(job_kind: str | None) -> None:
    spec = dict(SPEC_CASES[1][0])
    if job_kind == "missing":
        del spec["job_kind"]
    else:
        spec["job_kind"] = job_kind
    with pytest.raises(ValidationError):
        validate("job.requested", example_dict("job.requested") | {"spec": spec})


def test_job_spec_rules_match_the_stage_events() -> None:
    spec = dict(SPEC_CASES[0][0])
    spec["scenes"] = [{"index": 0, "prompt": "warm", "duration_s": 3.5}]
    with pytest.raises(ValidationError, match="voiceover"):
        validate("job.requested", example_dict("job.requested") | {"spec": spec})


def test_spec_payload_builds_the_stage_event() -> None:
    spec = TypeAdapter(AudioJobSpec).validate_json(json.dumps(SPEC_CASES[0][0]))
    event = AudioJobSubmitted(**envelope(), job_id="job-1", **spec.payload())
    assert event.scenes == spec.scenes
    assert event.kind == "voiceover"
    merge = MergeJobSpec(operation="mux", inputs=["v.mp4"], output_key="o.mp4")
    assert MergeRequested(**envelope(), job_id="job-2", **merge.payload()).operation == "mux"
    clip = ClipJobSpec(episode_id="ep-1", start_ms=0, duration_ms=5)
    assert "job_kind" not in clip.payload()
    assert ClipRequested(**envelope(), request_id="r-1", **clip.payload()).duration_ms == 5


def test_model_for_known() -> None:
    assert model_for("clip.requested", 1) is ClipRequested


def test_model_for_unknown_type() -> None:
    with pytest.raises(UnknownEventType) as caught:
        model_for("clip.exploded", 1)
    assert isinstance(caught.value, KeyError)
    assert "clip.exploded" in str(caught.value)
    assert "clip.requested" in str(caught.value)


def test_model_for_unsupported_version() -> None:
    with pytest.raises(UnsupportedSchemaVersion) as caught:
        model_for("clip.requested", 2)
    assert isinstance(caught.value, KeyError)
    assert caught.value.supported == (1,)
    assert "schema_version 2" in str(caught.value)


def test_decode_event_reports_unknown_types_and_versions() -> None:
    document = example_dict("clip.requested")
    with pytest.raises(UnknownEventType):
        decode_event(json.dumps(document | {"event_type": "clip.exploded"}))
    with pytest.raises(UnsupportedSchemaVersion):
        decode_event(json.dumps(document | {"schema_version": 99}))
    with pytest.raises(ValidationError):
        decode_event(b"not json")
