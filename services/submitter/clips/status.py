"""Status of a clip request, read from the job store the clipper's stage runner writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from schemas.clip import ClipFailed, ClipReady
from schemas.ids import is_plain_id
from schemas.names import Stage
from services.common.job_store import StageStatus
from services.common.mongo import Doc
from services.common.ports import JobRepo, MediaPort
from services.submitter.requests import recorded_outputs

Status = Literal["pending", "running", "completed", "failed"]

_STATUS: dict[str, Status] = {
    StageStatus.PENDING: "pending",
    StageStatus.RUNNING: "running",
    StageStatus.COMPLETED: "completed",
    StageStatus.FAILED: "failed",
    StageStatus.CANCELLED: "failed",
}
# A link this close to expiry is re-signed rather than handed out.
_MIN_URL_LIFE = timedelta(minutes=5)


class RequestNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ClipStatus:
    request_id: str
    status: Status
    episode_id: str | None = None
    clip_url: str | None = None
    cache_hit: bool | None = None
    generation_time_ms: int | None = None
    s3_key: str | None = None
    size_bytes: int | None = None
    expires_at: datetime | None = None
    error: dict[str, Any] | None = None


async def clip_status(
    jobs: JobRepo, media: MediaPort, tenant_id: str, request_id: str, url_expiry_s: int
) -> ClipStatus:
    if not is_plain_id(request_id):
        raise RequestNotFound(request_id)
    job = await jobs.job(request_id)
    stage: Doc = (job or {}).get("stages", {}).get(Stage.CLIP) or {}
    owner = (job or {}).get("tenant_id") or stage.get("tenant_id")
    # Someone else's request is reported exactly like a missing one.
    if job is None or owner != tenant_id:
        raise RequestNotFound(request_id)
    status = _STATUS.get(str(stage.get("status", StageStatus.PENDING)), "pending")
    episode_id = job.get("episode_id")
    outcome = _outcome(stage)
    if isinstance(outcome, ClipFailed):
        return ClipStatus(
            request_id,
            "failed",
            episode_id=episode_id,
            error={
                "code": outcome.error.code,
                "message": outcome.error.message,
                "retryable": outcome.error.retryable,
            },
        )
    if outcome is None:
        return ClipStatus(request_id, status, episode_id=episode_id)
    url, expires_at = outcome.clip_url, outcome.expires_at
    now = datetime.now(UTC)
    if expires_at - now < _MIN_URL_LIFE:
        url = await media.presign_get(outcome.s3_key, url_expiry_s)
        expires_at = now + timedelta(seconds=url_expiry_s)
    return ClipStatus(
        request_id,
        "completed",
        episode_id=episode_id,
        clip_url=url,
        cache_hit=outcome.cache_hit,
        generation_time_ms=outcome.generation_time_ms,
        s3_key=outcome.s3_key,
        size_bytes=outcome.size_bytes,
        expires_at=expires_at,
    )


def _outcome(stage: Doc) -> ClipReady | ClipFailed | None:
    """The clip result the stage recorded, if it finished."""
    for event in reversed(recorded_outputs(stage)):
        if isinstance(event, ClipReady | ClipFailed):
            return event
    return None
