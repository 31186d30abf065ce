"""Moving an MP4's ``moov`` box to the front as the file is uploaded, not by rewriting it.

A player streaming an MP4 needs its index (``moov``) first; ffmpeg's ``+faststart`` puts
it there by rewriting the whole file once it is written, so not one byte of the output is
final until ffmpeg exits and none of it can be uploaded while it runs. Written without it
(``ftyp``, ``free``, ``mdat``, then ``moov`` at the end), everything but the ``mdat`` size
in the head is final as it is written. The stored object is then composed of the file's
``ftyp``, its ``moov`` with every chunk offset moved by the ``moov``'s own length, and the
file from after the ``ftyp`` up to the ``moov``: byte for byte what ``+faststart`` makes
(the tests compare the two).
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Final

from services.common.growing import Finish

log = logging.getLogger(__name__)

# Boxes whose children hold the chunk offset tables (stco, co64).
_CONTAINERS: Final = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl"})
_MAX32: Final = 0xFFFFFFFF


class NotMovable(ValueError):
    """The file is not laid out as ffmpeg writes an MP4 without ``+faststart``."""


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """(type, offset, header length, size) of each box in ``data[start:end]``."""
    out = []
    at = start
    while at < end:
        if end - at < 8:
            raise NotMovable("a box header runs past its parent")
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise NotMovable(f"box {kind!r} has a size that does not fit its parent")
        out.append((kind, at, header, size))
        at += size
    return out


def _offsets(data: bytes, at: int, header: int, wide: bool) -> tuple[int, list[int]]:
    """The version/flags word and the entries of a stco (``wide``: co64) box."""
    flags, count = struct.unpack_from(">II", data, at + header)
    fmt = f">{count}{'Q' if wide else 'I'}"
    return flags, list(struct.unpack_from(fmt, data, at + header + 8))


def _rebuild(data: bytes, start: int, end: int, shift: int, widen: set[int]) -> bytes:
    """``data[start:end]``'s boxes with their chunk offsets moved by ``shift``; the stco
    boxes at the offsets in ``widen`` become co64."""
    parts = []
    for kind, at, header, size in _boxes(data, start, end):
        if kind in _CONTAINERS:
            body = _rebuild(data, at + header, at + size, shift, widen)
        elif kind in (b"stco", b"co64"):
            wide = kind == b"co64" or at in widen
            flags, entries = _offsets(data, at, header, kind == b"co64")
            moved = [e + shift for e in entries]
            if not wide and moved and max(moved) > _MAX32:
                raise NotMovable("a chunk offset outgrows 32 bits")  # widen was not asked
            kind = b"co64" if wide else b"stco"
            packed = struct.pack(f">{len(moved)}{'Q' if wide else 'I'}", *moved)
            body = struct.pack(">II", flags, len(moved)) + packed
        else:
            parts.append(data[at : at + size])
            continue
        length = len(body) + header
        if header == 16:
            parts.append(struct.pack(">I4sQ", 1, kind, length) + body)
        else:
            parts.append(struct.pack(">I4s", length, kind) + body)
    return b"".join(parts)


def _stco_boxes(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(offset, entry count, largest entry) of every stco box under ``data[start:end]``."""
    out = []
    for kind, at, header, size in _boxes(data, start, end):
        if kind in _CONTAINERS:
            out += _stco_boxes(data, at + header, at + size)
        elif kind == b"stco":
            _, entries = _offsets(data, at, header, False)
            out.append((at, len(entries), max(entries, default=0)))
    return out


def moved_moov(moov: bytes) -> bytes:
    """``moov`` (one whole box) as it reads placed before the data it indexes: every chunk
    offset grown by its own new length, and a stco table whose offsets no longer fit 32
    bits turned into co64 (which grows it, and so every offset, a little more)."""
    stco = _stco_boxes(moov, 0, len(moov))
    widen: dict[int, int] = {}  # stco offset -> its entry count, each growing by 4 bytes
    while True:
        shift = len(moov) + 4 * sum(widen.values())
        more = {at: n for at, n, largest in stco if largest + shift > _MAX32 and at not in widen}
        if not more:
            break
        widen |= more
    out = _rebuild(moov, 0, len(moov), shift, set(widen))
    assert len(out) == shift, "the moved moov must be as long as its offsets say"
    return out


def top_level(path: Path) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the file's top-level boxes, from their headers alone."""
    out = []
    size_of_file = path.stat().st_size
    with path.open("rb") as fh:
        at = 0
        while at < size_of_file:
            fh.seek(at)
            head = fh.read(16)
            if len(head) < 8:
                raise NotMovable("a box header runs past the end of the file")
            size, kind = struct.unpack_from(">I4s", head)
            if size == 1:
                if len(head) < 16:
                    raise NotMovable("a box header runs past the end of the file")
                (size,) = struct.unpack_from(">Q", head, 8)
            elif size == 0:
                size = size_of_file - at
            if size < 8 or at + size > size_of_file:
                raise NotMovable(f"top-level box {kind!r} does not fit the file")
            out.append((kind, at, size))
            at += size
    return out


def moov_first(path: Path, size: int) -> Finish:
    """What to store for the finished MP4 at ``path``: its ``ftyp`` and moved ``moov``,
    then the file after the ``ftyp`` up to the ``moov``."""
    boxes = top_level(path)
    kinds = [kind for kind, _, _ in boxes]
    if not boxes or kinds[0] != b"ftyp" or kinds[-1] != b"moov" or b"mdat" not in kinds:
        raise NotMovable(f"not ftyp ... mdat ... moov: {[k.decode('latin-1') for k in kinds]}")
    if boxes[-1][1] + boxes[-1][2] != size:
        raise NotMovable("the moov does not end the file")
    _, ftyp_at, ftyp_size = boxes[0]
    _, moov_at, moov_size = boxes[-1]
    with path.open("rb") as fh:
        ftyp = fh.read(ftyp_size)
        fh.seek(moov_at)
        moov = fh.read(moov_size)
    return Finish(prefix=ftyp + moved_moov(moov), skip=ftyp_at + ftyp_size, end=moov_at)


def moov_first_or_as_written(path: Path, size: int) -> Finish:
    """:func:`moov_first`, or the file as written (a playable MP4 with its index at the
    end) when it is not laid out as expected: the merge is not failed for the layout."""
    try:
        return moov_first(path, size)
    except NotMovable as exc:
        log.warning("%s: stored with its index at the end: %s", path.name, exc)
        return Finish.whole(size)
