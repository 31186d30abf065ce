"""Events for stage tests: a clip request and the failure answer a stage gives it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import ErrorInfo, Event
from schemas.clip import ClipFailed, ClipReady, ClipRequested


def clip_request(**kw: Any) -> ClipRequested:
    fields: dict[str, Any] = {
        "request_id": "req-1", "tenant_id": "acme", "producer": "tests",
        "episode_id": "ep-1", "start_ms": 1000, "duration_ms": 2000,
    }  # fmt: skip
    fields.update(kw)
    return ClipRequested(**fields)


def clip_failed(event: Event, error: ErrorInfo) -> Event:
    assert isinstance(event, ClipRequested)
    return ClipFailed(
        request_id=event.request_id, tenant_id=event.tenant_id, producer="tests",
        correlation_id=event.correlation_id, episode_id=event.episode_id, error=error,
    )  # fmt: skip


def clip_ready(request_id: str) -> ClipReady:
    return ClipReady(
        request_id=request_id, tenant_id="acme", producer="clipper", episode_id="ep",
        s3_key="audio_clips/ep/0-1000.mp3", clip_url="http://s3/x", cache_hit=False,
        generation_time_ms=5, size_bytes=10, start_ms=0, end_ms=1000, format="mp3",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
