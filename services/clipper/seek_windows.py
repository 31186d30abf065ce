"""Where in its source a clip's bytes are: the byte window, from the episode's seek index.

An episode registered with a binary index (``Episode.seek_index_key``) costs a clip one
ranged GET of a block of index records, or nothing when the block is cached: the same
whatever the episode's length. Blocks never change once written (a new upload is a new
key), so they are kept in a bounded LRU.

Episodes registered before the binary index have theirs only in MongoDB, one document
with every entry; it is loaded once and kept, compactly, in an LRU bounded by entries.

An episode with a seek directory (``Episode.seek_directory``) gives a wider window with no
read at all (:meth:`SeekWindows.from_directory`): worth it where reading a few seconds
more costs less than a round trip, as for a small in-process cut.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from services.common import seek_index
from services.common.episodes import Episode, byte_window
from services.common.errors import PermanentError
from services.common.obs import metrics
from services.common.ports import EpisodeRepo

CACHE_NAME = "seek_index"
# MPEG audio's bit rates (kbit/s). An episode whose average is one of these (within
# RATE_TOLERANCE: its tags count in the average) is taken for constant bit rate.
MP3_RATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
RATE_TOLERANCE = 0.01
# What a guess reads beyond the window it expects: the duration's rounding, trailing tags.
GUESS_SLACK_BYTES = 8192
# 512 records of 16 bytes: 8 kB, about 8.5 minutes of audio per block.
BLOCK_RECORDS = 512


class RangeReader(Protocol):
    async def get_range(self, key: str, start: int, end_inclusive: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Window:
    """Packet time of the first byte, and the first and last byte (inclusive)."""

    start_ms: float
    first: int
    last: int


class IndexBlocks:
    """Blocks of binary index records by (object key, block number), fetched with one
    ranged GET for every missing block a clip needs, kept in an LRU of ``max_blocks``."""

    def __init__(self, media: RangeReader, *, max_blocks: int = 256) -> None:
        self._media = media
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._max = max_blocks
        self.gets = 0

    async def records(self, key: str, first: int, last: int) -> bytes:
        """The records ``first..last`` (fewer if the index ends before ``last``)."""
        lo, hi = first // BLOCK_RECORDS, last // BLOCK_RECORDS
        missing = [b for b in range(lo, hi + 1) if (key, b) not in self._blocks]
        metrics.cache(CACHE_NAME, not missing)
        if missing:
            await self._fetch(key, missing[0], missing[-1])
        parts = []
        for b in range(lo, hi + 1):
            block = self._blocks.get((key, b))
            if block is None:
                break  # past the index's end
            self._blocks.move_to_end((key, b))
            parts.append(block)
            if len(block) < BLOCK_RECORDS * seek_index.RECORD.size:
                break
        data = b"".join(parts)
        size = seek_index.RECORD.size
        return data[(first - lo * BLOCK_RECORDS) * size : (last + 1 - lo * BLOCK_RECORDS) * size]

    async def _fetch(self, key: str, lo: int, hi: int) -> None:
        start, end = seek_index.records_range(lo * BLOCK_RECORDS, (hi + 1) * BLOCK_RECORDS - 1)
        self.gets += 1
        data = await self._media.get_range(key, start, end)
        block_bytes = BLOCK_RECORDS * seek_index.RECORD.size
        for i, b in enumerate(range(lo, hi + 1)):
            block = data[i * block_bytes : (i + 1) * block_bytes]
            if not block:
                break
            self._blocks[(key, b)] = block
            self._blocks.move_to_end((key, b))
        while len(self._blocks) > self._max:
            self._blocks.popitem(last=False)

    def clear(self) -> None:
        self._blocks.clear()


def guess_range(
    episode: Episode, start_ms: float, end_ms: float, preroll_ms: int = 500
) -> tuple[int, int] | None:
    """Where the window of packet times ``[start_ms, end_ms]`` probably is, before the seek
    index says: for a constant-bit-rate MP3, counted back from the end of the file (tags
    at its start, cover art, do not move that), at the grid points the index would pick.
    Read together with the index records, it saves a round trip when it covers the real
    window; None when there is nothing to go on (VBR, or no bit rate recorded)."""
    rate = episode.bit_rate
    if not (episode.codec == "mp3" and rate and episode.duration_ms and episode.size_bytes):
        return None
    kbps = min(MP3_RATES_KBPS, key=lambda r: abs(r * 1000 - rate))
    if abs(kbps * 1000 - rate) > RATE_TOLERANCE * kbps * 1000:
        return None
    per_ms = kbps / 8  # bytes per millisecond
    step = seek_index.STEP_MS
    first_t = (math.floor(max(0.0, start_ms - preroll_ms) / step) - 1) * step
    last_t = (math.ceil(end_ms / step) + 2) * step
    end = episode.size_bytes
    first = end - (episode.duration_ms - max(0, first_t)) * per_ms - GUESS_SLACK_BYTES
    last = end - (episode.duration_ms - last_t) * per_ms + GUESS_SLACK_BYTES
    return max(0, math.floor(first)), min(end - 1, math.ceil(last))


@dataclass(frozen=True, slots=True)
class _Legacy:
    times_ms: array[float]
    offsets: array[int]
    size_bytes: int


class SeekWindows:
    """Byte windows of clips: from the binary index when the episode has one, else from
    its MongoDB index (loaded once per process); None when it has neither."""

    def __init__(
        self,
        media: RangeReader,
        episodes: EpisodeRepo,
        *,
        max_blocks: int = 256,
        max_legacy_entries: int = 500_000,
        max_directories: int = 256,
    ) -> None:
        self.blocks = IndexBlocks(media, max_blocks=max_blocks)
        self._directories: OrderedDict[bytes, tuple[list[float], list[int]]] = OrderedDict()
        self._max_directories = max_directories
        self._episodes = episodes
        self._legacy: OrderedDict[tuple[str, str, str], _Legacy] = OrderedDict()
        self._legacy_entries = 0
        self._max_legacy_entries = max_legacy_entries

    async def window(
        self, episode: Episode, start_ms: float, end_ms: float, preroll_ms: int = 500
    ) -> Window | None:
        """The window covering packet times ``[start_ms - preroll_ms, end_ms]``."""
        if episode.seek_index_key is not None:
            first, last = seek_index.record_span(start_ms - preroll_ms, end_ms)
            try:
                data = await self.blocks.records(episode.seek_index_key, first, last)
            except PermanentError as exc:
                # The object is gone or shorter than the episode says: use what MongoDB has.
                if exc.code not in ("not_found", "invalid_range"):
                    raise
            else:
                times, offsets = seek_index.parse_records(data)
                if times:
                    t0, lo, hi = byte_window(
                        times, offsets, episode.size_bytes, start_ms, end_ms, preroll_ms
                    )
                    return Window(t0, lo, hi)
        legacy = await self._legacy_index(episode)
        if legacy is None:
            return None
        t0, lo, hi = byte_window(
            legacy.times_ms, legacy.offsets, legacy.size_bytes, start_ms, end_ms, preroll_ms
        )
        return Window(t0, lo, hi)

    def from_directory(
        self, episode: Episode, start_ms: float, end_ms: float, preroll_ms: int = 500
    ) -> Window | None:
        """A window covering what :meth:`window` covers, and up to a directory step more
        on each side, from the episode's directory; None when it has none."""
        data = episode.seek_directory
        if not data:
            return None
        entries = self._directories.get(data)
        if entries is None:
            try:
                entries = seek_index.decode_directory(data)
            except seek_index.IndexFormatError:
                return None  # a format this clipper does not know: the index still answers
            self._directories[data] = entries
            while len(self._directories) > self._max_directories:
                self._directories.popitem(last=False)
        else:
            self._directories.move_to_end(data)
        times, offsets = entries
        t0, lo, hi = seek_index.directory_window(
            times, offsets, episode.size_bytes, start_ms, end_ms, preroll_ms
        )
        return Window(t0, lo, hi)

    async def _legacy_index(self, episode: Episode) -> _Legacy | None:
        key = (episode.tenant_id, episode.episode_id, episode.s3_key)
        cached = self._legacy.get(key)
        metrics.cache(CACHE_NAME, cached is not None)
        if cached is not None:
            self._legacy.move_to_end(key)
            return cached
        index = await self._episodes.seek_index(episode.tenant_id, episode.episode_id)
        if index is None or not index.times_ms:
            return None
        entry = _Legacy(array("d", index.times_ms), array("q", index.offsets), index.size_bytes)
        self._legacy[key] = entry
        self._legacy_entries += len(entry.times_ms)
        while self._legacy_entries > self._max_legacy_entries and len(self._legacy) > 1:
            _, old = self._legacy.popitem(last=False)
            self._legacy_entries -= len(old.times_ms)
        return entry
