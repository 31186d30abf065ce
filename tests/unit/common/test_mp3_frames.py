"""MP3 frame headers, the streaming frame reader and the Xing/LAME frame, on frames built
here byte by byte (their payload is irrelevant to where frames start and end)."""

from __future__ import annotations

import pytest

from services.common.mp3_frames import (
    FrameHeader,
    FrameReader,
    FreeFormat,
    NotFrames,
    build_info_frame,
    crc16,
    decode_header,
    info_frame_header,
    iter_frames,
    parse_info_tag,
    skip_id3v2,
)

# MPEG-1 layer III, no CRC, 44.1 kHz, mono: bitrate index and padding bit go in.
MPEG1_MONO = 0xFFFB00C0


def header(bitrate_index: int, *, padding: bool = False, base: int = MPEG1_MONO) -> int:
    return base | (bitrate_index << 12) | (int(padding) << 9)


def frame(word: int, fill: int = 0x55) -> bytes:
    h = decode_header(word)
    assert h is not None
    return word.to_bytes(4, "big") + bytes([fill]) * (h.size - 4)


def test_headers_give_the_frame_length_of_every_mpeg_version() -> None:
    cbr = decode_header(header(9))  # 128 kbit/s
    assert cbr is not None and (cbr.size, cbr.samples, cbr.sample_rate) == (417, 1152, 44100)
    padded = decode_header(header(9, padding=True))
    assert padded is not None and padded.size == 418
    assert cbr.mono and not cbr.crc and cbr.side_info_size == 17
    # MPEG-2, 22.05 kHz, 64 kbit/s, stereo, CRC-protected.
    v2 = decode_header(0xFFF28000 | (8 << 12))
    assert v2 is not None
    assert (v2.size, v2.samples, v2.sample_rate, v2.mono, v2.crc) == (208, 576, 22050, False, True)
    assert v2.side_info_size == 17
    # MPEG-2.5, 8 kHz, 8 kbit/s, mono.
    v25 = decode_header(0xFFE308C0 | (1 << 12))
    assert v25 is not None and (v25.size, v25.sample_rate, v25.side_info_size) == (72, 8000, 9)


@pytest.mark.parametrize(
    ("word", "why"),
    [
        (0x7FFB90C0, "no sync"),
        (0xFFEB90C0, "reserved MPEG version"),
        (0xFFFD90C0, "layer II"),
        (0xFFFF90C0, "layer I"),
        (0xFFFBF0C0, "bad bitrate index"),
        (0xFFFB9CC0, "reserved sample rate"),
        (0xFFFB90C2, "reserved emphasis"),
    ],
)
def test_what_is_not_a_layer_iii_header(word: int, why: str) -> None:
    assert decode_header(word) is None, why


def test_free_format_has_no_length() -> None:
    h = decode_header(header(0))
    assert h is not None and h.bitrate == 0 and h.size == 0
    free = header(0).to_bytes(4, "big") + bytes(400)
    with pytest.raises(FreeFormat):
        FrameReader().feed(free + free)
    with pytest.raises(FreeFormat):
        list(iter_frames(b"ID3\x04\x00\x00\x00\x00\x00\x00" + free + free))


def stream(*indexes: int) -> bytes:
    return b"".join(frame(header(i, padding=n % 3 == 0), fill=n) for n, i in enumerate(indexes))


def test_reader_gives_the_same_frames_whatever_the_chunking() -> None:
    data = stream(9, 5, 14, 1, 9, 11, 3)
    whole = [(o, bytes(f)) for o, f, _ in FrameReader().feed(data, final=True)]
    assert [o for o, _ in whole] == [o for o, _ in iter_frames(data)]
    assert b"".join(f for _, f in whole) == data
    for size in (1, 3, 4, 5, 100, 417):
        reader = FrameReader()
        got = []
        for i in range(0, len(data), size):
            got += [(o, bytes(f)) for o, f, _ in reader.feed(data[i : i + size])]
        got += [(o, bytes(f)) for o, f, _ in reader.feed(b"", final=True)]
        assert got == whole, size
        assert reader.junk_bytes == 0


def test_junk_between_frames_is_skipped_like_a_decoder_does() -> None:
    a, b = stream(9, 5), stream(14, 1, 9)
    junk = b"\xff\xfb\x00" + b"garbage \xff" * 20  # a false sync no second header confirms
    data = a + junk + b
    reader = FrameReader()
    frames = []
    for i in range(0, len(data), 64):
        frames += [(o, bytes(f)) for o, f, _ in reader.feed(data[i : i + 64])]
    frames += [(o, bytes(f)) for o, f, _ in reader.feed(b"", final=True)]
    assert b"".join(f for _, f in frames) == a + b
    assert frames[2][0] == len(a) + len(junk)
    assert reader.junk_bytes == len(junk)


def test_a_truncated_last_frame_and_a_trailing_tag_are_not_frames() -> None:
    data = stream(9, 9, 9)
    tag = b"TAG" + bytes(125)  # ID3v1
    reader = FrameReader()
    frames = reader.feed(data + tag, final=True)
    assert len(frames) == 3 and reader.junk_bytes == 128
    reader = FrameReader()
    assert len(reader.feed(data[:-10], final=True)) == 2


def test_another_sample_rate_mid_stream_is_junk() -> None:
    other = frame(0xFFFB04C0 | (9 << 12))  # 48 kHz
    data = stream(9, 9) + other + stream(9, 9)
    frames = FrameReader().feed(data, final=True)
    assert len(frames) == 4 and all(h.sample_rate == 44100 for _, _, h in frames)


def test_strict_start_refuses_what_is_not_a_frame() -> None:
    with pytest.raises(NotFrames):
        FrameReader().feed(b"this is not audio\n" * 30)
    with pytest.raises(NotFrames):
        FrameReader().feed(b"\x00" + stream(9, 9))


def test_a_whole_file_starts_after_its_id3v2_tag_and_any_junk() -> None:
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 1, 0x7F]) + bytes(0xFF)  # size 255 (syncsafe)
    assert skip_id3v2(tag + b"x") == 10 + 255
    data = tag + b"\x00\xff\x00junk" + stream(9, 9, 9)
    offsets = [o for o, _ in iter_frames(data)]
    first = len(tag) + 7
    assert offsets == [first, first + 418, first + 418 + 417]  # the first one padded


@pytest.mark.parametrize(
    "word",
    [
        header(9),  # MPEG-1 mono
        0xFFFB9000,  # MPEG-1 stereo, 128 kbit/s
        0xFFFB1000,  # MPEG-1 stereo, 32 kbit/s: too small for the tag, a larger one is used
        0xFFF380C0,  # MPEG-2 mono, 64 kbit/s
        0xFFE310C0,  # MPEG-2.5 mono, 8 kbit/s
    ],
)
def test_info_frame_round_trip(word: int) -> None:
    first = decode_header(word)
    assert first is not None
    toc = bytes(range(0, 200, 2))
    for vbr in (False, True):
        data = build_info_frame(first, frames=1234, total_bytes=567_890, toc=toc, vbr=vbr)
        h = decode_header(int.from_bytes(data[:4], "big"))
        assert h is not None and len(data) == h.size == info_frame_header(first).size
        assert h.bitrate >= first.bitrate and h.same_stream(first) and h.mono == first.mono
        assert not h.crc and not h.padding
        tag = parse_info_tag(data, h)
        assert tag is not None
        assert (tag.vbr, tag.frames, tag.size) == (vbr, 1234, 567_890)
        assert (tag.encoder, tag.delay, tag.padding, tag.tag_crc_ok) == (b"Lavf", 0, 0, True)
        at = 4 + h.side_info_size
        assert data[at + 16 : at + 116] == toc


def test_an_audio_frame_has_no_info_tag() -> None:
    h = decode_header(header(9))
    assert h is not None
    assert parse_info_tag(frame(header(9)), h) is None


def test_crc16_is_the_lame_tag_checksum() -> None:
    # CRC-16/ARC check value.
    assert crc16(b"123456789") == 0xBB3D
    assert crc16(b"") == 0


def test_frame_headers_tell_streams_apart() -> None:
    a = decode_header(header(9))
    b = decode_header(0xFFFB9000)  # stereo: same stream, other channel mode
    c = decode_header(0xFFFB94C0)  # 48 kHz
    assert isinstance(a, FrameHeader) and isinstance(b, FrameHeader) and isinstance(c, FrameHeader)
    assert a.same_stream(b) and not a.same_stream(c)
