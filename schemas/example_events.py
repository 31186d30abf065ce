"""One valid instance of every event, for docs, ``schemas/examples/`` and tests.

Ids and timestamps are fixed so the exported files only change when a schema does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from schemas.audio import (
    AudioFailed,
    AudioJobSubmitted,
    AudioParams,
    AudioRendered,
    AudioSegment,
    Scene,
)
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from schemas.envelope import Event
from schemas.errors import ErrorInfo
from schemas.job import AudioJobSpec, JobCompleted, JobFailed, JobRequested
from schemas.merge import MergeCompleted, MergeFailed, MergeParams, MergeRequested
from schemas.video import VideoJobSubmitted, VideoRendered

OCCURRED_AT = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)
TENANT = "acme"
AUDIO_JOB = "job-audio-0001"
VIDEO_JOB = "job-video-0001"
MERGE_JOB = "job-merge-0001"
CLIP_REQUEST = "req-clip-0001"
EPISODE = "ep-2025-01-15"


def _envelope(serial: int, producer: str, correlation_id: str) -> dict[str, Any]:
    return {
        "event_id": UUID(int=serial, version=4),
        "occurred_at": OCCURRED_AT,
        "tenant_id": TENANT,
        "correlation_id": correlation_id,
        "producer": producer,
    }


_SCENES = [
    Scene(index=0, prompt="warm lo-fi intro with vinyl crackle", duration_s=12.0),
    Scene(index=1, prompt="the beat drops, brighter keys", duration_s=20.5),
]
_AUDIO_SPEC = AudioJobSpec(
    tier="standard",
    kind="music",
    provider="fal",
    model="stable-audio",
    scenes=_SCENES,
    params=AudioParams(format="mp3", sample_rate=44100),
    video_job_id=VIDEO_JOB,
)
_GIVEN_UP = ErrorInfo(
    code="provider_unavailable",
    message="provider returned 503 on every attempt",
    retryable=True,
    attempts=3,
)

_EXAMPLES: tuple[Event, ...] = (
    AudioJobSubmitted(
        **_envelope(1, "submitter", "corr-audio-0001"), job_id=AUDIO_JOB, **_AUDIO_SPEC.payload()
    ),
    AudioRendered(
        **_envelope(2, "audio-agent", "corr-audio-0001"),
        job_id=AUDIO_JOB,
        segments=[
            AudioSegment(
                scene_index=0,
                s3_key=f"audio/{AUDIO_JOB}/scene-0000.mp3",
                duration_s=12.0,
                provider="fal",
                model="stable-audio",
                cached=False,
                silent_fallback=False,
            ),
            AudioSegment(
                scene_index=1,
                s3_key=f"audio/{AUDIO_JOB}/scene-0001.mp3",
                duration_s=20.5,
                provider="local",
                model=None,
                cached=False,
                silent_fallback=True,
            ),
        ],
        soundtrack_key=f"audio/{AUDIO_JOB}/soundtrack.mp3",
    ),
    AudioFailed(
        **_envelope(3, "audio-agent", "corr-audio-0002"), job_id="job-audio-0002", error=_GIVEN_UP
    ),
    VideoJobSubmitted(
        **_envelope(4, "submitter", "corr-video-0001"),
        job_id=VIDEO_JOB,
        prompt="slow pan over a rainy city at night",
        duration_s=32.5,
        width=1280,
        height=720,
        params={"fps": 24, "guidance": 7.5, "seed": "42", "loop": False},
    ),
    VideoRendered(
        **_envelope(5, "video-renderer", "corr-video-0001"),
        job_id=VIDEO_JOB,
        s3_key=f"video/{VIDEO_JOB}/render.mp4",
        duration_s=32.5,
        width=1280,
        height=720,
        codec="h264",
    ),
    ClipRequested(
        **_envelope(6, "clip-api", "corr-clip-0001"),
        request_id=CLIP_REQUEST,
        episode_id=EPISODE,
        start_ms=90_000,
        duration_ms=30_000,
        format="mp3",
        accurate=False,
    ),
    ClipReady(
        **_envelope(7, "clipper", "corr-clip-0001"),
        request_id=CLIP_REQUEST,
        episode_id=EPISODE,
        s3_key=f"clips/{EPISODE}/90000-30000.mp3",
        clip_url=f"https://media.example.com/clips/{EPISODE}/90000-30000.mp3?X-Amz-Expires=3600",
        cache_hit=False,
        generation_time_ms=412,
        size_bytes=480_417,
        start_ms=90_000,
        end_ms=120_000,
        format="mp3",
        expires_at=datetime(2025, 1, 15, 13, 0, 0, tzinfo=UTC),
    ),
    ClipFailed(
        **_envelope(8, "clipper", "corr-clip-0002"),
        request_id="req-clip-0002",
        episode_id=EPISODE,
        error=ErrorInfo(
            code="clip_too_long",
            message="duration_ms 900000 exceeds the 300000 ms limit",
            retryable=False,
            attempts=1,
        ),
    ),
    MergeRequested(
        **_envelope(9, "submitter", "corr-merge-0001"),
        job_id=MERGE_JOB,
        operation="mux",
        inputs=[f"video/{VIDEO_JOB}/render.mp4"],
        params=MergeParams(sync_mode="trim", audio_key=f"audio/{AUDIO_JOB}/soundtrack.mp3"),
        output_key=f"merged/{MERGE_JOB}/final.mp4",
    ),
    MergeCompleted(
        **_envelope(10, "merger", "corr-merge-0001"),
        job_id=MERGE_JOB,
        s3_key=f"merged/{MERGE_JOB}/final.mp4",
        duration_ms=32_500,
        size_bytes=18_204_551,
    ),
    MergeFailed(
        **_envelope(11, "merger", "corr-merge-0002"), job_id="job-merge-0002", error=_GIVEN_UP
    ),
    JobRequested(
        **_envelope(12, "submitter", "corr-audio-0001"), job_id=AUDIO_JOB, spec=_AUDIO_SPEC
    ),
    JobCompleted(
        **_envelope(13, "submitter", "corr-audio-0001"),
        job_id=AUDIO_JOB,
        job_kind="audio",
        outputs={"soundtrack": f"audio/{AUDIO_JOB}/soundtrack.mp3"},
    ),
    JobFailed(
        **_envelope(14, "submitter", "corr-audio-0002"),
        job_id="job-audio-0002",
        job_kind="audio",
        error=_GIVEN_UP,
    ),
)

EXAMPLES: dict[tuple[str, int], Event] = {
    (event.event_type, event.schema_version): event for event in _EXAMPLES
}
