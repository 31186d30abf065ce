"""Status of a clip request, read from the job store the clipper's stage runner writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from schemas.ids import is_plain_id
from services.common.job_store import StageStatus
from services.common.mongo import Doc
from services.submitter.clip_requests import STAGE
from services.submitter.ports import Jobs, Objects

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
    jobs: Jobs, media: Objects, tenant_id: str, request_id: str, url_expiry_s: int
) -> ClipStatus:
    if not is_plain_id(request_id):
        raise RequestNotFound(request_id)
    job = await jobs.job(request_id)
    stage: Doc = (job or {}).get("stages", {}).get(STAGE) or {}
    owner = (job or {}).get("tenant_id") or stage.get("tenant_id")
    # Someone else's request is reported exactly like a missing one.
    if job is None or owner != tenant_id:
        raise RequestNotFound(request_id)
    status = _STATUS.get(str(stage.get("status", StageStatus.PENDING)), "pending")
    result = stage.get("result") if isinstance(stage.get("result"), dict) else None
    episode_id = job.get("episode_id")
    if result is None:
        return ClipStatus(request_id, status, episode_id=episode_id)
    if result.get("event_type") == "clip.failed":
        error = result.get("error") or {}
        return ClipStatus(
            request_id,
            "failed",
            episode_id=episode_id,
            error={
                "code": str(error.get("code", "failed")),
                "message": str(error.get("message", "")),
                "retryable": error.get("retryable"),
            },
        )
    if result.get("event_type") != "clip.ready":
        return ClipStatus(request_id, status, episode_id=episode_id)
    url = str(result["clip_url"])
    expires_at = _parse_time(result.get("expires_at"))
    now = datetime.now(UTC)
    if expires_at is None or expires_at - now < _MIN_URL_LIFE:
        url = await media.presign_get(str(result["s3_key"]), url_expiry_s)
        expires_at = now + timedelta(seconds=url_expiry_s)
    return ClipStatus(
        request_id,
        "completed",
        episode_id=episode_id,
        clip_url=url,
        cache_hit=result.get("cache_hit"),
        generation_time_ms=result.get("generation_time_ms"),
        s3_key=result.get("s3_key"),
        size_bytes=result.get("size_bytes"),
        expires_at=expires_at,
    )


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
