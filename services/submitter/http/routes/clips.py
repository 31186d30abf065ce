"""The clip API: the old Lambda contract under ``/api/v1``, plus request status.

The router is built per app (``build_router``): the longest clip is a setting, and the
OpenAPI document states it as ``duration_ms``'s maximum. (No ``from __future__ import
annotations`` here: the routes' annotations use that setting, so they are evaluated when
the router is built.)"""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from schemas.clip import MAX_MS, ClipFormat
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
from services.submitter.http.models import (
    PLAIN_ID_SCHEMA,
    ClipOut,
    ClipPendingOut,
    ClipStatusOut,
    EpisodeIdPath,
    ErrorResponse,
)
from services.submitter.requests import SubmitFailed
from services.submitter.waiter import TooManyPending


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_CLIP_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": ClipPendingOut,
        "description": "Still being cut; poll status_url (also in the Location header).",
    },
    401: _error("Missing, invalid or revoked API key."),
    404: _error("No such episode for this tenant (episode_not_found)."),
    422: _error(
        "A parameter breaks its rule (invalid_episode_id, invalid_time, invalid_duration, "
        "duration_too_long, invalid_format), or start_time_ms is at or past the episode's "
        "end (start_past_end): that depends on the stored episode, so a request the schema "
        "allows can still get it."
    ),
    500: _error("The clipper failed on our side (its code, e.g. internal_error)."),
    502: _error("The stored source could not be cut (source_missing, ffmpeg_failed, ...)."),
    503: _error("A backing service is unavailable or the API is overloaded; retry."),
}

_STATUS_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, invalid or revoked API key."),
    404: _error("No such clip request for this tenant, including any id that is not one."),
    503: _error("A backing service is unavailable; retry."),
}


# Declared by hand, not as a FastAPI parameter, which would add a 422 this route never
# answers: the id is documented, not validated, since any other id is one no request has
# and is answered like an unknown one (404 request_not_found).
_REQUEST_ID_PARAMETER: dict[str, Any] = {
    "parameters": [
        {
            "name": "request_id",
            "in": "path",
            "required": True,
            "description": "The request_id a clip answer gave.",
            "schema": {**PLAIN_ID_SCHEMA, "examples": ["clip-0123456789abcdef0123456789abcdef"]},
        }
    ]
}


# The clip route's name; the cached-clip fast path (http/cached_clips.py) labels its
# answers with this route.
ROUTE_NAME = "audio_clip"


def build_router(max_duration_ms: int) -> APIRouter:
    """The clip routes, with ``max_duration_ms`` (``clip_max_duration_ms``) documented as
    the longest clip; the clip rules enforce it (422 duration_too_long)."""
    router = APIRouter(prefix="/api/v1", tags=["clips"])

    @router.get(
        # anyid: so an id with an encoded slash or a newline reaches the id rules.
        "/audio_clips/{episode_id:anyid}",
        name=ROUTE_NAME,
        response_model=ClipOut,
        responses=_CLIP_RESPONSES,
        summary="A clip of an episode: from the cache, or cut now",
    )
    async def audio_clip(
        request: Request,
        tenant: Tenant,
        ports: ClipPortsDep,
        episode_id: EpisodeIdPath,
        start_time_ms: Annotated[
            int,
            Query(
                ge=0,
                # As over the topic (clip.requested): a number no episode reaches is invalid.
                le=MAX_MS,
                examples=[0],
                description="Clip start, ms from the episode start; must be before the "
                "episode's end (422 start_past_end otherwise).",
            ),
        ],
        duration_ms: Annotated[
            int,
            Query(
                ge=1,
                examples=[1000],
                description="Clip length in ms; a clip running past the episode's end is "
                "cut at the end.",
                json_schema_extra={"maximum": max_duration_ms},
            ),
        ],
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
        "/clip_requests/{request_id:anyid}",
        name="clip_request_status",
        response_model=ClipStatusOut,
        response_model_exclude_none=True,
        responses=_STATUS_RESPONSES,
        openapi_extra=_REQUEST_ID_PARAMETER,
        summary="Status of a clip request",
    )
    async def clip_request_status(
        request: Request, tenant: Tenant, ports: ClipPortsDep
    ) -> ClipStatusOut:
        request_id: str = request.path_params["request_id"]
        try:
            status = await clip_status(
                ports.requests.jobs, ports.media, tenant, request_id, ports.limits.url_expiry_s
            )
        except RequestNotFound:
            raise ApiError(
                Code.REQUEST_NOT_FOUND, "unknown clip request", param="request_id"
            ) from None
        return ClipStatusOut.model_validate(status, from_attributes=True)

    return router


def clip_out(answer: ClipAnswer) -> ClipOut:
    return ClipOut.model_validate(answer, from_attributes=True)
