"""The in-process MP3 cutter on files made with ffmpeg: CBR with ID3 tags and cover art,
VBR, MPEG-2 stereo; each with its LAME/Xing frame. The byte windows are what the seek
index points at: whole frames, from a frame start."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.clipper.mp3_cut import Mp3Clip
from services.common.mp3_frames import (
    MP3_DECODER_DELAY,
    FrameHeader,
    FreeFormat,
    NotFrames,
    decode_header,
    iter_frames,
    parse_info_tag,
)
from tests.support import audio


@dataclass
class Source:
    data: bytes
    offsets: list[int]  # audio frames only (the Xing/LAME frame left out)
    header: FrameHeader
    skip: int  # the source's gapless start skip, as registration records it

    @property
    def frame_ms(self) -> float:
        return self.header.samples * 1000 / self.header.sample_rate

    def end_of(self, k: int) -> int:
        return self.offsets[k] if k < len(self.offsets) else len(self.data)


def load(path: Path) -> Source:
    data = path.read_bytes()
    frames = list(iter_frames(data))
    (first, h), audio_frames = frames[0], frames[1:]
    tag = parse_info_tag(data[first : first + h.size], h)
    assert tag is not None and tag.delay > 0, "ffmpeg writes a LAME tag with the encoder delay"
    return Source(data, [o for o, _ in audio_frames], audio_frames[0][1],
                  tag.delay + MP3_DECODER_DELAY)  # fmt: skip


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Source]:
    tmp = tmp_path_factory.mktemp("mp3")
    mpeg2 = tmp / "mpeg2.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", "sine=frequency=500:sample_rate=22050:duration=20", "-ac", "2",
         "-c:a", "libmp3lame", "-b:a", "64k", str(mpeg2)],
        check=True,
    )  # fmt: skip
    return {
        "cbr": load(audio.make_episode(tmp / "cbr.mp3", "cbr", 20)),
        "vbr": load(audio.make_episode(tmp / "vbr.mp3", "vbr", 20)),
        "mpeg2": load(mpeg2),
    }


def cut(src: Source, start_ms: float, dur_ms: float, chunk: int = 65536,
        preroll_frames: int = 19, extra_frames: int = 38) -> tuple[bytes, int, int]:  # fmt: skip
    """Cut from a window like the seek index's: from a frame before the start to a frame
    past the end. Also returns the first wanted frame and how many, worked out apart."""
    heard = src.header.sample_rate / 1000
    packet_ms = start_ms + src.skip / heard
    kw = max(0, int(packet_ms / src.frame_ms) - preroll_frames)
    end_k = int((start_ms + dur_ms + src.skip / heard) / src.frame_ms) + extra_frames
    window = src.data[src.offsets[kw] : src.end_of(end_k)]
    clip = Mp3Clip(start_ms=start_ms, duration_ms=dur_ms, window_start_ms=kw * src.frame_ms,
                   skip_samples=src.skip)  # fmt: skip
    out = bytearray()
    for i in range(0, len(window), chunk):
        out += clip.feed(window[i : i + chunk])
    out += clip.finish()
    info = clip.info_frame()
    out[: len(info)] = info
    # Frame k is heard from sample k * spf + 529 - skip of the source (the clip's own tag
    # drops 529): the first frame is the one whose edge is nearest the asked start, and
    # the count the one whose heard length is nearest the asked duration.
    spf = src.header.samples
    edges = [k * spf + MP3_DECODER_DELAY - src.skip for k in range(len(src.offsets))]
    k0 = min(range(len(edges)), key=lambda k: abs(edges[k] - start_ms * heard))
    n = min(range(1, 2000), key=lambda m: abs(m * spf - MP3_DECODER_DELAY - dur_ms * heard))
    return bytes(out), k0, n


@pytest.mark.parametrize("kind", ["cbr", "vbr", "mpeg2"])
@pytest.mark.parametrize(("start_ms", "dur_ms"), [(3517, 4000), (10_000, 2500), (0, 1000)])
def test_whole_frames_behind_a_fresh_lame_tag(
    sources: dict[str, Source], kind: str, start_ms: int, dur_ms: int
) -> None:
    src = sources[kind]
    out, k0, n = cut(src, start_ms, dur_ms)
    frames = list(iter_frames(out))
    (at, h), audio_frames = frames[0], frames[1:]
    assert at == 0 and h.same_stream(src.header) and h.mono == src.header.mono
    tag = parse_info_tag(out[: h.size], h)
    assert tag is not None
    # What ffmpeg's muxer writes for a stream copy: every frame counted, no encoder delay
    # or padding (a player drops only its decoder's 529 samples), a valid tag CRC.
    assert (tag.frames, tag.size, tag.delay, tag.padding) == (n, len(out), 0, 0)
    assert tag.tag_crc_ok and tag.encoder == b"Lavf"
    assert tag.vbr == (kind == "vbr")
    # The source's own frames, byte for byte: the nearest edge to the heard start.
    assert out[h.size :] == src.data[src.offsets[k0] : src.end_of(k0 + n)]
    assert len(audio_frames) == n
    assert b"ID3" not in out[:10] and b"\x89PNG" not in out


def test_the_clip_decodes_to_its_length(sources: dict[str, Source], tmp_path: Path) -> None:
    src = sources["vbr"]
    out, _, n = cut(src, 5000, 3000)
    path = tmp_path / "clip.mp3"
    path.write_bytes(out)
    samples = audio.decode(path)
    # The decoder drops its own delay, as the tag says: what is heard is n frames less it.
    assert len(samples) == n * 1152 - MP3_DECODER_DELAY
    assert abs(audio.duration_ms(samples) - 3000) <= src.frame_ms / 2


def test_the_output_does_not_depend_on_how_the_window_arrives(
    sources: dict[str, Source],
) -> None:
    src = sources["vbr"]
    whole, _, _ = cut(src, 7000, 1000, chunk=1 << 30)
    for chunk in (1, 3, 333, 4096):
        assert cut(src, 7000, 1000, chunk=chunk)[0] == whole, chunk


def test_a_window_from_the_first_frame_skips_the_sources_own_tag(
    sources: dict[str, Source],
) -> None:
    src = sources["cbr"]
    tag_frame = next(o for o, _ in iter_frames(src.data))
    clip = Mp3Clip(start_ms=0, duration_ms=1000, window_start_ms=0, skip_samples=src.skip)
    out = clip.feed(src.data[tag_frame : src.offsets[100]]) + clip.finish()
    h = decode_header(int.from_bytes(clip.info_frame()[:4], "big"))
    assert h is not None
    assert out[h.size :].startswith(src.data[src.offsets[0] : src.offsets[1]])


def test_a_window_that_is_not_frames_is_refused(sources: dict[str, Source]) -> None:
    src = sources["cbr"]
    for window in (b"this is not audio\n" * 100, src.data[src.offsets[50] + 1 : src.offsets[90]]):
        clip = Mp3Clip(start_ms=0, duration_ms=1000, window_start_ms=0, skip_samples=0)
        with pytest.raises(NotFrames):
            clip.feed(window)
            clip.finish()
    empty = Mp3Clip(start_ms=0, duration_ms=1000, window_start_ms=0, skip_samples=0)
    with pytest.raises(NotFrames):
        empty.finish()


def test_free_format_is_refused() -> None:
    free = (0xFFFB00C0).to_bytes(4, "big") + bytes(300)
    clip = Mp3Clip(start_ms=0, duration_ms=1000, window_start_ms=0, skip_samples=0)
    with pytest.raises(FreeFormat):
        clip.feed(free * 3)


def test_junk_inside_the_window_is_left_out(sources: dict[str, Source]) -> None:
    src = sources["vbr"]
    clean, k0, n = cut(src, 4000, 1000)
    # Corrupt bytes between two wanted frames: skipped like a decoder does, not counted.
    assert n > 5
    at = src.offsets[k0 + 5]
    src_junk = Source(src.data[:at] + b"\x00junk\xff\xfb" * 10 + src.data[at:],
                      [o if o < at else o + 70 for o in src.offsets], src.header,
                      src.skip)  # fmt: skip
    dirty, _, _ = cut(src_junk, 4000, 1000)
    assert dirty == clean


def test_a_window_shorter_than_the_start_gives_its_last_frame(sources: dict[str, Source]) -> None:
    src = sources["cbr"]
    clip = Mp3Clip(start_ms=15_000, duration_ms=1000, window_start_ms=0, skip_samples=src.skip)
    out = clip.feed(src.data[src.offsets[0] : src.offsets[10]]) + clip.finish()
    assert clip.frames == 1
    h = decode_header(int.from_bytes(clip.info_frame()[:4], "big"))
    assert h is not None and out[h.size :] == src.data[src.offsets[9] : src.offsets[10]]


def test_once_every_wanted_frame_is_out_the_rest_is_ignored(sources: dict[str, Source]) -> None:
    src = sources["cbr"]
    clip = Mp3Clip(start_ms=1000, duration_ms=500, window_start_ms=0, skip_samples=src.skip)
    clip.feed(src.data[src.offsets[0] : src.offsets[200]])
    assert clip.satisfied
    assert clip.feed(b"anything at all") == b"" and clip.finish() == b""
