"""The seek index as a compact binary object beside the episode's source, read by range.

A clip needs only the index entries around it. Stored as fixed-size records on a fixed
time grid, the entry for any time is at an offset computed from the time alone, so a
clip reads a few hundred bytes with one ranged GET, whatever the episode's length.

Layout, little-endian: a 32-byte header (:data:`MAGIC`, step in ms, record size, record
count, source size), then record ``i``: the packet time (µs) and byte offset of the first
frame that starts at or after ``i * step_ms``.
"""

from __future__ import annotations

import bisect
import math
import struct

from services.common.episodes import SeekIndex

__all__ = [
    "HEADER",
    "MAGIC",
    "RECORD",
    "STEP_MS",
    "IndexFormatError",
    "decode",
    "encode",
    "parse_records",
    "record_span",
    "records_range",
]

MAGIC = b"TDSEEK1\0"
HEADER = struct.Struct("<8sIIQQ")
RECORD = struct.Struct("<QQ")
STEP_MS = 1000


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
