"""The clip API: the old Lambda contract under ``/api/v1``, plus request status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from schemas.clip import ClipFormat
from schemas.codes import Code
from services.common.clip_rules import ClipRejected
from services.submitter.clips.on_demand import (
    ClipAnswer,
    ClipPending,
    ClipQuery,
    ClipRequestFailed,
    get_clip,
)
from services.submitter.clips.status import RequestNotFound, clip_status
from services.submitter.http.deps import ClipPortsDep, Tenant
from services.submitter.http.errors import ApiError, from_failure, from_rejection
from services.submitter.http.models import ClipOut, ClipPendingOut, ClipStatusOut, ErrorResponse
from services.submitter.requests import SubmitFailed
from services.submitter.waiter import TooManyPending

router = APIRouter(prefix="/api/v1", tags=["clips"])

_CLIP_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": ClipPendingOut, "description": "Still being cut; poll status_url."},
    **{code: {"model": ErrorResponse} for code in (401, 404, 409, 422, 500, 502, 503)},
}


@router.get(
    # :path so an id with an encoded slash reaches the id rules instead of a bare 404.
    "/audio_clips/{episode_id:path}",
    response_model=ClipOut,
    responses=_CLIP_RESPONSES,
    summary="A clip of an episode: from the cache, or cut now",
)
async def audio_clip(
    request: Request,
    tenant: Tenant,
    ports: ClipPortsDep,
    episode_id: Annotated[str, Path(description="The episode to cut from.")],
    start_time_ms: Annotated[int, Query(description="Clip start, ms from the episode start.")],
    duration_ms: Annotated[int, Query(description="Clip length in ms.")],
    fmt: Annotated[ClipFormat, Query(alias="format")] = "mp3",
    accurate: Annotated[bool, Query(description="Sample-accurate cut (re-encodes).")] = False,
) -> ClipOut | JSONResponse:
    query = ClipQuery(episode_id, start_time_ms, duration_ms, fmt, accurate)
    try:
        outcome = await get_clip(ports, tenant, query)
    except ClipRejected as exc:
        raise from_rejection(exc) from None
    except ClipRequestFailed as exc:
        raise from_failure(exc.request_id, exc.error) from None
    except SubmitFailed as exc:
        raise ApiError(
            Code.SUBMIT_FAILED,
            "the clip request could not be queued; try again",
            request_id=exc.job_id,
            retryable=True,
        ) from None
    except TooManyPending:
        raise ApiError(
            Code.OVERLOADED, "too many clip requests in flight; try again", retryable=True
        ) from None
    if isinstance(outcome, ClipPending):
        url = str(request.url_for("clip_request_status", request_id=outcome.request_id))
        body = ClipPendingOut(request_id=outcome.request_id, status_url=url)
        return JSONResponse(body.model_dump(), status_code=202, headers={"Location": url})
    return clip_out(outcome)


@router.get(
    "/clip_requests/{request_id}",
    name="clip_request_status",
    response_model=ClipStatusOut,
    response_model_exclude_none=True,
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
    summary="Status of a clip request",
)
async def clip_request_status(
    request_id: str, tenant: Tenant, ports: ClipPortsDep
) -> ClipStatusOut:
    try:
        status = await clip_status(
            ports.requests.jobs, ports.media, tenant, request_id, ports.limits.url_expiry_s
        )
    except RequestNotFound:
        raise ApiError(Code.REQUEST_NOT_FOUND, "unknown clip request", param="request_id") from None
    return ClipStatusOut.model_validate(status, from_attributes=True)


def clip_out(answer: ClipAnswer) -> ClipOut:
    return ClipOut.model_validate(answer, from_attributes=True)
