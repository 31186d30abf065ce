"""The moved index on hand-made boxes: every chunk offset grows by the index's new length,
and a table whose offsets outgrow 32 bits becomes a 64-bit one (ffmpeg's own outputs are
compared in the integration tests; no file here is 4 GB)."""

from __future__ import annotations

import struct

import pytest

from services.merger.faststart import NotMovable, moved_moov


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def offsets(kind: bytes, entries: list[int]) -> bytes:
    fmt = "Q" if kind == b"co64" else "I"
    return box(
        kind, struct.pack(">II", 0, len(entries)) + struct.pack(f">{len(entries)}{fmt}", *entries)
    )


def moov(*tables: bytes) -> bytes:
    tracks = [box(b"trak", box(b"mdia", box(b"minf", box(b"stbl", t)))) for t in tables]
    return box(b"moov", box(b"mvhd", bytes(100)) + b"".join(tracks) + box(b"udta", b"note"))


def test_offsets_grow_by_the_index_length_and_the_rest_is_untouched() -> None:
    before = moov(offsets(b"stco", [48, 9000]), offsets(b"co64", [70, 2**33]))
    after = moved_moov(before)
    n = len(before)
    assert after == moov(
        offsets(b"stco", [48 + n, 9000 + n]), offsets(b"co64", [70 + n, 2**33 + n])
    )


def test_a_table_pushed_past_32_bits_becomes_64_bit_and_only_that_one() -> None:
    near = 0xFFFFFFFF - 100
    before = moov(offsets(b"stco", [10, 20]), offsets(b"stco", [500, near]))
    after = moved_moov(before)
    n = len(before) + 2 * 4  # the second table's two entries grow by 4 bytes each
    assert len(after) == n
    assert after == moov(offsets(b"stco", [10 + n, 20 + n]), offsets(b"co64", [500 + n, near + n]))


def test_a_box_that_overruns_its_parent_is_refused() -> None:
    # A track that says it is 999 bytes long inside an index of 16.
    broken = box(b"moov", struct.pack(">I4s", 999, b"trak"))
    with pytest.raises(NotMovable):
        moved_moov(broken)
