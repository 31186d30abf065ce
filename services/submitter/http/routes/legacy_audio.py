"""``/api/v3/audio``: the old MusicGen workflow's endpoints (generate-scenes, status,
download) as aliases over an audio job (``services.submitter.legacy``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from services.submitter.http.deps import RuntimeDep, Tenant
from services.submitter.http.errors import bounded
from services.submitter.http.json_numbers import IntegralNumbersRoute
from services.submitter.http.models import PLAIN_ID_SCHEMA, ErrorResponse
from services.submitter.legacy import (
    GenerateScenesRequest,
    LegacyAudio,
    LegacyStatus,
    OldAudioParams,
    generate_scenes,
    legacy_audio,
    legacy_download,
)

router = APIRouter(
    prefix="/api/v3/audio", tags=["audio (MusicGen workflow)"], route_class=IntegralNumbersRoute
)


class GenerateScenesOut(BaseModel):
    job_id: str = Field(description="The job id of the request, as sent.")
    status: Literal["processing"] = "processing"
    message: str = "Audio generation started"
    audio_job_id: str = Field(description="Tapedeck's audio job (also at /v1/jobs/{id}).")
    scenes: int = Field(description="Scenes the music is made for.")
    audio_params: OldAudioParams
    status_url: str
    download_url: str


class LegacyErrorOut(BaseModel):
    code: str
    message: str


class LegacyStatusOut(BaseModel):
    job_id: str = Field(description="The job id the audio was asked for.")
    audio_job_id: str
    status: LegacyStatus
    progress: int = Field(ge=0, le=100)
    scenes_total: int
    silent_scenes: list[int] = Field(description="Scenes whose audio failed: silence instead.")
    audio_params: dict[str, Any]
    audio_url: str | None = Field(description="A presigned URL of the audio, once completed.")
    download_url: str | None = Field(description="Redirects to the audio, once completed.")
    error: LegacyErrorOut | None
    # The old front end's names.
    audioUrl: str | None
    audioStatus: str = Field(description="PENDING, RUNNING, COMPLETED or FAILED")
    audioError: str | None
    created_at: datetime | None


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_UNAUTHORIZED = _error("Missing, invalid or revoked API key.")
_UNAVAILABLE = _error("A backing service is unavailable; retry.")
_NOT_FOUND = _error(
    "No audio job for this tenant under that id, neither its own nor the job id it was "
    "asked for (job_not_found)."
)
_GENERATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _UNAUTHORIZED,
    404: _error("Without 'scenes': the tenant has no job of that job_id (job_not_found)."),
    409: _error("Without 'scenes': the job has no scenes with lengths (no_scenes)."),
    422: _error("A field breaks its rule (invalid_request)."),
    429: _error("Over the tenant's job rate (rate_limited); see Retry-After."),
    503: _error(
        "A backing service is unavailable, or the job could not be queued (submit_failed); retry."
    ),
}
_STATUS_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _UNAUTHORIZED,
    404: _NOT_FOUND,
    503: _UNAVAILABLE,
}
_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    307: {"description": "Redirect to a presigned URL of the audio (MP3)."},
    401: _UNAUTHORIZED,
    404: _NOT_FOUND,
    409: _error(
        "Not made yet (not_ready, with Retry-After), or never will be: the job "
        "failed (job_finished)."
    ),
    503: _UNAVAILABLE,
}
# Declared by hand, not as a FastAPI parameter, which would add a 422 these routes never
# answer: any other id is one no job has (404).
_JOB_ID_PARAMETER: dict[str, Any] = {
    "parameters": [
        {
            "name": "job_id",
            "in": "path",
            "required": True,
            "description": "The job_id sent to generate-scenes, or the audio_job_id it gave.",
            "schema": {**PLAIN_ID_SCHEMA, "examples": ["123"]},
        }
    ]
}


@router.post(
    "/generate-scenes",
    status_code=202,
    response_model=GenerateScenesOut,
    responses=_GENERATE_RESPONSES,
    summary="Start music for a job's scenes (the MusicGen workflow's contract)",
)
async def generate(
    request: Request, tenant: Tenant, runtime: RuntimeDep, body: GenerateScenesRequest
) -> JSONResponse:
    """Music for each scene, each continuing the last, joined with a fade out and in of
    ``audio_params.fade_duration``. Answers at once; follow ``status_url``."""
    started = await generate_scenes(runtime.legacy_audio_ports(), tenant, body)
    status_url = str(request.url_for("legacy_audio_status", job_id=started.audio_job_id))
    download_url = str(request.url_for("legacy_audio_download", job_id=started.audio_job_id))
    out = GenerateScenesOut(
        job_id=body.job_id,
        audio_job_id=started.audio_job_id,
        scenes=started.scenes,
        audio_params=body.audio_params,
        status_url=status_url,
        download_url=download_url,
    )
    return JSONResponse(
        out.model_dump(mode="json"), status_code=202, headers={"Location": status_url}
    )


@router.get(
    "/status/{job_id}",
    name="legacy_audio_status",
    response_model=LegacyStatusOut,
    responses=_STATUS_RESPONSES,
    openapi_extra=_JOB_ID_PARAMETER,
    summary="Status of the audio made for a job",
)
async def status(request: Request, tenant: Tenant, runtime: RuntimeDep) -> LegacyStatusOut:
    ports = runtime.legacy_audio_ports()
    audio = await legacy_audio(ports, tenant, request.path_params["job_id"])
    url = None
    if audio.audio_key is not None:
        url = await runtime.media.presign_get(audio.audio_key, ports.url_expiry_s)
    download = None
    if audio.status == "completed":
        download = str(request.url_for("legacy_audio_download", job_id=audio.audio_job_id))
    return status_out(audio, url, download)


@router.get(
    "/{job_id}/download",
    name="legacy_audio_download",
    status_code=307,
    responses=_DOWNLOAD_RESPONSES,
    openapi_extra=_JOB_ID_PARAMETER,
    summary="Download the audio made for a job",
)
async def download(request: Request, tenant: Tenant, runtime: RuntimeDep) -> RedirectResponse:
    url = await legacy_download(runtime.legacy_audio_ports(), tenant, request.path_params["job_id"])
    return RedirectResponse(url, status_code=307)


def status_out(audio: LegacyAudio, url: str | None, download_url: str | None) -> LegacyStatusOut:
    error = audio.error
    return LegacyStatusOut(
        job_id=audio.job_id,
        audio_job_id=audio.audio_job_id,
        status=audio.status,
        progress=audio.progress,
        scenes_total=audio.scenes_total,
        silent_scenes=audio.silent_scenes,
        audio_params=dict(audio.audio_params),
        audio_url=url,
        download_url=download_url,
        error=LegacyErrorOut(code=error.code, message=bounded(error.message)) if error else None,
        audioUrl=url,
        audioStatus=audio.audio_status,
        audioError=bounded(error.message) if error else None,
        created_at=audio.created_at,
    )
