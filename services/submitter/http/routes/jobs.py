"""The job API: submit (every kind, production included), read, list, download, cancel,
retry the audio."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse, RedirectResponse

from schemas.codes import Code
from schemas.job import JobSpec, ProductionJobSpec
from services.submitter.http.deps import RuntimeDep, Tenant
from services.submitter.http.errors import ApiError
from services.submitter.http.job_models import JobAcceptedOut, JobListOut, JobOut, StageOut
from services.submitter.http.json_numbers import IntegralNumbersRoute
from services.submitter.http.models import ErrorResponse
from services.submitter.jobs.stage_jobs import submit_stage_job
from services.submitter.jobs.view import JobView, job_view, voice_job_id
from services.submitter.runtime import Runtime

router = APIRouter(tags=["jobs"], route_class=IntegralNumbersRoute)

JobIdPath = Annotated[str, "job id"]
Status = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
Kind = Literal["audio", "clip", "merge", "production"]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


COMMON: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, invalid or revoked API key."),
    404: _error("No such job for this tenant (job_not_found)."),
    503: _error("A backing service is unavailable; retry."),
}
SUBMIT: dict[int | str, dict[str, Any]] = {
    **COMMON,
    403: _error("A video key outside the tenant's ingest or media prefix (forbidden_s3_key)."),
    409: _error("The Idempotency-Key was used with another body (idempotency_conflict)."),
    422: _error("A field breaks its rule (the error names it); a rule between fields the "
                "schema cannot state (invalid_spec: one source of video, a video per scene or "
                "none, text on every scene for a voiceover); a video key with no object "
                "(invalid_s3_key); a refused callback_url (invalid_callback_url)."),
    429: _error("Over the tenant's rate or in-flight limit (rate_limited, too_many_jobs); "
                "see Retry-After."),
}  # fmt: skip


def _out(view: JobView) -> JobOut:
    urls = view.urls
    error = view.error
    return JobOut(
        job_id=view.job_id,
        kind=view.kind,
        status=view.status,
        progress=view.progress,
        created_at=view.created_at,
        updated_at=view.updated_at,
        version=view.version,
        stages=[
            StageOut(
                name=s.name,
                status=s.status,
                progress=s.percent,
                attempt=s.attempt,
                created_at=s.created_at,
                updated_at=s.updated_at,
                error=dict(s.error) if s.error else None,
            )
            for s in view.stages
        ],
        outputs=view.outputs,
        urls=urls,
        result_url=urls.get("result"),
        video_url=urls.get("video"),
        audio_url=urls.get("audio"),
        audio_status=view.audio_status,
        audio_error=view.audio_error,
        audioUrl=urls.get("audio"),
        audioStatus=view.audio_status,
        audioError=view.audio_error,
        error={"code": str(error.get("code")), "message": str(error.get("message"))}
        if isinstance(error, dict)
        else None,
        timeline=[dict(t) for t in view.timeline],
        webhooks=[dict(w) for w in view.webhooks],
    )


async def read_job(runtime: Runtime, tenant: str, job_id: str) -> JobOut:
    job = await runtime.control.get(tenant, job_id)
    if job.get("kind") == "production":
        found = await runtime.production.state(job_id, job)
        if found is not None:
            state, notes = found
            job = {**state, "timeline": [{"what": note} for note in notes]}
    voice_id = voice_job_id(job_id)
    both = await runtime.jobs.stages_of(job_id, voice_id)
    stages, voice = both[job_id], both[voice_id]
    view = await job_view(job, stages, voice, runtime.media, runtime.settings.job_url_expiry_s)
    return _out(view)


def _instant(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 date-time; nothing else (no bare numbers read as epoch seconds)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(Code.INVALID_REQUEST, f"{name} must be an RFC 3339 date-time",
                       param=name) from None  # fmt: skip
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.post("/v1/jobs", status_code=202, response_model=JobAcceptedOut, responses=SUBMIT)
async def submit_job(
    runtime: RuntimeDep,
    tenant: Tenant,
    spec: Annotated[JobSpec, Body()],
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
    ] = None,
) -> JSONResponse:
    """Submit a job. A production job answers at once with its id; follow it with
    ``status_url`` (or a ``callback_url``)."""
    if isinstance(spec, ProductionJobSpec):
        submitted = await runtime.intake(tenant, spec, idempotency_key)
        job_id = submitted.job_id
    else:
        job_id = await submit_stage_job(runtime.stage_job_ports(), tenant, spec, idempotency_key)
    doc = await runtime.control.get(tenant, job_id)
    url = f"/v1/jobs/{job_id}"
    body = JobAcceptedOut(job_id=job_id, status=doc.get("status") or "PENDING", status_url=url)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": url})


@router.get("/v1/jobs", response_model=JobListOut, responses=COMMON)
async def list_jobs(
    runtime: RuntimeDep,
    tenant: Tenant,
    status: Status | None = None,
    kind: Kind | None = None,
    created_after: Annotated[str | None, Query(json_schema_extra={"format": "date-time"})] = None,
    created_before: Annotated[str | None, Query(json_schema_extra={"format": "date-time"})] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JobListOut:
    """The caller's jobs, newest first, a page at a time."""
    page = await runtime.control.list(
        tenant, status=status, kind=kind, created_after=_instant("created_after", created_after),
        created_before=_instant("created_before", created_before), limit=limit, cursor=cursor,
    )  # fmt: skip
    jobs = []
    for doc in page.jobs:
        # A stage's own job (clip, merge, audio) has its stage's status, not one of its own:
        # without its record it would be listed PENDING when long finished.
        stages = {} if doc.get("status") else (await runtime.jobs.job(doc["_id"]) or {}).get(
            "stages", {})  # fmt: skip
        view = await job_view(doc, stages, {}, runtime.media, runtime.settings.job_url_expiry_s)
        jobs.append(_out(view))
    return JobListOut(jobs=jobs, next_cursor=page.next_cursor)


@router.get("/v1/jobs/{job_id}", response_model=JobOut, responses=COMMON)
async def get_job(runtime: RuntimeDep, tenant: Tenant, job_id: str) -> JobOut:
    """Status, 0-100 progress, each stage's record, and presigned URLs for the outputs."""
    return await read_job(runtime, tenant, job_id)


@router.get("/v1/jobs/{job_id}/download", status_code=307, responses={
    **COMMON, 307: {"description": "Redirect to a presigned URL"},
    409: _error("That output does not exist (yet) (job_finished)."),
})  # fmt: skip
async def download(
    runtime: RuntimeDep,
    tenant: Tenant,
    job_id: str,
    what: Literal["result", "audio", "video"] = "result",
) -> RedirectResponse:
    """A redirect to a presigned URL of the result, the audio or the video."""
    job = await runtime.control.get(tenant, job_id)
    key = (job.get("outputs") or {}).get(what)
    if not key:
        raise ApiError(Code.JOB_FINISHED, f"the job has no {what} (status {job.get('status')})")
    url = await runtime.media.presign_get(key, runtime.settings.job_url_expiry_s)
    return RedirectResponse(url, status_code=307)


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobOut, responses={
    **COMMON, 409: _error("The job already ended (job_finished)."),
})  # fmt: skip
async def cancel(runtime: RuntimeDep, tenant: Tenant, job_id: str) -> JobOut:
    """Stop what has not started; the job ends CANCELLED."""
    await runtime.control.cancel(tenant, job_id)
    return await read_job(runtime, tenant, job_id)


@router.post("/v1/jobs/{job_id}/retry", status_code=202, response_model=JobOut,
             responses={**COMMON, 409: _error("Nothing to retry now (job_finished).")})  # fmt: skip
async def retry(
    runtime: RuntimeDep, tenant: Tenant, job_id: str, stage: Literal["audio"] = "audio"
) -> JobOut:
    """Regenerate the audio (a new attempt), re-merge, and produce a new result version
    without regenerating or re-encoding the video."""
    await runtime.control.retry_audio(tenant, job_id)
    return await read_job(runtime, tenant, job_id)
