"""What ``GET /v1/jobs/{id}`` tells about a job: its status, 0-100 progress from the
stages' own progress, each stage's record, and presigned URLs for what it made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.names import VOICEOVER_SUFFIX
from services.common.mongo import Doc
from services.common.ports import MediaPort

# Shares of the whole a production job's parts weigh (they add up to 100).
WEIGHTS = {"video": 30, "audio": 40, "soundtrack": 10, "mux": 20}
WEIGHTS_WITHOUT_AUDIO = {"video": 80, "mux": 20}
OUTPUT_NAMES = ("result", "video", "audio", "voiceover")


@dataclass(frozen=True)
class StageView:
    name: str
    status: str
    percent: int | None
    attempt: int | None
    created_at: Any
    updated_at: Any
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class JobView:
    job_id: str
    kind: str
    status: str
    progress: int
    created_at: Any
    updated_at: Any
    version: int | None
    stages: list[StageView]
    outputs: dict[str, str]  # name -> S3 key
    urls: dict[str, str]  # name -> presigned URL
    audio_status: str | None
    audio_error: str | None
    error: Mapping[str, Any] | None
    timeline: list[Mapping[str, Any]] = field(default_factory=list)
    webhooks: list[Mapping[str, Any]] = field(default_factory=list)


def _percent(stage: Mapping[str, Any] | None) -> int:
    if stage is None:
        return 0
    if stage.get("status") == "COMPLETED":
        return 100
    progress = stage.get("progress")
    return int(progress.get("percent", 0)) if isinstance(progress, dict) else 0


def progress(job: Mapping[str, Any], stages: Mapping[str, Mapping[str, Any]]) -> int:
    """0-100 from what is done and the running stages' own progress."""
    status = job.get("status")
    if status == "COMPLETED":
        return 100
    if job.get("kind") != "production":
        return max((_percent(s) for s in stages.values()), default=0)
    video, audio = job.get("video", {}), job.get("audio", {})
    n = int(audio.get("attempt", 1))
    tag = f"a{n}"
    parts: dict[str, int] = {}
    parts["video"] = 100 if video.get("status") == "READY" else _percent(stages.get("merge.concat"))
    requested = audio.get("status") != "NOT_REQUESTED"
    if requested:
        music = stages.get("audio" if n == 1 else f"audio.a{n}")
        parts["audio"] = 100 if audio.get(
            "music", {}).get(tag) is not None else _percent(music)  # fmt: skip
        parts["soundtrack"] = 100 if tag in audio.get("soundtrack", {}) else _percent(
            stages.get(f"merge.soundtrack-{tag}"))  # fmt: skip
    done = f"v{n}" in job.get("results", {})
    parts["mux"] = 100 if done else _percent(stages.get(f"merge.mux-v{n}"))
    weights = WEIGHTS if requested else WEIGHTS_WITHOUT_AUDIO
    total = sum(weights[k] * parts.get(k, 0) for k in weights) // 100
    return min(total, 99)  # 100 only once the job says it is complete


def _stage_view(name: str, doc: Mapping[str, Any]) -> StageView:
    outputs = doc.get("outputs") or []
    error = None
    for out in outputs:
        if isinstance(out, dict) and isinstance(out.get("error"), dict):
            error = {"code": out["error"].get("code"), "message": out["error"].get("message")}
    return StageView(name, str(doc.get("status", "PENDING")), _percent(doc),
                     doc.get("attempt_of_job") or doc.get("progress", {}).get("attempt"),
                     doc.get("created_at"), doc.get("updated_at"), error)  # fmt: skip


async def job_view(
    job: Doc, stages: Mapping[str, Doc], voice_stages: Mapping[str, Doc], media: MediaPort,
    url_expiry_s: int,
) -> JobView:  # fmt: skip
    views = [_stage_view(name, doc) for name, doc in sorted(stages.items())]
    views += [_stage_view(f"voiceover.{name}" if name != "audio" else "voiceover", doc)
              for name, doc in sorted(voice_stages.items())]  # fmt: skip
    outputs = {k: v for k, v in (job.get("outputs") or {}).items() if k in OUTPUT_NAMES}
    urls = {name: await media.presign_get(key, url_expiry_s) for name, key in outputs.items()}
    return JobView(
        job_id=str(job["job_id"]),
        kind=str(job.get("kind", "")),
        status=str(job.get("status") or _status_from_stages(stages)),
        progress=progress(job, stages),
        created_at=job.get("created_at"),
        updated_at=job.get("updated_at"),
        version=job.get("version"),
        stages=views,
        outputs=outputs,
        urls=urls,
        audio_status=job.get("audio_status") or _running_audio(job),
        audio_error=job.get("audio_error"),
        error=job.get("error"),
        timeline=list(job.get("timeline") or [])[-100:],
        webhooks=list(job.get("webhooks") or [])[-50:],
    )


def _running_audio(job: Mapping[str, Any]) -> str | None:
    status = job.get("audio", {}).get("status")
    return {"PENDING": "RUNNING", "READY": "RUNNING", "FAILED": "FAILED",
            "NOT_REQUESTED": "NOT_REQUESTED"}.get(status) if status else None  # fmt: skip


def _status_from_stages(stages: Mapping[str, Mapping[str, Any]]) -> str:
    """Jobs of the stage kinds (audio, merge) have their stage's status."""
    statuses = [str(s.get("status")) for s in stages.values()]
    return statuses[0] if len(statuses) == 1 else "RUNNING" if statuses else "PENDING"


def voice_job_id(job_id: str) -> str:
    return job_id + VOICEOVER_SUFFIX
