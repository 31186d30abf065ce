"""The one table of media content types, by file extension."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

CONTENT_TYPES: Final = MappingProxyType(
    {
        "mp3": "audio/mpeg",
        "m4a": "audio/mp4",
        "aac": "audio/aac",
        "wav": "audio/wav",
        "ogg": "audio/ogg",
        "webm": "video/webm",
        "mp4": "video/mp4",
        "json": "application/json",
    }
)
DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"


def content_type_for(key: str) -> str:
    """A content type guessed from the key's extension (``application/octet-stream`` if unknown)."""
    name = key.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return CONTENT_TYPES.get(ext, DEFAULT_CONTENT_TYPE)
