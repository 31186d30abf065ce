"""``POST /v1/media``: upload a video or audio file for later jobs (production scenes,
merges); it lands under ``media/{tenant}/``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from schemas.codes import Code
from services.common.ffmpeg import NotMediaError
from services.submitter.http.deps import RuntimeDep, Tenant
from services.submitter.http.errors import ApiError
from services.submitter.http.models import ErrorResponse
from services.submitter.http.upload import received_file
from services.submitter.media import CONTAINERS, StoredMedia, store_upload

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/media", tags=["media"])

NOT_MEDIA = (
    "not a media file: ffprobe cannot read it, it has no video or audio stream, no "
    "duration, or its container is not one of: " + ", ".join(sorted(CONTAINERS))
)
# The upload's own name is echoed, cut to this many characters.
FILENAME_MAX = 255


class MediaUploadForm(BaseModel):
    """Documents the multipart form; the body itself is streamed, not parsed by this."""

    file: bytes = Field(
        description="The video or audio file. 422 not_media for anything ffprobe cannot read "
        "as video or audio, without a duration, or in a container other than "
        + ", ".join(sorted(CONTAINERS))
        + " (mov covers mp4 and m4a).",
        json_schema_extra={"format": "binary"},
    )


class MediaOut(BaseModel):
    s3_key: str = Field(
        description="media/<tenant>/<uuid>.<ext>: give it to a production job (video, "
        "scenes[].video) or a merge (input_videos)."
    )
    size_bytes: int
    content_type: str
    filename: str | None = Field(description="The upload's own name, if it had one.")
    format_name: str = Field(description="ffprobe's container name, e.g. mov,mp4,m4a,3gp,3g2,mj2")
    duration_ms: int
    has_video: bool
    has_audio: bool
    video_codec: str | None = Field(description="e.g. h264; null without video")
    audio_codec: str | None = Field(description="e.g. aac; null without audio")
    width: int | None
    height: int | None
    frame_rate: float | None = Field(description="Frames per second (average)")
    sample_rate: int | None
    channels: int | None
    bit_rate: int | None


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": MediaUploadForm.model_json_schema(),
                "encoding": {"file": {"contentType": "video/*, audio/*"}},
            },
        },
    }
}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, invalid or revoked API key."),
    413: _error("The upload is larger than MEDIA_MAX_BYTES (too_large)."),
    415: _error("Not multipart/form-data (unsupported_media_type)."),
    422: _error(
        "The form is malformed or has no 'file' (invalid_form, missing_file), or the file is "
        "not media (not_media): that depends on the file's content, so a request the schema "
        "allows can still get it."
    ),
    503: _error("A backing service is unavailable; retry."),
}


@router.post(
    "",
    status_code=201,
    response_model=MediaOut,
    responses=_RESPONSES,
    openapi_extra=_UPLOAD_BODY,
    summary="Upload a video or audio file for later jobs",
)
async def upload_media(request: Request, tenant: Tenant, runtime: RuntimeDep) -> JSONResponse:
    """Streamed to disk as it arrives (refused at the first byte over the limit), probed
    with ffprobe, then stored at ``media/{tenant}/{uuid}.{ext}``."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        raise ApiError(
            Code.UNSUPPORTED_MEDIA_TYPE, "send multipart/form-data with the file in field 'file'"
        )
    async with received_file(
        request, limit=runtime.settings.media_max_bytes, workdir_prefix="tapedeck-media-",
        empty_code=Code.NOT_MEDIA,
    ) as (_, upload):  # fmt: skip
        try:
            stored = await store_upload(runtime.media_ports(), tenant, upload.path, upload.filename)
        except NotMediaError as exc:
            # ffprobe's own words name scratch paths on this host: logged, not returned.
            log.info("media upload refused: %s", exc.message)
            raise ApiError(Code.NOT_MEDIA, NOT_MEDIA, param="file") from None
    body = media_out(stored)
    return JSONResponse(body.model_dump(mode="json"), status_code=201)


def media_out(stored: StoredMedia) -> MediaOut:
    p = stored.probe
    return MediaOut(
        s3_key=stored.s3_key,
        size_bytes=stored.size_bytes,
        content_type=stored.content_type,
        filename=stored.filename[:FILENAME_MAX] if stored.filename else None,
        format_name=p.format_name,
        duration_ms=p.duration_ms or 0,
        has_video=p.has_video,
        has_audio=p.has_audio,
        video_codec=p.video_codec,
        audio_codec=p.audio_codec,
        width=p.width,
        height=p.height,
        frame_rate=p.frame_rate,
        sample_rate=p.sample_rate,
        channels=p.channels,
        bit_rate=p.bit_rate,
    )
