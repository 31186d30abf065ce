"""Cutting a clip out of an episode, reading only the bytes it needs.

MP3 episodes carry a seek index of real frame offsets: the cutter fetches just the byte
window around the clip with one ranged GET (:mod:`.seek_windows`); for a small in-process
cut, a slightly wider window found from the episode's seek directory, with no index read
first. A stream copy to MP3
is then done in process (:mod:`.mp3_cut`): the window is streamed through a frame
parser, the wanted frames go straight to the output behind a fresh Xing/LAME frame, and
no process is started. Accurate mode decodes the window with ffmpeg from a short pre-roll
and re-encodes from the exact sample; other output formats are encoded by ffmpeg too.
Either way VBR files cut where they should, which a bitrate-based seek does not.

Other containers (MP4/M4A, WAV) are read by ffmpeg through a presigned URL: its http
protocol seeks with Range requests using the container's own sample tables.

Times: an MP3 with a LAME tag is heard ``start_skip_samples`` later than its packet
times (encoder delay + the 529-sample decoder delay), so packet times are shifted by
that much; a clip we write carries its own tag, which tells players to drop 529 samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections import Counter, OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from schemas.codes import Code
from services.clipper.mp3_cut import Mp3Clip
from services.clipper.seek_windows import SeekWindows, Window, guess_range
from services.common.clip_rules import CODEC_OF_FORMAT, ClipPlan
from services.common.episodes import Episode
from services.common.errors import PermanentError
from services.common.ffmpeg import FFmpegError, NotMediaError
from services.common.mp3_frames import MP3_DECODER_DELAY, FreeFormat, NotFrames
from services.common.ports import EpisodeRepo, FFmpegPort, MediaPort

__all__ = ["COPY", "CUT_WORKDIR_PREFIX", "ENCODERS", "MP3_DECODER_DELAY", "Cut", "FFmpegCutter"]

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
# URL lifetime for ffmpeg's own reads of the source: only as long as a cut can take.
SOURCE_URL_EXPIRY_S = 900
CUT_WORKDIR_PREFIX = "tapedeck-clip-"
# What a read-ahead may hold: a window is read ahead only when at most READ_AHEAD_MAX
# bytes (a 30 s clip is ~0.3 MB), and windows left unused by cache hits are dropped,
# oldest first, beyond READ_AHEAD_TOTAL.
READ_AHEAD_MAX = 1 << 20
READ_AHEAD_TOTAL = 8 << 20
# A window read ahead goes to the frame cutter in slices of this, so it stops parsing
# once it has every wanted frame (a directory window runs on for some seconds).
FEED_SLICE = 64 << 10


class SourceUnreadable(PermanentError):
    """A registered episode's source no longer decodes (replaced or corrupted in storage)."""

    code = Code.SOURCE_UNREADABLE


class WindowMedia(MediaPort, Protocol):
    """The media port plus the ranged reads the cutter streams windows and index blocks with."""

    def iter_bytes(
        self, key: str, start: int | None = None, end: int | None = None
    ) -> AsyncGenerator[bytes, None]: ...

    async def get_range(self, key: str, start: int, end_inclusive: int) -> bytes: ...


@dataclass(frozen=True)
class Cut:
    path: Path
    bytes_read: int | None  # None when ffmpeg read the source itself over HTTP
    stream_copy: bool


class FFmpegCutter:
    """``in_process_mp3=False`` keeps MP3 stream copies on ffmpeg too (the path before
    the in-process cutter, for comparison); frames the in-process cutter refuses (free
    format) go to ffmpeg either way."""

    def __init__(
        self,
        media: WindowMedia,
        ffmpeg: FFmpegPort,
        episodes: EpisodeRepo,
        *,
        in_process_mp3: bool = True,
        windows: SeekWindows | None = None,
    ) -> None:
        self._media = media
        self._ffmpeg = ffmpeg
        self.windows = windows or SeekWindows(media, episodes)
        self._in_process_mp3 = in_process_mp3
        # Read ahead while the handler checked the cache, by clip key: a cache hit leaves
        # its entry unused, so they are bounded by the bytes they hold.
        self._ahead: OrderedDict[str, _Ahead] = OrderedDict()
        self._ahead_bytes = 0
        # Reads of a window guessed before the index answered: those that covered it.
        self.guesses: Counter[str] = Counter()
        # Windows found from the episode's directory, with no index read.
        self.directory_windows = 0

    async def prefetch(self, episode: Episode, plan: ClipPlan) -> None:
        """While the handler checks the cache: look up the clip's byte window, and for an
        in-process copy of a small window, read it too. From the episode's directory
        when it has one (no index read: a window up to a step wider on each side); else
        from one small ranged GET of index records, and for a constant-bit-rate source
        the window from a guess made before the index answers, read at the same time
        (see ``guess_range``), or once it has. Only with the binary index: a cache hit
        should not wait on loading a MongoDB index copy. A hit wastes these reads; most
        hits never reach the clipper (the API answers them), and what reaches it is
        mostly misses."""
        if not (episode.seek_indexed and episode.seek_index_key):
            return
        try:
            window, data = await self._read_ahead(episode, plan)
        except Exception:  # the cut reads again, and reports what is wrong
            return
        self._forget(plan.key)
        self._ahead[plan.key] = _Ahead(episode.s3_key, window, data)
        self._ahead_bytes += len(data or b"")
        while self._ahead_bytes > READ_AHEAD_TOTAL:
            self._forget(next(iter(self._ahead)))

    async def _read_ahead(
        self, episode: Episode, plan: ClipPlan
    ) -> tuple[Window | None, bytes | None]:
        in_process = self._in_process(episode, plan)
        shift_ms = self._shift_ms(episode)
        if in_process:
            wide = self.windows.from_directory(
                episode, plan.start_ms + shift_ms, plan.end_ms + shift_ms
            )
            if wide is not None and wide.last - wide.first < READ_AHEAD_MAX:
                self.directory_windows += 1
                return wide, await self._media.get_range(episode.s3_key, wide.first, wide.last)
        guess = guess_range(episode, plan.start_ms + shift_ms, plan.end_ms + shift_ms)
        if not in_process or guess is None or guess[1] - guess[0] >= READ_AHEAD_MAX:
            window = await self._window(episode, plan)
            guessed = b""
        else:
            window, guessed = await asyncio.gather(
                self._window(episode, plan),
                self._media.get_range(episode.s3_key, guess[0], guess[1]),
            )
        if window is None or not in_process or window.last - window.first >= READ_AHEAD_MAX:
            return window, None
        if guess is not None and guess[0] <= window.first and window.last < guess[0] + len(guessed):
            self.guesses["hit"] += 1
            return window, guessed[window.first - guess[0] : window.last - guess[0] + 1]
        if guessed:
            self.guesses["miss"] += 1
        return window, await self._media.get_range(episode.s3_key, window.first, window.last)

    def _forget(self, key: str) -> _Ahead | None:
        ahead = self._ahead.pop(key, None)
        if ahead is not None:
            self._ahead_bytes -= len(ahead.data or b"")
        return ahead

    def _in_process(self, episode: Episode, plan: ClipPlan) -> bool:
        return self._in_process_mp3 and not plan.accurate and plan.format == episode.codec == "mp3"

    @staticmethod
    def _shift_ms(episode: Episode) -> float:
        # In packet time, the clip is heard at [start + shift, end + shift).
        return episode.start_skip_samples * 1000 / (episode.sample_rate or 44100)

    async def _window(self, episode: Episode, plan: ClipPlan) -> Window | None:
        shift_ms = self._shift_ms(episode)
        return await self.windows.window(episode, plan.start_ms + shift_ms, plan.end_ms + shift_ms)

    @contextlib.asynccontextmanager
    async def cut(self, episode: Episode, plan: ClipPlan) -> AsyncIterator[Cut]:
        """Yield the cut clip in a temp dir that is removed afterwards."""
        copy = not plan.accurate and CODEC_OF_FORMAT[plan.format] == episode.codec
        window: Window | None = None
        ahead = self._forget(plan.key)
        if ahead is not None and ahead.s3_key == episode.s3_key:
            window = ahead.window
        elif episode.seek_indexed:
            window = await self._window(episode, plan)
        read = 0
        if window is not None and self._in_process(episode, plan):
            with _scratch() as tmp:
                out = tmp / "clip.mp3"
                data = ahead.data if ahead is not None and ahead.window == window else None
                try:
                    read = await self._copy_mp3(episode, plan, window, out, data)
                except _Refused as refused:
                    read = refused.bytes_read  # free format: ffmpeg knows how to cut it
                else:
                    yield Cut(out, read, True)
                    return
        async with self._ffmpeg.temp_workdir(prefix=CUT_WORKDIR_PREFIX) as tmp:
            out = tmp / f"clip.{plan.format}"
            yield await self._ffmpeg_cut(episode, plan, window, tmp, out, copy, read)

    async def _copy_mp3(
        self, episode: Episode, plan: ClipPlan, window: Window, out: Path, data: bytes | None
    ) -> int:
        """Stream the window (or its bytes read ahead) through the frame cutter into
        ``out``; the bytes read."""
        clip = Mp3Clip(
            start_ms=plan.start_ms,
            duration_ms=plan.duration_ms,
            window_start_ms=window.start_ms,
            skip_samples=episode.start_skip_samples,
        )
        read = 0
        try:
            with out.open("wb") as fh:
                if data is not None:
                    read = len(data)
                    # In slices: the frames past the last one wanted are not parsed.
                    for at in range(0, len(data), FEED_SLICE):
                        fh.write(clip.feed(data[at : at + FEED_SLICE]))
                        if clip.satisfied:
                            break
                else:
                    chunks = self._media.iter_bytes(episode.s3_key, window.first, window.last)
                    async with contextlib.aclosing(chunks):
                        async for chunk in chunks:
                            read += len(chunk)
                            fh.write(clip.feed(chunk))
                fh.write(clip.finish())
                fh.seek(0)
                fh.write(clip.info_frame())
        except NotFrames as bad:
            # The indexed frames are not there any more: the source was replaced.
            raise SourceUnreadable(f"no MP3 frames where the seek index points: {bad}") from bad
        except FreeFormat as exc:
            raise _Refused(read) from exc
        return read

    async def _ffmpeg_cut(
        self, episode: Episode, plan: ClipPlan, window: Window | None, tmp: Path, out: Path,
        copy: bool, bytes_before: int,
    ) -> Cut:  # fmt: skip
        bytes_read: int | None = None
        probe_src: Path | str
        if window is not None:
            probe_src = tmp / "window.mp3"
            try:
                bytes_read, stream = await self._from_window(
                    episode, window, plan, probe_src, out, copy
                )
            except NotMediaError as bad:
                # The indexed frames are not there any more: the source was replaced.
                raise SourceUnreadable(str(bad)) from bad
            bytes_read += bytes_before
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
        return Cut(out, bytes_read, copy)

    async def _from_window(
        self, episode: Episode, w: Window, plan: ClipPlan, window: Path, out: Path, copy: bool,
    ) -> tuple[int, Any]:  # fmt: skip
        rate = episode.sample_rate or 44100
        shift_ms = episode.start_skip_samples * 1000 / rate
        bytes_read = await self._media.download_file(episode.s3_key, window, w.first, w.last)
        if not copy:
            # Decode from the window's first frame and discard up to the exact sample.
            offset_s = (plan.start_ms + shift_ms - w.start_ms) / 1000
            src = self._ffmpeg.input(window)
            return bytes_read, src.output(
                str(out), ss=f"{offset_s:.6f}", t=_s(plan.duration_ms), map="0:a:0",
                map_metadata="-1", **ENCODERS[plan.format],
            )  # fmt: skip
        frames = await self._ffmpeg.packet_index(window, step_ms=0)
        # The clip's own tag makes players drop 529 samples: start that much earlier and
        # take that much more, so what is heard starts and ends at the nearest frame edge.
        delay_ms = MP3_DECODER_DELAY * 1000 / rate
        target = plan.start_ms + shift_ms - delay_ms - w.start_ms
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


@dataclass(frozen=True, slots=True)
class _Ahead:
    s3_key: str
    window: Window | None
    data: bytes | None  # the window's bytes, when small enough to read ahead


class _Refused(Exception):
    """The in-process cutter cannot cut these frames; ``bytes_read`` it read trying."""

    def __init__(self, bytes_read: int) -> None:
        super().__init__(bytes_read)
        self.bytes_read = bytes_read


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A scratch directory named like the ffmpeg port's (so a crashed process's leftovers
    are found the same way), made and removed in place: for one small file that is
    quicker than handing each step to a thread."""
    path = Path(tempfile.mkdtemp(prefix=f"{CUT_WORKDIR_PREFIX}{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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
