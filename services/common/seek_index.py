"""The seek index as a compact binary object beside the episode's source, read by range.

A clip needs only the index entries around it. Stored as fixed-size records on a fixed
time grid, the entry for any time is at an offset computed from the time alone, so a
clip reads a few hundred bytes with one ranged GET, whatever the episode's length.

Layout, little-endian: a 32-byte header (:data:`MAGIC`, step in ms, record size, record
count, source size), then record ``i``: the packet time (µs) and byte offset of the first
frame that starts at or after ``i * step_ms``.

The episode's document also carries a *directory*: the same records on a coarser grid
(:func:`encode_directory`), a few kB whatever the episode's length. It comes with the
episode, which a clip looks up anyway, so a clip that can afford to read a few seconds
more of the source finds its window with no read of the index at all.
"""

from __future__ import annotations

import bisect
import math
import struct

from services.common.episodes import SeekIndex

__all__ = [
    "DIRECTORY_MAX_RECORDS",
    "DIRECTORY_STEP_MS",
    "HEADER",
    "MAGIC",
    "RECORD",
    "STEP_MS",
    "IndexFormatError",
    "decode",
    "decode_directory",
    "directory_window",
    "encode",
    "encode_directory",
    "parse_records",
    "record_span",
    "records_range",
]

MAGIC = b"TDSEEK1\0"
HEADER = struct.Struct("<8sIIQQ")
RECORD = struct.Struct("<QQ")
STEP_MS = 1000
# The directory: a version byte and its step; then per grid point, how far past the
# point its frame starts (µs) and how many bytes on from the previous point's frame.
DIRECTORY_HEADER = struct.Struct("<BI")
DIRECTORY_RECORD = struct.Struct("<II")
DIRECTORY_VERSION = 1
DIRECTORY_STEP_MS = 10_000
# Bounds its size (8 kB): longer episodes get a coarser grid (3 h: 11 s).
DIRECTORY_MAX_RECORDS = 1024
# What a directory window takes past the clip's end: a few frames are read past the
# last one wanted (a frame lasts 72 ms at most), so it ends at a grid point beyond this.
DIRECTORY_TAIL_MS = 500


class IndexFormatError(ValueError):
    """Bytes that are not a seek index of this format."""


def encode(index: SeekIndex, step_ms: int = STEP_MS) -> bytes:
    """The binary object for ``index``: for each grid point, the first entry at or after it
    (exact when ``index`` was sampled on the same grid, as registration does)."""
    times, offsets = index.times_ms, index.offsets
    if not times or len(times) != len(offsets):
        raise ValueError("a seek index needs as many offsets as times, at least one")
    count = math.floor(times[-1] / step_ms) + 1
    out = bytearray(HEADER.pack(MAGIC, step_ms, RECORD.size, count, index.size_bytes))
    j = 0
    for i in range(count):
        j = bisect.bisect_left(times, i * step_ms, j)
        out += RECORD.pack(round(times[j] * 1000), offsets[j])
    return bytes(out)


def decode(data: bytes) -> SeekIndex:
    """A whole binary index back as a :class:`SeekIndex` (for tools and tests; a clip
    reads only :func:`records_range`)."""
    if len(data) < HEADER.size:
        raise IndexFormatError("too short for a seek index header")
    magic, step_ms, record_size, count, size = HEADER.unpack_from(data)
    if magic != MAGIC or record_size != RECORD.size or step_ms <= 0:
        raise IndexFormatError("not a seek index of this format")
    if len(data) != HEADER.size + count * RECORD.size:
        raise IndexFormatError("seek index length does not match its record count")
    times, offsets = parse_records(data[HEADER.size :])
    return SeekIndex(times_ms=times, offsets=offsets, size_bytes=size)


def parse_records(data: bytes | memoryview) -> tuple[list[float], list[int]]:
    """(times in ms, byte offsets) of whole records in ``data``."""
    times: list[float] = []
    offsets: list[int] = []
    whole = len(data) - len(data) % RECORD.size
    for t_us, offset in RECORD.iter_unpack(data[:whole]):
        times.append(t_us / 1000)
        offsets.append(offset)
    return times, offsets


def record_span(start_ms: float, end_ms: float, step_ms: int = STEP_MS) -> tuple[int, int]:
    """First and last record (inclusive) needed to find the byte window of the packet
    times ``[start_ms, end_ms]``: one before the start's grid point (its frame may begin
    just after ``start_ms``), through the one after the first record at or past the end."""
    first = max(0, math.floor(max(0.0, start_ms) / step_ms) - 1)
    last = max(first, math.ceil(end_ms / step_ms) + 1)
    return first, last


def records_range(first: int, last: int) -> tuple[int, int]:
    """The object's byte range (inclusive) holding records ``first..last``."""
    return HEADER.size + first * RECORD.size, HEADER.size + (last + 1) * RECORD.size - 1


def encode_directory(index: SeekIndex) -> bytes:
    """The directory of ``index``: its entries on a grid of whole seconds, at least
    :data:`DIRECTORY_STEP_MS` apart and at most :data:`DIRECTORY_MAX_RECORDS` of them."""
    times, offsets = index.times_ms, index.offsets
    if not times or len(times) != len(offsets):
        raise ValueError("a seek index needs as many offsets as times, at least one")
    span = times[-1] / (DIRECTORY_MAX_RECORDS - 1)
    step = max(DIRECTORY_STEP_MS, math.ceil(span / 1000) * 1000)
    out = bytearray(DIRECTORY_HEADER.pack(DIRECTORY_VERSION, step))
    j, previous = 0, 0
    for i in range(math.floor(times[-1] / step) + 1):
        j = bisect.bisect_left(times, i * step, j)
        past_us = round((times[j] - i * step) * 1000)
        out += DIRECTORY_RECORD.pack(past_us, offsets[j] - previous)
        previous = offsets[j]
    return bytes(out)


def decode_directory(data: bytes) -> tuple[list[float], list[int]]:
    """(times in ms, byte offsets) of a directory's entries."""
    if len(data) < DIRECTORY_HEADER.size:
        raise IndexFormatError("too short for a seek directory")
    version, step = DIRECTORY_HEADER.unpack_from(data)
    body = len(data) - DIRECTORY_HEADER.size
    if version != DIRECTORY_VERSION or step <= 0 or body % DIRECTORY_RECORD.size or not body:
        raise IndexFormatError("not a seek directory of this format")
    times: list[float] = []
    offsets: list[int] = []
    offset = 0
    records = DIRECTORY_RECORD.iter_unpack(memoryview(data)[DIRECTORY_HEADER.size :])
    for i, (past_us, delta) in enumerate(records):
        offset += delta
        times.append(i * step + past_us / 1000)
        offsets.append(offset)
    return times, offsets


def directory_window(
    times_ms: list[float],
    offsets: list[int],
    size_bytes: int,
    start_ms: float,
    end_ms: float,
    preroll_ms: int = 500,
) -> tuple[float, int, int]:
    """(packet time of the first byte, first byte, last byte inclusive) covering the
    packet times ``[start_ms - preroll_ms, end_ms + DIRECTORY_TAIL_MS]``, from directory
    entries: both ends on entries, so up to a step more on each side than the index's
    window."""
    i = max(bisect.bisect_right(times_ms, max(0.0, start_ms - preroll_ms)) - 1, 0)
    j = bisect.bisect_left(times_ms, end_ms + DIRECTORY_TAIL_MS)
    last = offsets[j] - 1 if j < len(offsets) else size_bytes - 1
    return times_ms[i], offsets[i], last
