"""The S3 key layout, in one place.

Every function validates each part it is given, so no input can escape its prefix: parts
are 1..128 characters from ``[A-Za-z0-9._-]``, never ``.``/``..`` (or only dots), and never
start with ``-``. Keys returned here are *logical*: :class:`~services.common.media_store.MediaStore`
prepends the configured ``s3_key_prefix``.
"""

from __future__ import annotations

import re
from typing import Final

from services.common.errors import PermanentError

__all__ = [
    "ALLOWED_EXTS",
    "AUDIO_CLIPS_PREFIX",
    "AUDIO_PREFIX",
    "EPISODES_PREFIX",
    "INGEST_PREFIX",
    "MAX_PART_LEN",
    "RENDERS_PREFIX",
    "VIDEO_PREFIX",
    "InvalidKeyPart",
    "audio_key",
    "clip_key",
    "episode_key",
    "ingest_prefix",
    "is_under",
    "render_key",
    "validate_ext",
    "validate_ms",
    "validate_part",
    "video_key",
]

AUDIO_PREFIX: Final = "audio/"
VIDEO_PREFIX: Final = "video/"
AUDIO_CLIPS_PREFIX: Final = "audio_clips/"
RENDERS_PREFIX: Final = "renders/"
EPISODES_PREFIX: Final = "episodes/"
# Where a tenant puts objects it wants registered by key: its own prefix, so no tenant
# can register (and then clip) another tenant's media.
INGEST_PREFIX: Final = "ingest/"

MAX_PART_LEN: Final = 128
ALLOWED_EXTS: Final = frozenset({"mp3", "m4a", "wav", "mp4", "aac", "ogg", "webm", "json"})

_PART_RE: Final = re.compile(r"[A-Za-z0-9._-]+")


class InvalidKeyPart(PermanentError):
    """A value that may not be used as (part of) an S3 key."""

    public = True
    code = "invalid_id"


def validate_part(value: object, what: str = "key part") -> str:
    """Return ``value`` if it is a safe single key segment, else raise :class:`InvalidKeyPart`."""
    if not isinstance(value, str):
        raise InvalidKeyPart(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidKeyPart(f"{what} must not be empty")
    if len(value) > MAX_PART_LEN:
        raise InvalidKeyPart(f"{what} is longer than {MAX_PART_LEN} characters")
    if _PART_RE.fullmatch(value) is None:
        raise InvalidKeyPart(f"{what} {value!r} may only contain letters, digits, '.', '_' and '-'")
    if value.strip(".") == "":
        raise InvalidKeyPart(f"{what} {value!r} must not consist of dots only")
    if value.startswith("-"):
        raise InvalidKeyPart(f"{what} {value!r} must not start with '-'")
    return value


def validate_ms(value: object, what: str = "offset") -> int:
    """Return ``value`` if it is a non-negative ``int`` (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidKeyPart(f"{what} must be an int, got {type(value).__name__}")
    if value < 0:
        raise InvalidKeyPart(f"{what} must not be negative, got {value}")
    return value


def validate_ext(value: object) -> str:
    """Return ``value`` if it is one of :data:`ALLOWED_EXTS` (lower case, without a dot)."""
    if not isinstance(value, str) or value not in ALLOWED_EXTS:
        raise InvalidKeyPart(f"extension {value!r} is not one of {sorted(ALLOWED_EXTS)}")
    return value


def audio_key(job_id: str, name: str) -> str:
    """``audio/{job_id}/{name}``"""
    return f"{AUDIO_PREFIX}{validate_part(job_id, 'job_id')}/{validate_part(name, 'name')}"


def video_key(job_id: str, name: str) -> str:
    """``video/{job_id}/{name}``"""
    return f"{VIDEO_PREFIX}{validate_part(job_id, 'job_id')}/{validate_part(name, 'name')}"


def clip_key(
    tenant_id: str,
    episode_id: str,
    start_ms: int,
    end_ms: int,
    ext: str,
    *,
    accurate: bool = False,
) -> str:
    """``audio_clips/{tenant_id}/{episode_id}/{start_ms}-{end_ms}.{ext}`` (requires
    ``end_ms > start_ms``); a sample-accurate cut is a different object,
    ``{start_ms}-{end_ms}-accurate.{ext}``. Episode ids are per tenant, so the tenant is
    part of the key."""
    tenant = validate_part(tenant_id, "tenant_id")
    episode = validate_part(episode_id, "episode_id")
    start = validate_ms(start_ms, "start_ms")
    end = validate_ms(end_ms, "end_ms")
    if end <= start:
        raise InvalidKeyPart(f"end_ms ({end}) must be greater than start_ms ({start})")
    variant = "-accurate" if accurate else ""
    return f"{AUDIO_CLIPS_PREFIX}{tenant}/{episode}/{start}-{end}{variant}.{validate_ext(ext)}"


def render_key(job_id: str, name: str) -> str:
    """``renders/{job_id}/{name}``"""
    return f"{RENDERS_PREFIX}{validate_part(job_id, 'job_id')}/{validate_part(name, 'name')}"


def episode_key(tenant_id: str, episode_id: str, filename: str) -> str:
    """``episodes/{tenant_id}/{episode_id}/{filename}``"""
    tenant = validate_part(tenant_id, "tenant_id")
    episode = validate_part(episode_id, "episode_id")
    return f"{EPISODES_PREFIX}{tenant}/{episode}/{validate_part(filename, 'filename')}"


def is_under(key: str, prefix: str) -> bool:
    """True when ``key`` lies below the folder ``prefix`` by whole path segments: no
    ``ingest/acme2/x`` under ``ingest/acme``, no empty, ``.`` or ``..`` segment to
    climb out of it, and not the folder itself."""
    folder = [p for p in prefix.split("/") if p]
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return False
    return len(parts) > len(folder) and parts[: len(folder)] == folder


def ingest_prefix(tenant_id: str) -> str:
    """``ingest/{tenant_id}/``: the only place a tenant may register objects from by key."""
    return f"{INGEST_PREFIX}{validate_part(tenant_id, 'tenant_id')}/"
