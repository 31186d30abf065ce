"""Cutting a clip out of an episode with ffmpeg, reading only the bytes it needs.

MP3 episodes carry a seek index of real frame offsets: the cutter fetches just the byte
window around the clip with one ranged GET. Stream copy then picks whole frames out of
that window by their exact positions; accurate mode decodes the window from a short
pre-roll and re-encodes from the exact sample. Either way VBR files cut where they
should, which a bitrate-based seek does not.

Other containers (MP4/M4A, WAV) are read by ffmpeg through a presigned URL: its http
protocol seeks with Range requests using the container's own sample tables.

Times: an MP3 with a LAME tag is heard ``start_skip_samples`` later than its packet
times (encoder delay + the 529-sample decoder delay), so packet times are shifted by
that much; a clip we write carries its own tag, which tells players to drop 529 samples.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.codes import Code
from services.common.clip_rules import CODEC_OF_FORMAT, ClipPlan
from services.common.episodes import Episode, SeekIndex
from services.common.errors import PermanentError
from services.common.ffmpeg import FFmpegError, NotMediaError
from services.common.ports import EpisodeRepo, FFmpegPort, MediaPort

# Re-encoded clips: podcasts are mostly speech, 128k is transparent for them.
ENCODERS: dict[str, dict[str, Any]] = {
    "mp3": {"acodec": "libmp3lame", "audio_bitrate": "128k", "format": "mp3"},
    "m4a": {"acodec": "aac", "audio_bitrate": "128k", "format": "ipod", "movflags": "+faststart"},
    "wav": {"acodec": "pcm_s16le", "format": "wav"},
}
COPY = {
    "mp3": {"acodec": "copy", "format": "mp3"},
    "m4a": {"acodec": "copy", "format": "ipod", "movflags": "+faststart"},
    "wav": {"acodec": "copy", "format": "wav"},
}
MP3_DECODER_DELAY = 529
# URL lifetime for ffmpeg's own reads of the source: only as long as a cut can take.
SOURCE_URL_EXPIRY_S = 900
CUT_WORKDIR_PREFIX = "tapedeck-clip-"


class SourceUnreadable(PermanentError):
    """A registered episode's source no longer decodes (replaced or corrupted in storage)."""

    code = Code.SOURCE_UNREADABLE


@dataclass(frozen=True)
class Cut:
    path: Path
    bytes_read: int | None  # None when ffmpeg read the source itself over HTTP
    stream_copy: bool


class FFmpegCutter:
    def __init__(
        self, media: MediaPort, ffmpeg: FFmpegPort, episodes: EpisodeRepo, index_cache: int = 64
    ) -> None:
        self._media = media
        self._ffmpeg = ffmpeg
        self._episodes = episodes
        # An index never changes once written, and loading a 3-hour one (10k entries)
        # costs more than the rest of a clip's database work: keep recent ones.
        self._indexes: OrderedDict[tuple[str, str], SeekIndex] = OrderedDict()
        self._index_cache = index_cache

    async def _seek_index(self, episode: Episode) -> SeekIndex | None:
        key = (episode.episode_id, episode.s3_key)
        if key in self._indexes:
            self._indexes.move_to_end(key)
            return self._indexes[key]
        index = await self._episodes.seek_index(episode.tenant_id, episode.episode_id)
        if index is not None:
            self._indexes[key] = index
            while len(self._indexes) > self._index_cache:
                self._indexes.popitem(last=False)
        return index

    @contextlib.asynccontextmanager
    async def cut(self, episode: Episode, plan: ClipPlan) -> AsyncIterator[Cut]:
        """Yield the cut clip in a temp dir that is removed afterwards."""
        copy = not plan.accurate and CODEC_OF_FORMAT[plan.format] == episode.codec
        index = await self._seek_index(episode) if episode.seek_indexed else None
        async with self._ffmpeg.temp_workdir(prefix=CUT_WORKDIR_PREFIX) as tmp:
            out = tmp / f"clip.{plan.format}"
            bytes_read: int | None = None
            probe_src: Path | str
            if index is not None:
                probe_src = tmp / "window.mp3"
                try:
                    bytes_read, stream = await self._from_window(
                        episode, index, plan, probe_src, out, copy
                    )
                except NotMediaError as bad:
                    # The indexed frames are not there any more: the source was replaced.
                    raise SourceUnreadable(str(bad)) from bad
            else:
                probe_src = await self._media.presign_get(episode.s3_key, SOURCE_URL_EXPIRY_S)
                # Input-side seek: the demuxer jumps by its sample tables with Range requests.
                src = self._ffmpeg.input(probe_src, ss=_s(plan.start_ms))
                opts = COPY[plan.format] if copy else ENCODERS[plan.format]
                stream = src.output(str(out), t=_s(plan.duration_ms), map="0:a:0",
                                    map_metadata="-1", **opts)  # fmt: skip
            try:
                await self._ffmpeg.run(stream)
            except FFmpegError as exc:
                # A registered source that no longer decodes is our problem, not the
                # caller's: tell "unreadable" apart from other ffmpeg failures. The probe
                # runs only on this failure path, never on a normal cut.
                try:
                    await self._ffmpeg.probe(probe_src)
                except NotMediaError as bad:
                    raise SourceUnreadable(str(bad)) from exc
                raise
            yield Cut(out, bytes_read, copy)

    async def _from_window(
        self, episode: Episode, index: SeekIndex, plan: ClipPlan, window: Path, out: Path,
        copy: bool,
    ) -> tuple[int, Any]:  # fmt: skip
        rate = episode.sample_rate or 44100
        shift_ms = episode.start_skip_samples * 1000 / rate
        # In packet time, the clip is heard at [start + shift, end + shift).
        t0, first, last = index.window(plan.start_ms + shift_ms, plan.end_ms + shift_ms)
        bytes_read = await self._media.download_file(episode.s3_key, window, first, last)
        if not copy:
            # Decode from the window's first frame and discard up to the exact sample.
            offset_s = (plan.start_ms + shift_ms - t0) / 1000
            src = self._ffmpeg.input(window)
            return bytes_read, src.output(
                str(out), ss=f"{offset_s:.6f}", t=_s(plan.duration_ms), map="0:a:0",
                map_metadata="-1", **ENCODERS[plan.format],
            )  # fmt: skip
        frames = await self._ffmpeg.packet_index(window, step_ms=0)
        # The clip's own tag makes players drop 529 samples: start that much earlier and
        # take that much more, so what is heard starts and ends at the nearest frame edge.
        delay_ms = MP3_DECODER_DELAY * 1000 / rate
        target = plan.start_ms + shift_ms - delay_ms - t0
        k0 = min(range(len(frames.times_ms)), key=lambda k: abs(frames.times_ms[k] - target))
        frame_ms = (frames.end_ms - frames.times_ms[0]) / len(frames.times_ms)
        n = max(1, round((plan.duration_ms + delay_ms) / frame_ms))
        k1 = min(k0 + n, len(frames.offsets))
        end = frames.offsets[k1] if k1 < len(frames.offsets) else None
        frames_file = window.with_name("frames.mp3")
        await _slice(window, frames_file, frames.offsets[k0], end)
        # Stream copy of whole frames; the muxer adds the Xing/LAME header players need
        # for VBR duration and seeking.
        return bytes_read, self._ffmpeg.input(frames_file).output(
            str(out), map="0:a:0", map_metadata="-1", **COPY["mp3"]
        )


def _s(ms: float) -> str:
    return f"{ms / 1000:.3f}"


async def _slice(src: Path, dst: Path, start: int, end: int | None) -> None:
    def copy() -> None:
        with src.open("rb") as fin, dst.open("wb") as fout:
            fin.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                chunk = fin.read(1 << 20 if remaining is None else min(1 << 20, remaining))
                if not chunk:
                    break
                fout.write(chunk)
                if remaining is not None:
                    remaining -= len(chunk)

    await asyncio.to_thread(copy)
