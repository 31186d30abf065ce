"""What a delivery is made of: its id, its body, and the retry schedule."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from schemas import ErrorInfo
from schemas.audio import AudioFailed, AudioRendered, AudioSegment
from schemas.job import JobCompleted, JobFailed
from schemas.merge import MergeCompleted, MergeFailed
from schemas.video import VideoRendered
from services.webhooks.plan import (
    DEFAULT_DELAYS_S,
    RETRYING,
    STAGE_COMPLETED,
    STAGE_FAILED,
    Attempt,
    Schedule,
    StageOutcome,
    body,
    message_id,
    parse_delays,
    stage_body,
    stage_of,
    stage_type,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def completed(**kw: object) -> JobCompleted:
    fields: dict[str, object] = {
        "job_id": "job-1", "tenant_id": "acme", "producer": "lifecycle",
        "job_kind": "production", "outputs": {"result": "renders/job-1/result-v2.mp4"},
        "version": 2, "audio_status": "FAILED", "audio_error": "Audio generation failed: x",
        "occurred_at": T0,
    }  # fmt: skip
    fields.update(kw)
    return JobCompleted(**fields)  # type: ignore[arg-type]


def failed() -> JobFailed:
    error = ErrorInfo(code="video_failed", message="the video failed", retryable=False,
                      attempts=1)  # fmt: skip
    return JobFailed(job_id="job-2", tenant_id="acme", producer="lifecycle",
                     job_kind="production", error=error, occurred_at=T0)  # fmt: skip


def test_the_id_is_stable_per_outcome_and_holds_no_dot() -> None:
    event = completed()
    again = JobCompleted.model_validate_json(event.model_dump_json())  # a redelivered copy
    assert message_id(event) == message_id(again) == f"msg_{event.event_id.hex}"
    assert "." not in message_id(event)
    assert message_id(completed()) != message_id(event)


def test_a_completed_job_body() -> None:
    raw = body(completed())
    assert b" " not in raw.replace(b"Audio generation failed: x", b"")  # compact JSON
    assert json.loads(raw) == {
        "type": "job.completed",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {"job_id": "job-1", "status": "COMPLETED",
                 "outputs": {"result": "renders/job-1/result-v2.mp4"}, "version": 2,
                 "audio_status": "FAILED", "audio_error": "Audio generation failed: x"},
    }  # fmt: skip
    plain = json.loads(body(completed(audio_status=None, audio_error=None)))
    assert set(plain["data"]) == {"job_id", "status", "outputs", "version"}


def test_a_failed_job_body() -> None:
    assert json.loads(body(failed())) == {
        "type": "job.failed",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {"job_id": "job-2", "status": "FAILED",
                 "error": {"code": "video_failed", "message": "the video failed"}},
    }  # fmt: skip


def test_retries_back_off_then_repeat_the_last_delay() -> None:
    schedule = Schedule((5, 30, 120), max_age_s=10_000, jitter=0)
    deadline = schedule.deadline(T0)
    waits = [(schedule.next_at(n, T0, deadline) - T0).total_seconds() for n in range(1, 6)]  # type: ignore[operator]
    assert waits == [5, 30, 120, 120, 120]


def test_the_default_schedule_spans_a_day_then_gives_up() -> None:
    schedule = Schedule(jitter=0)
    deadline = schedule.deadline(T0)
    times, now = [T0], T0
    while (now := schedule.next_at(len(times), now, deadline)) is not None:  # type: ignore[assignment]
        times.append(now)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps[:9] == list(DEFAULT_DELAYS_S)
    assert all(7200 <= g <= 14400 for g in gaps[6:-1])  # every 2 to 4 h after the first hour
    assert times[-1] == deadline  # the last try moved up to the deadline
    assert len(times) == 14


def test_jitter_stays_within_its_bounds() -> None:
    schedule = Schedule((100,), max_age_s=10_000, jitter=0.1)
    rng = random.Random(7)
    waits = {(schedule.next_at(1, T0, schedule.deadline(T0), rng) - T0).total_seconds()  # type: ignore[operator]
             for _ in range(200)}  # fmt: skip
    assert len(waits) > 100 and all(90 <= w <= 110 for w in waits)


def test_next_at_follows_a_failure_only() -> None:
    with pytest.raises(ValueError):
        Schedule().next_at(0, T0, T0 + timedelta(hours=1))


def test_parse_delays() -> None:
    assert parse_delays("5, 30,120") == (5.0, 30.0, 120.0)
    assert parse_delays("0.25") == (0.25,)
    for bad in ("", "5,x", "5,0", "-1"):
        with pytest.raises(ValueError):
            parse_delays(bad)


def test_an_attempt_records_only_what_happened() -> None:
    attempt = Attempt("msg_1", "job.completed", 1, T0, RETRYING, status=500, duration_ms=12)
    assert attempt.doc() == {"msg_id": "msg_1", "type": "job.completed", "attempt": 1,
                             "at": T0, "outcome": "retrying", "status": 500,
                             "duration_ms": 12}  # fmt: skip


ENVELOPE: dict[str, object] = {"tenant_id": "acme", "producer": "x", "occurred_at": T0}
ERROR = ErrorInfo(code="merge_failed", message="ffmpeg gave up", retryable=False, attempts=3)


def rendered(job_id: str = "job-1") -> AudioRendered:
    segment = AudioSegment(scene_index=0, s3_key=f"audio/{job_id}/0.mp3", duration_s=4.0,
                           provider="local", cached=False, silent_fallback=False)  # fmt: skip
    return AudioRendered(job_id=job_id, segments=[segment], soundtrack_key=f"audio/{job_id}/s.mp3",
                         **ENVELOPE)  # type: ignore[arg-type]  # fmt: skip


def merged(step: str | None = "mux-v1") -> MergeCompleted:
    return MergeCompleted(job_id="job-1", s3_key="renders/job-1/result-v1.mp4", duration_ms=4000,
                          size_bytes=10, operation="mux", step=step,
                          **ENVELOPE)  # type: ignore[arg-type]  # fmt: skip


def test_stage_outcomes_map_to_their_stage_and_type() -> None:
    video = VideoRendered(job_id="job-1", s3_key="videos/job-1/v.mp4", duration_s=4.0,
                          width=1280, height=720, codec="h264",
                          **ENVELOPE)  # type: ignore[arg-type]  # fmt: skip
    audio_failed = AudioFailed(job_id="job-1.vo", error=ERROR, **ENVELOPE)  # type: ignore[arg-type]
    merge_failed = MergeFailed(job_id="job-1", error=ERROR, step="concat",
                               **ENVELOPE)  # type: ignore[arg-type]  # fmt: skip
    cases: list[tuple[StageOutcome, str, str]] = [
        (rendered(), "audio", STAGE_COMPLETED),
        (rendered("job-1.vo"), "voiceover", STAGE_COMPLETED),
        (audio_failed, "voiceover", STAGE_FAILED),
        (video, "video", STAGE_COMPLETED),
        (merged(), "merge", STAGE_COMPLETED),
        (merge_failed, "merge", STAGE_FAILED),
    ]
    for event, stage, kind in cases:
        assert (stage_of(event), stage_type(event)) == (stage, kind), event.event_type
        doc = json.loads(stage_body(event))
        assert doc["type"] == kind and doc["data"]["job_id"] == "job-1"  # the parent job
        assert doc["data"]["stage"] == stage and doc["data"]["event_type"] == event.event_type
        # Names, statuses and codes only: no storage key of any output.
        raw = stage_body(event).decode()
        assert "audio/" not in raw and "videos/" not in raw and "renders/" not in raw
        assert "." not in message_id(event)


def test_stage_bodies() -> None:
    assert json.loads(stage_body(merged())) == {
        "type": "stage.completed",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {"job_id": "job-1", "stage": "merge", "step": "mux-v1",
                 "event_type": "merge.completed"},
    }  # fmt: skip
    assert "step" not in json.loads(stage_body(merged(step=None)))["data"]
    voice = {"job_id": "job-1", "stage": "voiceover", "event_type": "audio.rendered"}
    assert json.loads(stage_body(rendered("job-1.vo")))["data"] == voice
    failed_merge = MergeFailed(job_id="job-1", error=ERROR, step="concat",
                               **ENVELOPE)  # type: ignore[arg-type]  # fmt: skip
    assert json.loads(stage_body(failed_merge))["data"] == {
        "job_id": "job-1", "stage": "merge", "step": "concat", "event_type": "merge.failed",
        "error": {"code": "merge_failed", "message": "ffmpeg gave up"}}  # fmt: skip


def test_a_stage_outcome_id_is_stable_per_event() -> None:
    event = merged()
    again = MergeCompleted.model_validate_json(event.model_dump_json())
    assert message_id(event) == message_id(again) != message_id(merged())
