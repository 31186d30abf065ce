"""Uploaded media for later jobs: a video or audio file, probed, then stored under the
tenant's own prefix (``media/{tenant}/{uuid}.{ext}``), where production jobs and merges
take their inputs from.

Only containers the pipeline reads are taken (``CONTAINERS``), told apart by what ffprobe
says, not by the file's name: an image, a playlist, a subtitle or a text file is not media
here, whatever it is called. The name only chooses between the extensions a container
goes by (``.mov`` or ``.mp4``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from services.common.ffmpeg import NotMediaError
from services.common.ffmpeg.probe import MediaProbe
from services.common.ports import MediaPort
from services.submitter.jobs.intake import media_prefix

# Extension -> content type of every object this module stores.
CONTENT_TYPES = {
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "mov": "video/quicktime",
    "3gp": "video/3gpp",
    "m4a": "audio/mp4",
    "mkv": "video/x-matroska",
    "mka": "audio/x-matroska",
    "webm": "video/webm",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "aiff": "audio/aiff",
    "ts": "video/mp2t",
    "avi": "video/x-msvideo",
    "flv": "video/x-flv",
    "mpg": "video/mpeg",
}


@dataclass(frozen=True)
class Container:
    video_ext: str  # the extension a file of this container with video gets by default
    audio_ext: str  # ... and one with sound only
    names: frozenset[str]  # other extensions it goes by, taken from the upload's name


# ffprobe's format name (its first entry) -> how such a file is stored.
CONTAINERS: dict[str, Container] = {
    "mov": Container("mp4", "m4a", frozenset({"mp4", "m4v", "mov", "m4a", "3gp"})),
    "matroska": Container("mkv", "mka", frozenset({"mkv", "mka", "webm"})),
    "mp3": Container("mp3", "mp3", frozenset()),
    "wav": Container("wav", "wav", frozenset()),
    "ogg": Container("ogg", "ogg", frozenset()),
    "flac": Container("flac", "flac", frozenset()),
    "aac": Container("aac", "aac", frozenset()),
    "aiff": Container("aiff", "aiff", frozenset()),
    "mpegts": Container("ts", "ts", frozenset()),
    "avi": Container("avi", "avi", frozenset()),
    "flv": Container("flv", "flv", frozenset()),
    "mpeg": Container("mpg", "mpg", frozenset()),
}
_WEBM_VIDEO = frozenset({"vp8", "vp9", "av1"})
_WEBM_AUDIO = frozenset({"opus", "vorbis"})

Probe = Callable[[Path], Awaitable[MediaProbe]]


@dataclass(frozen=True)
class MediaPorts:
    media: MediaPort
    probe: Probe  # ``probe_any_media`` with the service's ffprobe and timeout


@dataclass(frozen=True)
class StoredMedia:
    s3_key: str
    size_bytes: int
    content_type: str
    filename: str | None
    probe: MediaProbe


def media_extension(probe: MediaProbe, filename: str | None = None) -> str:
    """The extension a probed file is stored with; ``NotMediaError`` when it is not a
    file the pipeline takes (an unknown container, or no length to speak of)."""
    container_name = probe.format_name.split(",")[0]
    container = CONTAINERS.get(container_name)
    if container is None:
        raise NotMediaError(f"container {container_name or 'unknown'!r} is not taken")
    if not probe.duration_ms:
        raise NotMediaError("the file has no duration (a still image or an empty stream)")
    suffix = PurePosixPath(filename or "").suffix.lower().removeprefix(".")
    if suffix in container.names:
        return suffix
    if container_name == "matroska" and _is_webm(probe):
        return "webm"
    return container.video_ext if probe.has_video else container.audio_ext


def _is_webm(probe: MediaProbe) -> bool:
    video_ok = probe.video_codec is None or probe.video_codec in _WEBM_VIDEO
    audio_ok = probe.audio_codec is None or probe.audio_codec in _WEBM_AUDIO
    return probe.has_video and video_ok and audio_ok


def new_media_key(tenant_id: str, ext: str) -> str:
    return f"{media_prefix(tenant_id)}{uuid.uuid4().hex}.{ext}"


async def store_upload(
    ports: MediaPorts, tenant_id: str, path: Path, filename: str | None
) -> StoredMedia:
    """Probe an uploaded file and store it under the tenant's media prefix; refused with
    ``NotMediaError`` before anything is stored unless it is video or audio."""
    probe = await ports.probe(path)
    ext = media_extension(probe, filename)
    key = new_media_key(tenant_id, ext)
    content_type = CONTENT_TYPES[ext]
    size = await ports.media.upload_file(key, path, content_type)
    return StoredMedia(key, size, content_type, filename, probe)
