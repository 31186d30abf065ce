"""Property tests: the id rule and round trips over generated values."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas.audio import AudioJobSubmitted, Scene
from schemas.clip import MAX_MS, ClipRequested
from schemas.ids import PLAIN_ID_PATTERN, PlainId, is_plain_id
from schemas.registry import decode_event, encode_event

pytestmark = pytest.mark.unit

# No example database: tests must not leave files in the checkout.
props = settings(database=None, deadline=None, max_examples=200)
PLAIN_ID: TypeAdapter[str] = TypeAdapter(PlainId)

# Valid by construction (no filtering): dots only between other characters, never two.
plain_ids = st.from_regex(
    r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}(\.[A-Za-z0-9_-]{1,20}){0,3}", fullmatch=True
)
pattern_ids = st.from_regex(PLAIN_ID_PATTERN, fullmatch=True)
id_like_text = st.text(
    alphabet=string.ascii_letters + string.digits + "._-/\\ \n\x00é", max_size=140
)


@props
@given(st.one_of(id_like_text, st.text(max_size=140), plain_ids, pattern_ids))
def test_pydantic_and_is_plain_id_agree(value: str) -> None:
    # Two regex engines (pydantic-core's and Python's) must draw the same line.
    try:
        PLAIN_ID.validate_python(value)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == is_plain_id(value)


@props
@given(st.one_of(id_like_text, pattern_ids, plain_ids))
def test_whatever_is_accepted_is_a_safe_path_segment(value: str) -> None:
    if not is_plain_id(value):
        return
    assert "/" not in value and "\\" not in value and ".." not in value
    assert not value.startswith((".", "-"))
    assert value.isprintable() and value.isascii() and 1 <= len(value) <= 128


def test_the_id_rule_at_its_edges() -> None:
    assert is_plain_id("a") and is_plain_id("a" * 128) and is_plain_id("v1.2")
    for bad in ("", "a" * 129, "a..b", ".a", "-a", "a/b", "a\n", "a\nb", "é", "a b"):
        assert not is_plain_id(bad), bad


aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.builds(
        timezone, st.integers(-14 * 60, 14 * 60).map(lambda m: timedelta(minutes=m))
    ),
)
envelopes = st.fixed_dictionaries(
    {
        "event_id": st.uuids(version=4),
        "occurred_at": aware_datetimes,
        "tenant_id": plain_ids,
        "correlation_id": st.text(alphabet=string.hexdigits, min_size=1, max_size=64),
        "producer": plain_ids,
    }
)


@props
@given(
    envelopes,
    plain_ids,
    plain_ids,
    st.integers(0, MAX_MS),
    st.integers(1, MAX_MS),
    st.sampled_from(["mp3", "m4a", "wav"]),
    st.booleans(),
)
def test_clip_requested_round_trip(
    env: dict[str, Any],
    request_id: str,
    episode_id: str,
    start_ms: int,
    duration_ms: int,
    fmt: str,
    accurate: bool,
) -> None:
    event = ClipRequested(
        **env,
        request_id=request_id,
        episode_id=episode_id,
        start_ms=start_ms,
        duration_ms=duration_ms,
        format=fmt,  # type: ignore[arg-type]
        accurate=accurate,
    )
    assert event.occurred_at == env["occurred_at"]
    assert event.occurred_at.tzinfo is UTC
    assert decode_event(encode_event(event)) == event


scenes = st.lists(
    st.builds(
        Scene,
        index=st.integers(0, 10_000),
        prompt=st.text(min_size=1).map(lambda t: t if t.strip() else f"x{t}"),
        duration_s=st.floats(min_value=0.001, max_value=600.0),
        text=st.text(min_size=1).map(lambda t: t if t.strip() else f"x{t}"),
    ),
    min_size=1,
    max_size=8,
)


@props
@given(envelopes, scenes)
def test_audio_job_accepts_iff_scene_indexes_unique(
    env: dict[str, Any], drawn: list[Scene]
) -> None:
    unique = len({scene.index for scene in drawn}) == len(drawn)
    try:
        event = AudioJobSubmitted(
            **env, job_id="job-1", tier="premium", kind="voiceover", scenes=drawn
        )
    except ValidationError:
        assert not unique
        return
    assert unique
    assert decode_event(encode_event(event)) == event
