"""Clip rules: which requests are refused (code, offending parameter and the words the caller
reads), where the limits lie exactly, and what a valid request is planned into."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codes import Code
from services.common.clip_rules import (
    FORMATS,
    ClipPlan,
    ClipRejected,
    EpisodeNotFound,
    check_request,
    plan_clip,
)
from services.common.episodes import Episode
from services.common.errors import public_text

EPISODE = Episode(episode_id="ep", tenant_id="acme", s3_key="episodes/ep/source.mp3",
                  duration_ms=60_000, format_name="mp3", codec="mp3", size_bytes=1000)  # fmt: skip
MAX = 600_000


def refused(call: Any, *args: Any) -> tuple[str, str | None, str]:
    """(code, param, public message) of the rejection ``call(*args)`` raises."""
    with pytest.raises(ClipRejected) as exc:
        call(*args)
    return exc.value.code, exc.value.param, public_text(exc.value, exc.value.code)


@pytest.mark.parametrize(
    ("episode_id", "start_ms", "duration_ms", "expected"),
    [
        ("ep/../x", 0, 1000, (Code.INVALID_EPISODE_ID, "episode_id",
         "episode_id must be a plain id (letters, digits, '.', '_', '-'; no slashes)")),
        (7, 0, 1000, (Code.INVALID_EPISODE_ID, "episode_id",
         "episode_id must be a plain id (letters, digits, '.', '_', '-'; no slashes)")),
        ("ep", "0", 1000, (Code.INVALID_TIME, "start_ms",
         "start_ms must be an integer number of ms")),
        ("ep", True, 1000, (Code.INVALID_TIME, "start_ms",
         "start_ms must be an integer number of ms")),
        ("ep", 0, 1.5, (Code.INVALID_DURATION, "duration_ms",
         "duration_ms must be an integer number of ms")),
        ("ep", 0, False, (Code.INVALID_DURATION, "duration_ms",
         "duration_ms must be an integer number of ms")),
        ("ep", -1, 1000, (Code.INVALID_TIME, "start_ms", "start_ms must be >= 0")),
        ("ep", 0, 0, (Code.INVALID_DURATION, "duration_ms", "duration_ms must be > 0")),
        ("ep", 0, -5, (Code.INVALID_DURATION, "duration_ms", "duration_ms must be > 0")),
        ("ep", 0, MAX + 1, (Code.DURATION_TOO_LONG, "duration_ms",
         f"duration_ms {MAX + 1} exceeds the maximum of {MAX} ms")),
    ],
)  # fmt: skip
def test_a_bad_request_is_refused_with_its_code_param_and_reason(
    episode_id: Any, start_ms: Any, duration_ms: Any, expected: tuple[str, str, str]
) -> None:
    assert refused(check_request, episode_id, start_ms, duration_ms, MAX) == expected
    # plan_clip applies the same checks, with the same answer.
    episode = EPISODE.model_copy(update={"episode_id": episode_id})  # skips validation
    assert refused(plan_clip, episode, start_ms, duration_ms, "mp3", False, MAX) == expected


@pytest.mark.parametrize(("start_ms", "duration_ms"), [(0, 1), (0, MAX), (59_999, 1)])
def test_the_limits_themselves_are_allowed(start_ms: int, duration_ms: int) -> None:
    check_request("ep", start_ms, duration_ms, MAX)
    plan = plan_clip(EPISODE, start_ms, duration_ms, "mp3", False, MAX)
    assert plan.start_ms == start_ms


@pytest.mark.parametrize("fmt", ["ogg", "MP3", ""])
def test_an_unknown_format_is_refused(fmt: str) -> None:
    assert refused(plan_clip, EPISODE, 0, 1000, fmt, False, MAX) == (
        Code.INVALID_FORMAT, "format", "format must be one of mp3, m4a, wav"
    )  # fmt: skip


@pytest.mark.parametrize("start_ms", [60_000, 60_001])
def test_a_start_at_or_past_the_end_is_refused(start_ms: int) -> None:
    assert refused(plan_clip, EPISODE, start_ms, 1000, "mp3", False, MAX) == (
        Code.START_PAST_END, "start_ms",
        f"start_ms {start_ms} is at or past the episode's end (60000 ms)",
    )  # fmt: skip


def test_an_unknown_episode_is_named() -> None:
    exc = EpisodeNotFound("ep-9")
    assert (exc.code, exc.param) == (Code.EPISODE_NOT_FOUND, "episode_id")
    assert public_text(exc, exc.code) == "unknown episode 'ep-9'"


def test_a_plan_names_the_clip_and_its_object() -> None:
    assert plan_clip(EPISODE, 1000, 2000, "m4a", False, MAX) == ClipPlan(
        "acme", "ep", 1000, 3000, "m4a", False, "audio_clips/acme/ep/1000-3000.m4a"
    )
    exact = plan_clip(EPISODE, 1000, 2000, "wav", True, MAX)
    assert exact.accurate is True
    assert exact.key == "audio_clips/acme/ep/1000-3000-accurate.wav"


def test_a_clip_running_past_the_end_is_cut_at_the_end() -> None:
    plan = plan_clip(EPISODE, 59_000, 5000, "mp3", False, MAX)
    assert (plan.start_ms, plan.end_ms, plan.duration_ms) == (59_000, 60_000, 1000)
    assert plan.key == "audio_clips/acme/ep/59000-60000.mp3"


@given(
    start_ms=st.integers(0, 59_999),
    duration_ms=st.integers(1, MAX),
    fmt=st.sampled_from(FORMATS),
    accurate=st.booleans(),
)
def test_every_valid_request_plans_a_clip_inside_the_episode(
    start_ms: int, duration_ms: int, fmt: str, accurate: bool
) -> None:
    plan = plan_clip(EPISODE, start_ms, duration_ms, fmt, accurate, MAX)
    assert plan.start_ms == start_ms < plan.end_ms <= EPISODE.duration_ms
    assert plan.duration_ms == min(duration_ms, EPISODE.duration_ms - start_ms)
    assert (plan.format, plan.accurate) == (fmt, accurate)
    assert plan.key.endswith(f"{plan.start_ms}-{plan.end_ms}{'-accurate' * accurate}.{fmt}")
