"""FFmpegCutter's MP3 stream copy, in process: one ranged GET of index records, one of the
window, the frames cut without a process; ffmpeg only for what it cannot cut."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

from services.clipper import seek_windows
from services.clipper.cutter import FFmpegCutter, SourceUnreadable
from services.clipper.mp3_cut import Mp3Clip
from services.common import seek_index
from services.common.clip_rules import plan_clip
from services.common.episodes import Episode, SeekIndex
from services.common.errors import PermanentError
from services.common.ffmpeg import NotMediaError, temp_workdir
from services.common.mp3_frames import MP3_DECODER_DELAY, iter_frames, parse_info_tag
from tests.support import audio
from tests.support.fakes import MemoryEpisodes
from tests.support.ranged_media import RangedMemoryMedia


class NoFFmpeg:
    """The ffmpeg port of a cut that must not need ffmpeg: any use is recorded, and
    reading packets fails as on a file it cannot read."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def input(self, source: str | os.PathLike[str], **kwargs: Any) -> Any:
        self.used.append("input")
        raise AssertionError("no ffmpeg command expected")

    async def run(self, stream_or_argv: Any, *, timeout_s: float | None = None) -> Any:
        self.used.append("run")
        raise AssertionError("no ffmpeg run expected")

    async def probe(self, path_or_url: str | os.PathLike[str], *,
                    timeout_s: float | None = None) -> Any:  # fmt: skip
        self.used.append("probe")
        raise NotMediaError("not probed here")

    async def packet_index(self, path: str | os.PathLike[str], step_ms: int = 1000) -> Any:
        self.used.append("packet_index")
        raise NotMediaError("no packets read here")

    def temp_workdir(
        self, prefix: str = "tapedeck-"
    ) -> contextlib.AbstractAsyncContextManager[Path]:
        self.used.append("temp_workdir")
        return temp_workdir(prefix)


def register(path: Path, *, binary: bool = True) -> tuple[Episode, SeekIndex, bytes]:
    """What registration records of an MP3, worked out here from its frames."""
    data = path.read_bytes()
    frames = list(iter_frames(data))
    (tag_at, tag_h), audio_frames = frames[0], frames[1:]
    tag = parse_info_tag(data[tag_at : tag_at + tag_h.size], tag_h)
    assert tag is not None
    frame_ms = 1152 * 1000 / 44100
    times: list[float] = []
    offsets: list[int] = []
    for k, (offset, _) in enumerate(audio_frames):
        if k * frame_ms >= len(times) * 1000:
            times.append(round(k * frame_ms, 3))
            offsets.append(offset)
    index = SeekIndex(times_ms=times, offsets=offsets, size_bytes=len(data))
    skip = tag.delay + MP3_DECODER_DELAY
    heard_ms = (len(audio_frames) * 1152 - skip - tag.padding + MP3_DECODER_DELAY) / 44.1
    episode = Episode(
        episode_id="ep", tenant_id="acme", s3_key="episodes/acme/ep/source.mp3",
        duration_ms=round(heard_ms), format_name="mp3", codec="mp3", sample_rate=44100,
        size_bytes=len(data), seek_indexed=True, start_skip_samples=skip,
        seek_index_key="episodes/acme/ep/seek.idx" if binary else None,
    )  # fmt: skip
    return episode, index, data


@pytest.fixture(scope="module")
def vbr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return audio.make_episode(tmp_path_factory.mktemp("cut") / "vbr.mp3", "vbr", 20)


def world(
    path: Path, *, binary: bool = True, in_process: bool = True
) -> tuple[FFmpegCutter, RangedMemoryMedia, MemoryEpisodes, NoFFmpeg, Episode, SeekIndex]:
    episode, index, data = register(path, binary=binary)
    media = RangedMemoryMedia({episode.s3_key: data})
    if episode.seek_index_key:
        media.put(episode.seek_index_key, seek_index.encode(index))
    episodes = MemoryEpisodes(episode)
    episodes.indexes[("acme", "ep")] = index
    ffmpeg = NoFFmpeg()
    cutter = FFmpegCutter(media, ffmpeg, episodes, in_process_mp3=in_process)
    return cutter, media, episodes, ffmpeg, episode, index


def expected(episode: Episode, index: SeekIndex, data: bytes, start: int, dur: int) -> bytes:
    shift = episode.start_skip_samples / 44.1
    t0, first, last = index.window(start + shift, start + dur + shift)
    clip = Mp3Clip(start_ms=start, duration_ms=dur, window_start_ms=t0,
                   skip_samples=episode.start_skip_samples)  # fmt: skip
    out = bytearray(clip.feed(data[first : last + 1]) + clip.finish())
    info = clip.info_frame()
    out[: len(info)] = info
    return bytes(out)


@pytest.mark.parametrize("binary", [True, False])
async def test_an_mp3_copy_is_cut_in_process_from_one_window(vbr: Path, binary: bool) -> None:
    cutter, media, _, ffmpeg, episode, index = world(vbr, binary=binary)
    plan = plan_clip(episode, 6000, 3000, "mp3", False, 600_000)
    async with cutter.cut(episode, plan) as cut:
        made = cut.path.read_bytes()
        folder = cut.path.parent
    assert made == expected(episode, index, media.objects[episode.s3_key], 6000, 3000)
    ((_, first, last),) = [g for g in media.gets if g[0] == episode.s3_key]
    assert last is not None and cut.bytes_read == last - first + 1
    assert cut.stream_copy and ffmpeg.used == [] and not folder.exists()
    # The binary index costs one small read; without it, the MongoDB copy is used.
    index_reads = [g for g in media.gets if g[0] != episode.s3_key]
    assert len(index_reads) == (1 if binary else 0)


async def test_what_was_read_ahead_is_not_read_again(vbr: Path) -> None:
    cutter, media, _, _, episode, index = world(vbr)
    plan = plan_clip(episode, 12_000, 2000, "mp3", False, 600_000)
    await cutter.prefetch(episode, plan)
    # The index records, then the (small) window itself.
    assert [g[0] for g in media.gets] == [episode.seek_index_key, episode.s3_key]
    async with cutter.cut(episode, plan) as cut:
        made = cut.path.read_bytes()
    assert [g[0] for g in media.gets] == [episode.seek_index_key, episode.s3_key]
    assert made == expected(episode, index, media.objects[episode.s3_key], 12_000, 2000)


async def test_read_ahead_is_bounded(vbr: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cutter, media, _, _, episode, _ = world(vbr)
    monkeypatch.setattr("services.clipper.cutter.READ_AHEAD_TOTAL", 100_000)
    plans = [plan_clip(episode, s, 2000, "mp3", False, 600_000) for s in range(0, 16_000, 2000)]
    for plan in plans:  # all cache hits: nothing consumes what was read ahead
        await cutter.prefetch(episode, plan)
    held = [len(a.data or b"") for a in cutter._ahead.values()]
    assert sum(held) <= 100_000 and len(held) < len(plans)
    # Too large a window is not read ahead, only looked up.
    long = plan_clip(episode, 0, 18_000, "mp3", False, 600_000)
    monkeypatch.setattr("services.clipper.cutter.READ_AHEAD_MAX", 50_000)
    before = len(media.gets)
    await cutter.prefetch(episode, long)
    assert [g[0] for g in media.gets[before:]] == [] and cutter._ahead[long.key].data is None


async def test_nothing_is_read_ahead_for_a_cut_ffmpeg_makes(vbr: Path) -> None:
    cutter, media, _, _, episode, _ = world(vbr)
    await cutter.prefetch(episode, plan_clip(episode, 6000, 3000, "mp3", True, 600_000))
    await cutter.prefetch(episode, plan_clip(episode, 6000, 3000, "wav", False, 600_000))
    assert [g[0] for g in media.gets] == [episode.seek_index_key]  # its records, cached


async def test_a_replaced_source_is_unreadable(vbr: Path) -> None:
    cutter, media, _, _, episode, _ = world(vbr)
    media.put(episode.s3_key, b"this is not audio\n" * 20_000)
    plan = plan_clip(episode, 6000, 3000, "mp3", False, 600_000)
    with pytest.raises(SourceUnreadable) as exc:
        async with cutter.cut(episode, plan):
            pass
    assert exc.value.code == "source_unreadable"


async def test_a_shrunk_source_is_an_invalid_range(vbr: Path) -> None:
    cutter, media, _, _, episode, _ = world(vbr)
    media.put(episode.s3_key, b"ID3")
    plan = plan_clip(episode, 6000, 3000, "mp3", False, 600_000)
    with pytest.raises(PermanentError) as exc:
        async with cutter.cut(episode, plan):
            pass
    assert exc.value.code == "invalid_range"


async def test_free_format_frames_go_to_ffmpeg(vbr: Path) -> None:
    cutter, media, _, ffmpeg, episode, index = world(vbr)
    free = (0xFFFB00C0).to_bytes(4, "big") + bytes(200)
    data = bytearray(media.objects[episode.s3_key])
    data[index.offsets[5] :] = free * ((len(data) - index.offsets[5]) // len(free) + 1)
    media.put(episode.s3_key, bytes(data))
    plan = plan_clip(episode, 6000, 3000, "mp3", False, 600_000)
    with pytest.raises(SourceUnreadable):
        async with cutter.cut(episode, plan):
            pass
    # Handed to ffmpeg's path (which, here, cannot read it either).
    assert "packet_index" in ffmpeg.used


async def test_the_old_path_stays_available(vbr: Path) -> None:
    cutter, _, _, ffmpeg, episode, _ = world(vbr, in_process=False)
    plan = plan_clip(episode, 6000, 3000, "mp3", False, 600_000)
    with pytest.raises(SourceUnreadable):
        async with cutter.cut(episode, plan):
            pass
    assert "packet_index" in ffmpeg.used


@pytest.fixture(scope="module")
def cbr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return audio.make_episode(tmp_path_factory.mktemp("cut") / "cbr.mp3", "cbr", 20)


def probed_rate(episode: Episode) -> Episode:
    """The bit rate registration records: ffprobe's average over the whole file, tags
    and cover art included."""
    rate = round(episode.size_bytes * 8000 / episode.duration_ms)
    return episode.model_copy(update={"bit_rate": rate})


class IndexHeldMedia(RangedMemoryMedia):
    """Holds every read of ``held`` until the source has been asked for too: a read-ahead
    that waited for the index before reading the source would never finish."""

    def __init__(self, objects: dict[str, bytes], held: str, source: str) -> None:
        super().__init__(objects)
        self._held, self._source = held, source
        self._source_asked = asyncio.Event()

    async def get_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        if key == self._source:
            self._source_asked.set()
        elif key == self._held:
            await asyncio.wait_for(self._source_asked.wait(), 2)
        return await super().get_range(key, start, end_inclusive)


@pytest.mark.parametrize("start", [0, 4000, 9000, 16_000])
async def test_a_cbr_window_is_read_with_the_index_records_not_after_them(
    cbr: Path, start: int
) -> None:
    cutter, media, _, _, episode, index = world(cbr)
    episode = probed_rate(episode)
    assert seek_windows.guess_range(episode, start, start + 3000) is not None
    held = IndexHeldMedia(dict(media.objects), str(episode.seek_index_key), episode.s3_key)
    cutter = FFmpegCutter(held, NoFFmpeg(), MemoryEpisodes(episode))
    plan = plan_clip(episode, start, 3000, "mp3", False, 600_000)
    await cutter.prefetch(episode, plan)
    async with cutter.cut(episode, plan) as cut:
        made = cut.path.read_bytes()
    # One read of each: the guess covered the window, so the cut read nothing more.
    assert sorted(g[0] for g in held.gets) == sorted([episode.s3_key, str(episode.seek_index_key)])
    assert cutter.guesses == {"hit": 1}
    assert made == expected(episode, index, held.objects[episode.s3_key], start, 3000)


async def test_a_wrong_guess_costs_a_read_not_the_clip(vbr: Path) -> None:
    cutter, media, _, _, episode, index = world(vbr)
    # A VBR file whose average happens to look like a constant (and far too low) rate.
    episode = episode.model_copy(update={"bit_rate": 32_000})
    plan = plan_clip(episode, 2000, 3000, "mp3", False, 600_000)
    await cutter.prefetch(episode, plan)
    async with cutter.cut(episode, plan) as cut:
        made = cut.path.read_bytes()
    shift = episode.start_skip_samples / 44.1
    _, first, last = index.window(2000 + shift, 5000 + shift)
    source_reads = [(g[1], g[2]) for g in media.gets if g[0] == episode.s3_key]
    assert len(source_reads) == 2 and source_reads[1] == (first, last)
    assert source_reads[0][0] > first  # the guess, past the window
    assert cutter.guesses == {"miss": 1}
    assert made == expected(episode, index, media.objects[episode.s3_key], 2000, 3000)


def test_no_guess_without_a_constant_mp3_rate(vbr: Path) -> None:
    episode = register(vbr)[0]
    assert seek_windows.guess_range(episode, 0, 1000) is None  # no rate recorded
    odd = episode.model_copy(update={"bit_rate": 140_000})  # between 128k and 160k
    assert seek_windows.guess_range(odd, 0, 1000) is None
    m4a = episode.model_copy(update={"bit_rate": 128_000, "codec": "aac"})
    assert seek_windows.guess_range(m4a, 0, 1000) is None


def with_directory(episode: Episode, index: SeekIndex) -> Episode:
    return episode.model_copy(update={"seek_directory": seek_index.encode_directory(index)})


@pytest.mark.parametrize(
    ("start", "dur"), [(0, 3000), (2000, 1000), (6000, 3000), (9_317, 4000), (17_000, 5000)]
)
async def test_a_window_from_the_directory_cuts_the_same_clip_with_no_index_read(
    vbr: Path, start: int, dur: int
) -> None:
    cutter, media, _, ffmpeg, episode, index = world(vbr)
    episode = with_directory(episode, index)
    plan = plan_clip(episode, start, dur, "mp3", False, 600_000)
    await cutter.prefetch(episode, plan)
    async with cutter.cut(episode, plan) as cut:
        made = cut.path.read_bytes()
    # One read, of the source only: its window starts on a directory entry (a step is
    # 10 s, so a clip of this 20 s file starts reading at 0 s or 10 s).
    ((key, first, last),) = media.gets
    assert key == episode.s3_key and first in (index.offsets[0], index.offsets[10])
    assert cut.bytes_read == (last or 0) - first + 1 and cutter.directory_windows == 1
    assert ffmpeg.used == [] and cutter.guesses == {}
    # Byte for byte the clip the index's own (narrower) window gives.
    source = media.objects[episode.s3_key]
    assert made == expected(episode, index, source, plan.start_ms, plan.duration_ms)


async def test_a_directory_window_too_large_to_read_ahead_goes_by_the_index(
    vbr: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cutter, media, _, _, episode, index = world(vbr)
    episode = with_directory(episode, index)
    # The directory's window here is 0-10 s (57 kB), the index's about 3 s (17 kB).
    monkeypatch.setattr("services.clipper.cutter.READ_AHEAD_MAX", 40_000)
    plan = plan_clip(episode, 6000, 1000, "mp3", False, 600_000)
    await cutter.prefetch(episode, plan)
    async with cutter.cut(episode, plan) as cut:
        made = cut.path.read_bytes()
    assert [g[0] for g in media.gets] == [episode.seek_index_key, episode.s3_key]
    assert cutter.directory_windows == 0
    assert made == expected(episode, index, media.objects[episode.s3_key], 6000, 1000)


async def test_a_directory_of_an_unknown_format_is_passed_over(vbr: Path) -> None:
    cutter, media, _, _, episode, index = world(vbr)
    episode = episode.model_copy(update={"seek_directory": b"\x09" + bytes(20)})
    plan = plan_clip(episode, 6000, 3000, "mp3", False, 600_000)
    await cutter.prefetch(episode, plan)
    async with cutter.cut(episode, plan) as cut:
        made = cut.path.read_bytes()
    assert [g[0] for g in media.gets] == [episode.seek_index_key, episode.s3_key]
    assert made == expected(episode, index, media.objects[episode.s3_key], 6000, 3000)
