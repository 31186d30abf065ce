"""Two old systems' contracts, kept as thin aliases over Tapedeck jobs.

**The video merger Lambda** (``input_videos``, ``output_key`` -> ``{s3_key, duration,
size}``): a ``concat_video`` merge job through ``submit_and_wait``, answered when the
merger's ``merge.completed``/``merge.failed`` comes back within the wait, else by its job
id. Keys may be given as the Lambda took them, ``s3://<bucket>/<key>``, when the bucket
is Tapedeck's; every key must lie under the tenant's ingest or media prefix.

**The MusicGen workflow** (``POST /api/v3/audio/generate-scenes`` with ``job_id`` and
``audio_params``, then ``status/{job_id}`` and ``{job_id}/download``): an audio job of kind
music, one scene per scene of the request (or, when the request has none, of the tenant's
job named ``job_id``), each continuing the last, as MusicGen did. The old workflow joined
the scenes with a fade out and a fade in of ``fade_duration``; here that join is a
``crossfade_audio`` merge (``fade_mode: fade``), started by the first status read or
download that finds the audio rendered (the job ``<audio job>.soundtrack``), so the
download is one file. The old job id stays usable: status and download accept it as
well as the audio job's own id, and answer for the newest audio job made for it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from schemas import ErrorInfo
from schemas.audio import (
    MAX_SCENE_SECONDS,
    AudioFailed,
    AudioParams,
    AudioRendered,
    AudioSegment,
    AudioTier,
    ErrorStrategy,
    Scene,
)
from schemas.codes import Code
from schemas.ids import PlainId
from schemas.job import AudioJobSpec, MergeJobSpec
from schemas.merge import MergeCompleted, MergeFailed, MergeParams, MergeRequested, SyncMode
from schemas.names import Producer, Stage
from services.common.errors import PermanentError
from services.common.job_store import StageStatus
from services.common.keys import audio_key, ingest_prefix, is_under
from services.common.mongo import Doc
from services.common.ports import Emitter, JobRepo, MediaPort
from services.submitter.jobs.control import JobFinished, JobNotFound
from services.submitter.jobs.intake import EMIT_TIMEOUT_S, media_prefix, new_job_id
from services.submitter.jobs.stage_jobs import stage_event
from services.submitter.requests import (
    Accepted,
    RequestPorts,
    SubmitFailed,
    deadline_in,
    recorded_outputs,
    submit_and_wait,
)

log = logging.getLogger(__name__)

# Counts one submission against the tenant's fair use (``JobGuard.admit``).
Admit = Callable[[str], Awaitable[None]]


class ForeignKey(PermanentError):
    public = True
    code = Code.FORBIDDEN_S3_KEY


class InputMissing(PermanentError):
    public = True
    code = Code.INPUT_MISSING


class NotReady(PermanentError):
    public = True
    code = Code.NOT_READY
    retry_after_s = 5


class NoScenes(PermanentError):
    public = True
    code = Code.NO_SCENES


def _is_tenants(job: Mapping[str, Any] | None, tenant_id: str) -> bool:
    return job is not None and job.get("tenant_id") == tenant_id


# -- the video merger -----------------------------------------------------------------------

# What the merger writes a concat_video to (``services.merger.formats.VIDEO_OUTPUTS``).
MERGE_OUTPUT_EXTS = ("mp4", "m4v", "mov", "mkv")
S3_URI = "s3://"


@dataclass(frozen=True)
class MergePorts:
    requests: RequestPorts
    media: MediaPort
    bucket: str  # the one bucket an s3:// URI may name
    key_prefix: str  # S3_KEY_PREFIX: a URI names the real key, which starts with it
    wait_timeout_s: float
    url_expiry_s: int
    admit: Admit | None = None


@dataclass(frozen=True)
class MergeDone:
    job_id: str
    s3_key: str
    duration_ms: int
    size_bytes: int
    copied: bool


@dataclass(frozen=True)
class MergePending:
    job_id: str


class MergeRequestFailed(Exception):
    """The merger answered ``merge.failed``."""

    def __init__(self, job_id: str, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.job_id = job_id
        self.error = error


def tenant_key(value: str, where: str, tenant_id: str, *, bucket: str, key_prefix: str = "") -> str:
    """The logical key ``value`` names (a key, or ``s3://<bucket>/<key>`` as the old
    Lambda took it), if it lies under the tenant's ingest or media prefix; else
    ``ForeignKey``."""
    key = value
    if value.startswith(S3_URI):
        named, _, key = value.removeprefix(S3_URI).partition("/")
        if named != bucket:
            raise ForeignKey(f"{where}: only objects in this service's bucket can be merged")
        if not key.startswith(key_prefix):
            raise ForeignKey(f"{where}: not an object of this service")
        key = key.removeprefix(key_prefix)
    allowed = (ingest_prefix(tenant_id), media_prefix(tenant_id))
    if not any(is_under(key, prefix) for prefix in allowed):
        raise ForeignKey(f"{where} must be under {allowed[0]!r} or {allowed[1]!r}")
    return key


def concat_spec(
    tenant_id: str,
    input_videos: Sequence[str],
    output_key: str,
    *,
    bucket: str,
    key_prefix: str = "",
) -> MergeJobSpec:
    """The merge job the old Lambda's request stands for."""
    inputs = [
        tenant_key(v, f"input_videos[{i}]", tenant_id, bucket=bucket, key_prefix=key_prefix)
        for i, v in enumerate(input_videos)
    ]
    output = tenant_key(output_key, "output_key", tenant_id, bucket=bucket, key_prefix=key_prefix)
    return MergeJobSpec(operation="concat_video", inputs=inputs, output_key=output)


async def merge_videos(
    ports: MergePorts, tenant_id: str, input_videos: Sequence[str], output_key: str
) -> MergeDone | MergePending:
    """Concatenate ``input_videos`` into ``output_key``; the answer when the merger
    gives it within ``wait_timeout_s``, else the job to poll. Raises ``ForeignKey``,
    ``InputMissing``, ``MergeRequestFailed``, ``SubmitFailed`` and ``TooManyPending``."""
    spec = concat_spec(
        tenant_id, input_videos, output_key, bucket=ports.bucket, key_prefix=ports.key_prefix
    )
    # Checked here so a missing input costs no job; the merger checks again.
    heads = await asyncio.gather(*(ports.media.head(key) for key in spec.inputs))
    for i, head in enumerate(heads):
        if head is None:
            raise InputMissing(f"input_videos[{i}]: no such object")
    if ports.admit is not None:
        await ports.admit(tenant_id)
    job_id = new_job_id()
    event = MergeRequested(
        job_id=job_id, tenant_id=tenant_id, producer=Producer.SUBMITTER, **spec.payload()
    )

    def failed(error: ErrorInfo) -> MergeFailed:
        return MergeFailed(
            job_id=job_id,
            tenant_id=tenant_id,
            producer=Producer.SUBMITTER,
            correlation_id=event.correlation_id,
            error=error,
            operation=spec.operation,
        )

    result = await submit_and_wait(
        ports.requests,
        event,
        job_id=job_id,
        stage=Stage.MERGE,
        kind=spec.job_kind,
        fields={"spec": spec.model_dump(mode="json")},
        deadline=deadline_in(ports.wait_timeout_s),
        failed=failed,
    )
    if isinstance(result, Accepted):
        return MergePending(result.job_id)
    if isinstance(result, MergeFailed):
        raise MergeRequestFailed(job_id, result.error)
    if not isinstance(result, MergeCompleted):
        raise TypeError(f"not a merge result: {result.event_type}")
    return MergeDone(job_id, result.s3_key, result.duration_ms, result.size_bytes, result.copied)


@dataclass(frozen=True)
class MergeStatus:
    job_id: str
    status: str  # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED
    progress: int
    done: MergeDone | None = None
    error: ErrorInfo | None = None


async def merge_status(jobs: JobRepo, tenant_id: str, job_id: str) -> MergeStatus:
    """A merge job of the tenant, from its stage record; ``JobNotFound`` for anything
    else (another tenant's job, a job of another kind)."""
    job = await jobs.job(job_id)
    if job is None or not _is_tenants(job, tenant_id) or job.get("kind") != "merge":
        raise JobNotFound(f"no merge {job_id[:64]!r}")
    stage: Doc = (job.get("stages") or {}).get(Stage.MERGE) or {}
    status = str(stage.get("status") or StageStatus.PENDING)
    outcome = _last(recorded_outputs(stage), MergeCompleted, MergeFailed)
    if isinstance(outcome, MergeCompleted):
        done = MergeDone(
            job_id, outcome.s3_key, outcome.duration_ms, outcome.size_bytes, outcome.copied
        )
        return MergeStatus(job_id, StageStatus.COMPLETED, 100, done=done)
    if isinstance(outcome, MergeFailed):
        return MergeStatus(job_id, StageStatus.FAILED, _percent(stage), error=outcome.error)
    return MergeStatus(job_id, status, _percent(stage))


# -- the MusicGen workflow ------------------------------------------------------------------

LEGACY_FIELD = "legacy_audio"
SOUNDTRACK_SUFFIX = ".soundtrack"
MAX_SCENES = 50
FAILED_TO_QUEUE = "the job could not be queued; try again"
# Shares of the old status's progress: the scenes' audio, then the join.
AUDIO_SHARE = 90


class OldAudioParams(BaseModel):
    """The old workflow's ``audio_params``, with its defaults."""

    model_config = ConfigDict(extra="forbid", strict=True)

    fade_duration: float = Field(
        default=1.0,
        ge=0,
        le=10,
        allow_inf_nan=False,
        description="Seconds of fade out and fade in where two scenes' audio meet.",
    )
    sync_mode: SyncMode = Field(
        default="trim",
        description="Kept for the old contract; audio made alone has no video to fit to "
        "(a production job's audio_params.sync_mode does).",
    )
    merge_with_video: bool = Field(
        default=True,
        description="Kept for the old contract; audio made alone is not put on a video "
        "(a production job's audio_params.merge_with_video does).",
    )
    error_strategy: ErrorStrategy = Field(
        default="continue_with_silence",
        description="A scene that fails: silence in its place, or the whole job fails (halt).",
    )
    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        pattern=r"\S",
        description="Used for every scene instead of the scenes' own prompts.",
    )


class OldScene(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(min_length=1, max_length=2000, pattern=r"\S", examples=["calm piano"])
    duration_s: float = Field(gt=0, le=MAX_SCENE_SECONDS, allow_inf_nan=False, examples=[5])


class GenerateScenesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    job_id: PlainId = Field(
        description="The job the audio is for; status and download accept it. Without "
        "'scenes', the tenant's Tapedeck job of this id gives them (404 job_not_found "
        "when there is none; 409 no_scenes when it has nothing to make audio for).",
        min_length=1,
        max_length=128,
        examples=["123"],
    )
    audio_params: OldAudioParams = Field(default_factory=OldAudioParams)
    scenes: list[OldScene] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SCENES,
        description="Scenes to make music for, in order. Not in the old contract, whose "
        "workflow read them from its own job.",
    )
    tier: AudioTier = Field(default="basic", description="The audio tier (see /v1/jobs).")


class AliasIndex(Protocol):
    """Finds the newest audio job made for an old job id."""

    async def latest(self, tenant_id: str, legacy_job_id: str) -> str | None: ...


class LegacyAudioIndex:
    """``AliasIndex`` over the ``jobs`` collection (the ``legacy_audio.job_id`` field)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._jobs = db["jobs"]

    async def ensure_indexes(self) -> None:
        await self._jobs.create_index(
            [
                ("tenant_id", ASCENDING),
                (f"{LEGACY_FIELD}.job_id", ASCENDING),
                ("created_at", DESCENDING),
            ]
        )

    async def latest(self, tenant_id: str, legacy_job_id: str) -> str | None:
        doc = await self._jobs.find_one(
            {"tenant_id": tenant_id, f"{LEGACY_FIELD}.job_id": legacy_job_id},
            projection={"_id": 1},
            sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
        )
        return None if doc is None else str(doc["_id"])


@dataclass(frozen=True)
class LegacyAudioPorts:
    jobs: JobRepo
    aliases: AliasIndex
    media: MediaPort
    emitter: Emitter
    url_expiry_s: int
    admit: Admit | None = None


LegacyStatus = Literal["pending", "processing", "completed", "failed"]


@dataclass(frozen=True)
class LegacyAudio:
    """The old status's facts about one audio job."""

    job_id: str  # the old job id it was made for
    audio_job_id: str
    status: LegacyStatus
    progress: int
    audio_status: str  # PENDING, RUNNING, COMPLETED, FAILED (contentcraft's audioStatus)
    scenes_total: int
    audio_params: Mapping[str, Any]
    audio_key: str | None = None  # the joined soundtrack, once there is one
    error: ErrorInfo | None = None
    silent_scenes: list[int] = field(default_factory=list)
    created_at: Any = None


def old_scenes(spec: Mapping[str, Any], job: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(prompt, seconds) per scene of a stored job: a production job's scenes (or one
    run of its whole length, in pieces the audio agent takes), an audio job's scenes."""
    if job.get("kind") == "audio":
        return [
            (str(s["prompt"]), float(s.get("duration_s") or s.get("video_duration_s") or 0))
            for s in sorted(spec.get("scenes") or [], key=lambda s: s.get("index", 0))
        ]
    if job.get("kind") != "production":
        return []
    prompt = (spec.get("audio_params") or {}).get("prompt")
    scenes = spec.get("scenes") or []
    if scenes:
        return [(str(prompt or s["prompt"]), float(s["duration_s"])) for s in scenes]
    seconds = spec.get("duration_seconds") or (job.get("video") or {}).get("duration_s")
    if not seconds:
        return []
    pieces = max(1, math.ceil(float(seconds) / MAX_SCENE_SECONDS))
    return [(str(prompt or spec["prompt"]), float(seconds) / pieces)] * pieces


def audio_spec(req: GenerateScenesRequest, scenes: Sequence[tuple[str, float]]) -> AudioJobSpec:
    """The music job the old request stands for."""
    override = req.audio_params.prompt
    return AudioJobSpec(
        tier=req.tier,
        kind="music",
        scenes=[
            Scene(index=i, prompt=override or prompt, duration_s=float(seconds))
            for i, (prompt, seconds) in enumerate(scenes)
        ],
        params=AudioParams(
            format="mp3", continuation=True, error_strategy=req.audio_params.error_strategy
        ),
    )


async def _scenes_for(
    ports: LegacyAudioPorts, tenant_id: str, req: GenerateScenesRequest
) -> tuple[list[tuple[str, float]], str]:
    if req.scenes:
        return [(s.prompt, s.duration_s) for s in req.scenes], "request"
    job = await ports.jobs.job(req.job_id)
    if job is None or not _is_tenants(job, tenant_id):
        raise JobNotFound(f"no job {req.job_id[:64]!r}; send 'scenes' to make audio for it")
    scenes = old_scenes(job.get("spec") or {}, job)
    if (
        not scenes
        or len(scenes) > MAX_SCENES
        or any(not 0 < s <= MAX_SCENE_SECONDS for _, s in scenes)
    ):
        raise NoScenes("the job has no scenes with lengths to make audio for; send 'scenes'")
    return scenes, "job"


@dataclass(frozen=True)
class Generating:
    audio_job_id: str
    scenes: int


async def generate_scenes(
    ports: LegacyAudioPorts, tenant_id: str, req: GenerateScenesRequest
) -> Generating:
    """Start the music for the old request."""
    scenes, source = await _scenes_for(ports, tenant_id, req)
    spec = audio_spec(req, scenes)
    if ports.admit is not None:
        await ports.admit(tenant_id)
    job_id = new_job_id()
    stage, event = stage_event(job_id, tenant_id, spec)
    legacy = {
        "job_id": req.job_id,
        "scenes_from": source,
        "audio_params": req.audio_params.model_dump(mode="json"),
    }
    await ports.jobs.create_job(
        job_id,
        tenant_id,
        spec.job_kind,
        {
            "spec": spec.model_dump(mode="json"),
            "correlation_id": event.correlation_id,
            LEGACY_FIELD: legacy,
        },
    )
    await ports.jobs.transition(job_id, stage, StageStatus.PENDING, {"tenant_id": tenant_id})
    await _emit(ports, event, job_id, stage)
    return Generating(job_id, len(spec.scenes))


async def _emit(ports: LegacyAudioPorts, event: Any, job_id: str, stage: str) -> None:
    try:
        # Bounded: a broker that does not answer must not hold the HTTP request open.
        async with asyncio.timeout(EMIT_TIMEOUT_S):
            await ports.emitter.emit([event])
    except Exception as exc:
        await ports.jobs.transition(job_id, stage, StageStatus.FAILED, {"error": FAILED_TO_QUEUE})
        raise SubmitFailed(job_id, f"emit failed: {type(exc).__name__}") from exc


async def find_legacy_job(ports: LegacyAudioPorts, tenant_id: str, job_id: str) -> Doc:
    """The audio job ``job_id`` names: its own id, or the old job id it was made for
    (the newest such job). Anything else is ``JobNotFound``."""
    job = await ports.jobs.job(job_id)
    if _is_tenants(job, tenant_id) and LEGACY_FIELD in (job or {}):
        assert job is not None
        return job
    found = await ports.aliases.latest(tenant_id, job_id)
    job = await ports.jobs.job(found) if found else None
    if job is None or not _is_tenants(job, tenant_id):
        raise JobNotFound(f"no audio job for {job_id[:64]!r}")
    return job


@dataclass(frozen=True)
class _Soundtrack:
    key: str | None = None  # ready
    percent: int = 0
    error: ErrorInfo | None = None


async def legacy_audio(ports: LegacyAudioPorts, tenant_id: str, job_id: str) -> LegacyAudio:
    """The old status of the audio job ``job_id`` names; starts the join of its scenes
    once they are rendered (and only once)."""
    job = await find_legacy_job(ports, tenant_id, job_id)
    legacy: Mapping[str, Any] = job.get(LEGACY_FIELD) or {}
    stage: Doc = (job.get("stages") or {}).get(Stage.AUDIO) or {}
    state = str(stage.get("status") or StageStatus.PENDING)
    outcome = _last(recorded_outputs(stage), AudioRendered, AudioFailed)
    params = dict(legacy.get("audio_params") or {})
    audio = LegacyAudio(
        job_id=str(legacy.get("job_id") or job["job_id"]),
        audio_job_id=str(job["job_id"]),
        status="pending",
        progress=0,
        audio_status="PENDING",
        scenes_total=len((job.get("spec") or {}).get("scenes") or []),
        audio_params=params,
        created_at=job.get("created_at"),
    )
    if job.get("status") == "CANCELLED":
        return _failed(audio, _error(Code.CANCELLED, "the job was cancelled"), _percent(stage))
    if isinstance(outcome, AudioFailed):
        return _failed(audio, outcome.error, _percent(stage))
    if outcome is None:
        if state in (StageStatus.FAILED, StageStatus.CANCELLED):
            code = Code.CANCELLED if state == StageStatus.CANCELLED else Code.SUBMIT_FAILED
            return _failed(audio, _error(code, str(stage.get("error") or FAILED_TO_QUEUE)), 0)
        if state == StageStatus.PENDING:
            return audio
        progress = _percent(stage) * AUDIO_SHARE // 100
        return replace(audio, status="processing", progress=progress, audio_status="RUNNING")
    silent = sorted(s.scene_index for s in outcome.segments if s.silent_fallback)
    audio = replace(audio, silent_scenes=silent)
    fade = float(params.get("fade_duration", 1.0))
    soundtrack = await _soundtrack(ports, job, outcome.segments, fade)
    if soundtrack.error is not None:
        return _failed(audio, soundtrack.error, AUDIO_SHARE)
    if soundtrack.key is None:
        progress = AUDIO_SHARE + soundtrack.percent * (100 - AUDIO_SHARE) // 100
        return replace(audio, status="processing", progress=min(progress, 99),
                       audio_status="RUNNING")  # fmt: skip
    return replace(audio, status="completed", progress=100, audio_status="COMPLETED",
                   audio_key=soundtrack.key)  # fmt: skip


def _failed(audio: LegacyAudio, error: ErrorInfo, progress: int) -> LegacyAudio:
    return replace(audio, status="failed", progress=progress, audio_status="FAILED", error=error)


def soundtrack_request(
    job: Mapping[str, Any], segments: Sequence[AudioSegment], fade_duration_s: float
) -> MergeRequested:
    """The merge that joins an audio job's scenes the old way: each faded out, the next
    faded in, end to end."""
    job_id = str(job["job_id"])
    return MergeRequested(
        job_id=job_id + SOUNDTRACK_SUFFIX,
        tenant_id=str(job["tenant_id"]),
        correlation_id=str(job.get("correlation_id") or job_id),
        producer=Producer.SUBMITTER,
        operation="crossfade_audio",
        inputs=[s.s3_key for s in sorted(segments, key=lambda s: s.scene_index)],
        output_key=audio_key(job_id, "soundtrack.mp3"),
        params=MergeParams(fade_mode="fade", fade_duration_s=fade_duration_s),
    )


async def _soundtrack(
    ports: LegacyAudioPorts, job: Doc, segments: Sequence[AudioSegment], fade: float
) -> _Soundtrack:
    if len(segments) == 1:
        return _Soundtrack(key=segments[0].s3_key)
    request = soundtrack_request(job, segments, fade)
    merge = await ports.jobs.job(request.job_id)
    if merge is None:
        # Claimed by creating its job: of two reads at once, one sends the request.
        created = await ports.jobs.create_job(
            request.job_id,
            request.tenant_id,
            "merge",
            {
                "correlation_id": request.correlation_id,
                "spec": MergeJobSpec(**_merge_fields(request)).model_dump(mode="json"),
            },
        )
        if created:
            await ports.jobs.transition(
                request.job_id, Stage.MERGE, StageStatus.PENDING, {"tenant_id": request.tenant_id}
            )
            try:
                await _emit(ports, request, request.job_id, Stage.MERGE)
            except SubmitFailed:
                log.warning("could not request the soundtrack of %s", job["job_id"])
                return _Soundtrack(error=_error(Code.SUBMIT_FAILED, FAILED_TO_QUEUE))
        return _Soundtrack()
    stage: Doc = (merge.get("stages") or {}).get(Stage.MERGE) or {}
    outcome = _last(recorded_outputs(stage), MergeCompleted, MergeFailed)
    if isinstance(outcome, MergeCompleted):
        return _Soundtrack(key=outcome.s3_key)
    if isinstance(outcome, MergeFailed):
        return _Soundtrack(error=outcome.error)
    if stage.get("status") in (StageStatus.FAILED, StageStatus.CANCELLED):
        return _Soundtrack(error=_error(Code.SUBMIT_FAILED, FAILED_TO_QUEUE))
    return _Soundtrack(percent=_percent(stage))


def _merge_fields(request: MergeRequested) -> dict[str, Any]:
    return {
        "operation": request.operation,
        "inputs": request.inputs,
        "output_key": request.output_key,
        "params": request.params,
    }


async def legacy_download(ports: LegacyAudioPorts, tenant_id: str, job_id: str) -> str:
    """A presigned URL of the joined audio; ``NotReady`` while it is being made,
    ``JobFinished`` when it never will be."""
    audio = await legacy_audio(ports, tenant_id, job_id)
    if audio.status == "failed":
        message = audio.error.message if audio.error else "the audio job failed"
        raise JobFinished(f"the audio job failed: {message}")
    if audio.audio_key is None:
        raise NotReady(f"the audio is not ready yet ({audio.status}, {audio.progress}%)")
    return await ports.media.presign_get(audio.audio_key, ports.url_expiry_s)


# -- shared ---------------------------------------------------------------------------------


def _last(events: Sequence[Any], *types: type) -> Any:
    for event in reversed(events):
        if isinstance(event, types):
            return event
    return None


def _percent(stage: Mapping[str, Any]) -> int:
    if stage.get("status") == StageStatus.COMPLETED:
        return 100
    progress = stage.get("progress")
    try:
        value = int(progress.get("percent", 0)) if isinstance(progress, dict) else 0
    except (TypeError, ValueError):
        return 0
    return max(0, min(value, 100))


def _error(code: str, message: str) -> ErrorInfo:
    return ErrorInfo(code=code, message=message, retryable=True, attempts=1)
