"""The binary seek index: its round trip, and that the few records a clip reads by range
give the same byte window as the whole index; the directory's windows cover the index's."""

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


@pytest.mark.parametrize(
    ("duration_s", "step_ms"),
    [(60, 10_000), (2 * 3600, 10_000), (3 * 3600, 11_000), (24 * 3600, 85_000)],
)
def test_the_directory_is_the_index_on_a_coarser_grid_and_stays_small(
    duration_s: int, step_ms: int
) -> None:
    index = scanned(duration_s)
    data = seek_index.encode_directory(index)
    assert len(data) <= 2 + 4 + seek_index.DIRECTORY_MAX_RECORDS * 8
    times, offsets = seek_index.decode_directory(data)
    assert len(times) == int(index.times_ms[-1] // step_ms) + 1
    # Each entry is the index's entry at its grid point, exactly.
    for k in range(len(times)):
        i = index.times_ms.index(next(t for t in index.times_ms if t >= k * step_ms))
        assert times[k] == pytest.approx(index.times_ms[i], abs=0.001)
        assert offsets[k] == index.offsets[i]


def test_a_directory_window_covers_the_clip_and_its_tail_and_at_most_a_step_more() -> None:
    index = scanned(3 * 3600, seed=3)
    times, offsets = seek_index.decode_directory(seek_index.encode_directory(index))
    step = 11_000
    rng = random.Random(11)
    for _ in range(500):
        start = rng.uniform(0, 3 * 3600_000 - 1000)
        end = start + rng.choice([1000, 30_000, 600_000])
        t0, first, last = seek_index.directory_window(times, offsets, index.size_bytes, start, end)
        i_t0, i_first, _ = index.window(start, end)
        assert first <= i_first and t0 <= i_t0, (start, end)
        # It starts on an entry (a frame, at its packet time) at most a step early...
        assert offsets[times.index(t0)] == first and start - 500 - t0 < step + 100
        # ...and ends where an entry at most a step past the clip's end (and tail) begins.
        if last < index.size_bytes - 1:
            j = offsets.index(last + 1)
            assert end + seek_index.DIRECTORY_TAIL_MS <= times[j] < end + 500 + step + 100


def test_a_directory_window_at_the_end_reads_to_the_end_of_the_source() -> None:
    index = scanned(60)
    times, offsets = seek_index.decode_directory(seek_index.encode_directory(index))
    _, _, last = seek_index.directory_window(times, offsets, index.size_bytes, 55_000, 59_900)
    assert last == index.size_bytes - 1


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x01",
        b"\x02" + bytes(11),
        b"\x01" + bytes(4),
        seek_index.encode_directory(scanned(30))[:-3],
    ],
)
def test_what_is_not_a_directory_is_refused(bad: bytes) -> None:
    with pytest.raises(seek_index.IndexFormatError):
        seek_index.decode_directory(bad)
