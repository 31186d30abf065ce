"""The binary seek index: its round trip, and that the few records a clip reads by range
give the same byte window as the whole index."""

from __future__ import annotations

import random

import pytest

from services.common import seek_index
from services.common.episodes import SeekIndex, byte_window

FRAME_MS = 1152 * 1000 / 44100


def scanned(duration_s: int, seed: int = 1) -> SeekIndex:
    """What registration keeps of a VBR file: the first frame at or after each second,
    with offsets growing by a varying frame size."""
    rng = random.Random(seed)
    times: list[float] = []
    offsets: list[int] = []
    offset, k = 417, 0
    while (t := k * FRAME_MS) < duration_s * 1000:
        if t >= len(times) * 1000:
            times.append(round(t, 3))
            offsets.append(offset)
        offset += rng.randint(104, 1044)
        k += 1
    return SeekIndex(times_ms=times, offsets=offsets, size_bytes=offset + 128)


def test_round_trip() -> None:
    index = scanned(3 * 3600)
    data = seek_index.encode(index)
    assert len(data) == seek_index.HEADER.size + len(index.times_ms) * seek_index.RECORD.size
    back = seek_index.decode(data)
    assert back.offsets == index.offsets and back.size_bytes == index.size_bytes
    assert back.times_ms == pytest.approx(index.times_ms, abs=0.001)


def test_the_records_around_a_clip_give_the_whole_index_window() -> None:
    index = scanned(3 * 3600)
    data = seek_index.encode(index)
    rng = random.Random(7)
    for _ in range(500):
        start = rng.uniform(0, 3 * 3600_000 - 1000)
        end = start + rng.choice([1000, 30_000, 600_000])
        first, last = seek_index.record_span(start - 500, end)
        lo, hi = seek_index.records_range(first, last)
        times, offsets = seek_index.parse_records(data[lo : hi + 1])
        got = byte_window(times, offsets, index.size_bytes, start, end)
        assert got == pytest.approx(index.window(start, end)), (start, end)
        # A clip's read does not grow with the episode: about its own length in records.
        assert last - first <= (end - start + 500) / 1000 + 4


def test_an_index_sampled_off_the_grid_still_covers_every_clip() -> None:
    """Indexes made before the fixed grid kept a packet a second *after the last kept
    one*: re-gridded, they may start a window a little later, never past the clip."""
    # A file of 400-byte frames after a 417-byte header frame.
    frames = int(600_000 / FRAME_MS)
    times: list[float] = []
    offsets: list[int] = []
    next_at = 0.0
    for k in range(frames):
        if (t := k * FRAME_MS) >= next_at:
            times.append(float(round(t)))
            offsets.append(417 + 400 * k)
            next_at = t + 1000
    drift = SeekIndex(times_ms=times, offsets=offsets, size_bytes=417 + 400 * frames)
    data = seek_index.encode(drift)
    for start in range(0, 590_000, 7_919):
        first, last = seek_index.record_span(start - 500, start + 5000)
        lo, hi = seek_index.records_range(first, last)
        t0, first_byte, last_byte = byte_window(
            *seek_index.parse_records(data[lo : hi + 1]), drift.size_bytes, start, start + 5000
        )
        assert t0 <= start and first_byte <= 417 + 400 * int(start / FRAME_MS)
        assert last_byte >= 417 + 400 * int((start + 5000) / FRAME_MS + 1) - 1


def test_a_clip_at_the_end_reads_to_the_end_of_the_source() -> None:
    index = scanned(60)
    data = seek_index.encode(index)
    first, last = seek_index.record_span(58_000, 62_000)
    lo, hi = seek_index.records_range(first, last)
    part = data[lo : hi + 1]  # as S3 answers a range past the end: what there is
    _, _, last_byte = byte_window(*seek_index.parse_records(part), index.size_bytes, 58_500, 62_000)
    assert last_byte == index.size_bytes - 1


@pytest.mark.parametrize(
    "bad",
    [b"", b"NOTSEEK!" + bytes(24), seek_index.encode(scanned(10))[:-3]],
)
def test_what_is_not_an_index_is_refused(bad: bytes) -> None:
    with pytest.raises(seek_index.IndexFormatError):
        seek_index.decode(bad)


def test_an_empty_index_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        seek_index.encode(SeekIndex(times_ms=[], offsets=[], size_bytes=0))
