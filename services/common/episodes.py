"""Episodes: source audio registered once, with the metadata clips are planned from.

Registration probes the source once (codec, duration, bit rate, ...) and, for MP3, builds
a seek index of (time, byte offset) pairs from the real frame positions. Clips then read
only the byte range they need, exactly, even on VBR files where a bitrate-based seek
guesses wrong; nothing ever probes the whole source again.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.errors import PermanentError
from services.common.mongo import Doc

EPISODES = "episodes"
SEEK_INDEX = "episode_seek_index"
# Frame-based formats whose bytes can be cut anywhere on a frame and still decode.
INDEXED_CODECS = frozenset({"mp3"})


class EpisodeExists(PermanentError):
    public = True
    code = "episode_exists"


class Episode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    episode_id: str
    tenant_id: str
    s3_key: str
    duration_ms: int = Field(ge=0)
    format_name: str
    codec: str
    sample_rate: int | None = None
    channels: int | None = None
    bit_rate: int | None = None
    size_bytes: int = Field(ge=0)
    seek_indexed: bool = False
    # Samples a gapless decoder drops at the start (MP3 LAME tag: encoder + decoder delay):
    # the offset between packet times and what a listener hears.
    start_skip_samples: int = 0
    # The binary seek index beside the source (services.common.seek_index); None for
    # episodes registered before it existed, whose index is only in MongoDB.
    seek_index_key: str | None = None
    # The index's coarse directory (services.common.seek_index.encode_directory), a few
    # kB; None for episodes registered before it, and where a reader leaves it out.
    seek_directory: bytes | None = Field(None, repr=False)
    registered_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class SeekIndex(BaseModel):
    """Frame start times and their byte offsets, sampled about every ``step_ms``."""

    model_config = ConfigDict(frozen=True)

    times_ms: list[float]
    offsets: list[int]
    size_bytes: int

    def window(
        self, start_ms: float, end_ms: float, preroll_ms: int = 500
    ) -> tuple[float, int, int]:
        """(time of the first byte, first byte, last byte inclusive) that cover
        ``[start_ms - preroll_ms, end_ms]``; the pre-roll lets an MP3 decoder fill its
        bit reservoir before the first wanted frame."""
        return byte_window(
            self.times_ms, self.offsets, self.size_bytes, start_ms, end_ms, preroll_ms
        )


def byte_window(
    times_ms: Sequence[float],
    offsets: Sequence[int],
    size_bytes: int,
    start_ms: float,
    end_ms: float,
    preroll_ms: int = 500,
) -> tuple[float, int, int]:
    """:meth:`SeekIndex.window` over any run of consecutive index entries that covers
    the range (a run ending early means the source ends there)."""
    i = max(bisect.bisect_right(times_ms, max(0, start_ms - preroll_ms)) - 1, 0)
    j = bisect.bisect_left(times_ms, end_ms)
    # One more sample past the end so the last wanted frame is whole.
    last = offsets[j + 1] - 1 if j + 1 < len(offsets) else size_bytes - 1
    return times_ms[i], offsets[i], last


def episode_doc_id(tenant_id: str, episode_id: str) -> str:
    """Episode ids are per tenant: two tenants may both have an ``ep-1``, and neither can
    see, detect or take the other's. Both parts are plain ids, so ``/`` cannot be in them."""
    return f"{tenant_id}/{episode_id}"


class EpisodeStore:
    """``directories=False`` leaves each episode's seek directory out of what is read:
    only a clipper cuts from it, and other services keep episodes cached by the
    thousand."""

    def __init__(self, db: AsyncDatabase[Doc], *, directories: bool = True) -> None:
        self._episodes = db[EPISODES]
        self._index = db[SEEK_INDEX]
        self._projection: dict[str, int] | None = None if directories else {"seek_directory": 0}

    async def ensure_indexes(self) -> None:
        await self._episodes.create_index([("tenant_id", 1), ("registered_at", -1)])

    async def get(self, tenant_id: str, episode_id: str) -> Episode | None:
        doc = await self._episodes.find_one(
            {"_id": episode_doc_id(tenant_id, episode_id)}, self._projection
        )
        return Episode.model_validate(doc) if doc else None

    async def seek_index(self, tenant_id: str, episode_id: str) -> SeekIndex | None:
        doc = await self._index.find_one({"_id": episode_doc_id(tenant_id, episode_id)})
        return SeekIndex.model_validate(doc) if doc else None

    async def insert(self, episode: Episode, index: SeekIndex | None) -> None:
        """Written once: a second registration of the same id is refused.

        The index goes in only after the episode won its id, so a losing registration
        cannot replace the winner's index; until it is in, clips read through the URL.
        """
        doc_id = episode_doc_id(episode.tenant_id, episode.episode_id)
        try:
            await self._episodes.insert_one({"_id": doc_id, **episode.model_dump()})
        except DuplicateKeyError:
            raise EpisodeExists(f"episode {episode.episode_id!r} is already registered") from None
        if index is not None:
            await self._index.replace_one({"_id": doc_id}, index.model_dump(), upsert=True)

    async def list(self, tenant_id: str, limit: int = 100) -> list[Episode]:
        cursor = self._episodes.find({"tenant_id": tenant_id}, self._projection)
        cursor = cursor.sort("registered_at", -1)
        return [Episode.model_validate(d) async for d in cursor.limit(limit)]


def episode_from_probe(
    *,
    episode_id: str,
    tenant_id: str,
    s3_key: str,
    probe: Any,
    size_bytes: int,
    index: SeekIndex | None,
    duration_ms: int | None,
    skip_samples: int = 0,
    seek_index_key: str | None = None,
    seek_directory: bytes | None = None,
) -> Episode:
    return Episode(
        episode_id=episode_id,
        tenant_id=tenant_id,
        s3_key=s3_key,
        duration_ms=duration_ms if duration_ms is not None else (probe.duration_ms or 0),
        format_name=probe.format_name,
        codec=probe.codec,
        sample_rate=probe.sample_rate,
        channels=probe.channels,
        bit_rate=probe.bit_rate,
        size_bytes=size_bytes,
        seek_indexed=index is not None,
        start_skip_samples=skip_samples,
        seek_index_key=seek_index_key,
        seek_directory=seek_directory,
    )


def source_extension(path: Path, format_name: str) -> str:
    for ext in ("mp3", "m4a", "wav", "aac", "ogg"):
        if path.suffix.lower() == f".{ext}" or format_name.split(",")[0] == ext:
            return ext
    return "m4a" if "mp4" in format_name or "m4a" in format_name else "bin"
