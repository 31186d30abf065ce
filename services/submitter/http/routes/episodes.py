"""``/v1/episodes``: register from an upload or an existing object; read back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from schemas.codes import Code
from services.common.clip_rules import EpisodeNotFound
from services.common.episodes import Episode, EpisodeExists
from services.common.ffmpeg import NotMediaError
from services.common.keys import InvalidKeyPart
from services.common.media_store import ObjectNotFound
from services.common.registration import ForeignObject
from services.submitter.episodes import get_episode, register_existing, register_upload
from services.submitter.http.deps import RuntimeDep, Tenant
from services.submitter.http.errors import ApiError, from_validation
from services.submitter.http.models import (
    EpisodeIdPath,
    EpisodeOut,
    ErrorResponse,
    RegisterS3Request,
    RegisterUploadForm,
)
from services.submitter.http.upload import received_file

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/episodes", tags=["episodes"])

NOT_AUDIO = "not an audio file: unreadable as audio, no audio stream, or has a video stream"

JSON_BODY_MAX = 64 * 1024

_REGISTER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": RegisterUploadForm.model_json_schema(),
                "encoding": {"file": {"contentType": "audio/*"}},
            },
            "application/json": {"schema": RegisterS3Request.model_json_schema()},
        },
    }
}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_UNAUTHORIZED = _error("Missing, invalid or revoked API key.")
_UNAVAILABLE = _error("A backing service is unavailable; retry.")
_REGISTER_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _UNAUTHORIZED,
    403: _error("s3_key is not under ingest/<tenant>/ (forbidden_s3_key)."),
    404: _error("No object at s3_key (object_not_found)."),
    409: _error("The tenant already has an episode with this id (episode_exists)."),
    413: _error("The upload or the JSON body is too large (too_large)."),
    415: _error("Neither multipart/form-data nor application/json (unsupported_media_type)."),
    422: _error(
        "A field breaks its rule (invalid_episode_id, invalid_s3_key, invalid_json, "
        "invalid_form, missing_file, invalid_request), or the file is not audio (not_audio): "
        "that depends on the file's content, so a request the schema allows can still get it."
    ),
    503: _UNAVAILABLE,
}
_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _UNAUTHORIZED,
    404: _error("No such episode for this tenant (episode_not_found)."),
    422: _error("Not an episode id (invalid_episode_id)."),
    503: _UNAVAILABLE,
}


@router.post(
    "",
    status_code=201,
    response_model=EpisodeOut,
    responses=_REGISTER_RESPONSES,
    openapi_extra=_REGISTER_BODY,
    summary="Register an episode from a multipart upload or an object in the bucket",
)
async def register_episode(
    request: Request, response: Response, tenant: Tenant, runtime: RuntimeDep
) -> EpisodeOut:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        if media_type == "multipart/form-data":
            episode = await _from_upload(request, content_type, tenant, runtime)
        elif media_type == "application/json":
            body = await _read_small(request.stream(), JSON_BODY_MAX)
            try:
                req = RegisterS3Request.model_validate_json(body)
                runtime.media.full_key(req.s3_key)
            except ValidationError as exc:
                raise _body_error(exc) from None
            except ValueError as exc:
                raise ApiError(Code.INVALID_S3_KEY, str(exc), param="s3_key") from None
            episode = await register_existing(
                runtime.episode_ports(), tenant, req.s3_key, req.episode_id
            )
        else:
            raise ApiError(
                Code.UNSUPPORTED_MEDIA_TYPE,
                "send multipart/form-data (field 'file') or application/json ({'s3_key': ...})",
            )
    except NotMediaError as exc:
        # ffprobe's own words name scratch paths on this host: logged, not returned.
        log.info("registration refused as not audio: %s", exc.message)
        raise ApiError(Code.NOT_AUDIO, NOT_AUDIO, param="file") from None
    except EpisodeExists as exc:
        raise ApiError(Code.EPISODE_EXISTS, exc.message, param="episode_id") from None
    except InvalidKeyPart as exc:
        raise ApiError(Code.INVALID_EPISODE_ID, exc.message, param="episode_id") from None
    except ForeignObject as exc:
        raise ApiError(Code.FORBIDDEN_S3_KEY, exc.message, param="s3_key") from None
    except ObjectNotFound:
        raise ApiError(Code.OBJECT_NOT_FOUND, "no object at that s3_key", param="s3_key") from None
    response.headers["Location"] = f"/v1/episodes/{episode.episode_id}"
    return episode_out(episode)


@router.get(
    # anyid: so an id with an encoded slash or a newline reaches the id rules.
    "/{episode_id:anyid}",
    response_model=EpisodeOut,
    responses=_READ_RESPONSES,
    summary="An episode of the caller's tenant",
)
async def read_episode(
    episode_id: EpisodeIdPath, tenant: Tenant, runtime: RuntimeDep
) -> EpisodeOut:
    try:
        return episode_out(await get_episode(runtime.episodes, tenant, episode_id))
    except EpisodeNotFound as exc:
        raise ApiError(exc.code, exc.message, param="episode_id") from None


def episode_out(episode: Episode) -> EpisodeOut:
    out = EpisodeOut.model_validate(episode.model_dump())
    # MongoDB keeps milliseconds: answer now what a later read will say.
    at = out.registered_at
    return out.model_copy(
        update={"registered_at": at.replace(microsecond=at.microsecond // 1000 * 1000)}
    )


async def _from_upload(
    request: Request, content_type: str, tenant: str, runtime: RuntimeDep
) -> Episode:
    async with received_file(
        request, limit=runtime.settings.upload_max_bytes, workdir_prefix="tapedeck-upload-",
        empty_code=Code.NOT_AUDIO,
    ) as (form, upload):  # fmt: skip
        return await register_upload(
            runtime.episode_ports(),
            tenant,
            upload.path,
            upload.filename,
            form.fields.get("episode_id") or None,
        )


def _body_error(exc: ValidationError) -> ApiError:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return ApiError(Code.INVALID_JSON, "the body is not valid JSON")
    return from_validation(errors)


async def _read_small(stream: AsyncIterator[bytes], limit: int) -> bytes:
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > limit:
            raise ApiError(Code.TOO_LARGE, f"a JSON body may not exceed {limit} bytes")
    return bytes(body)
