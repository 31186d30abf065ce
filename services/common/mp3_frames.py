"""MPEG audio layer III frames, read in process: headers, frame boundaries and the
Xing/LAME frame that tells players a file's length and gapless padding.

One parser for every place that needs frame boundaries: the clipper cuts whole frames
with it, and tests check it against ffprobe's packet positions. Only layer III is read
(the ``mp3`` codec); anything else at a frame position is junk, skipped the way a decoder
resyncs. Free-format streams (bitrate index 0) have no length in their headers: they are
refused with :class:`FreeFormat` rather than guessed at.

The Xing/LAME frame written here is the one ffmpeg's MP3 muxer writes for a stream copy:
frame count, byte count, a 100-entry TOC, and a LAME tag with zero encoder delay and
padding, so a decoder drops only its own 529-sample delay. Two differences: the tag's
CRC covers the frame up to the CRC itself, as LAME defines it (ffmpeg 5.1 always sums
190 bytes, past the end of a mono frame), and the music CRC is left at zero: a CRC-16
over the whole clip costs more in Python than the rest of the cut, and decoders check
the tag's own CRC, not this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "MP3_DECODER_DELAY",
    "FrameError",
    "FrameHeader",
    "FrameReader",
    "FreeFormat",
    "InfoTag",
    "NotFrames",
    "build_info_frame",
    "crc16",
    "decode_header",
    "info_frame_header",
    "iter_frames",
    "parse_info_tag",
    "skip_id3v2",
]

# Samples every MP3 decoder outputs before the first real one; the LAME tag's delay
# field excludes it, and decoders add it back.
MP3_DECODER_DELAY = 529

_V1, _V2, _V25 = 3, 2, 0  # the header's version bits: MPEG-1, MPEG-2, MPEG-2.5
_BITRATES_KBPS = {
    True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 and 2.5
}
_SAMPLE_RATES = {_V1: (44100, 48000, 32000), _V2: (22050, 24000, 16000), _V25: (11025, 12000, 8000)}
_MONO = 3  # channel mode bits
_XING_FLAGS = 0x0F  # frames, bytes, TOC, quality
XING_SIZE = 156  # "Xing" + flags + frames + bytes + TOC + quality (120) + LAME tag (36)
_TAG_CRC_AT = XING_SIZE - 2  # from the "Xing" tag: the LAME tag's own CRC comes last


class FrameError(ValueError):
    """Bytes that cannot be cut as MP3 frames."""


class NotFrames(FrameError):
    """No layer III frame where one was expected."""


class FreeFormat(FrameError):
    """A free-format frame: its length is not in its header."""


@dataclass(frozen=True, slots=True)
class FrameHeader:
    version_bits: int
    bitrate_index: int
    sample_rate_index: int
    sample_rate: int
    bitrate: int  # bit/s; 0 for free format
    padding: bool
    mono: bool
    crc: bool
    size: int  # bytes, header included; 0 for free format
    samples: int  # per frame: 1152 for MPEG-1, 576 for MPEG-2 and 2.5

    @property
    def mpeg1(self) -> bool:
        return self.version_bits == _V1

    @property
    def side_info_size(self) -> int:
        if self.mpeg1:
            return 17 if self.mono else 32
        return 9 if self.mono else 17

    def same_stream(self, other: FrameHeader) -> bool:
        """Whether ``other`` can follow this frame in one stream (channel mode may change)."""
        return self.version_bits == other.version_bits and self.sample_rate == other.sample_rate


_HEADERS: dict[int, FrameHeader | None] = {}


def decode_header(word: int) -> FrameHeader | None:
    """The layer III frame header in the 32-bit big-endian ``word``, or None."""
    try:
        return _HEADERS[word]
    except KeyError:
        pass
    header = _decode(word)
    if len(_HEADERS) > 4096:  # junk makes up words at random: keep the memo small
        _HEADERS.clear()
    _HEADERS[word] = header
    return header


def _decode(word: int) -> FrameHeader | None:
    if word >> 21 != 0x7FF:
        return None
    version = (word >> 19) & 3
    layer = (word >> 17) & 3
    bitrate_index = (word >> 12) & 15
    rate_index = (word >> 10) & 3
    if version == 1 or layer != 1 or bitrate_index == 15 or rate_index == 3 or word & 3 == 2:
        return None
    mpeg1 = version == _V1
    rate = _SAMPLE_RATES[version][rate_index]
    bitrate = _BITRATES_KBPS[mpeg1][bitrate_index] * 1000
    padding = bool((word >> 9) & 1)
    size = ((144 if mpeg1 else 72) * bitrate // rate + padding) if bitrate else 0
    return FrameHeader(
        version_bits=version,
        bitrate_index=bitrate_index,
        sample_rate_index=rate_index,
        sample_rate=rate,
        bitrate=bitrate,
        padding=padding,
        mono=(word >> 6) & 3 == _MONO,
        crc=not word & (1 << 16),
        size=size,
        samples=1152 if mpeg1 else 576,
    )


class FrameReader:
    """Splits a byte stream, fed in chunks of any size, into whole layer III frames.

    ``strict=True`` (a seek index points at the first byte): the stream must start with
    a frame, else :class:`NotFrames`. Otherwise leading bytes up to the first frame that
    a second one confirms are skipped. Junk between frames is skipped by resyncing on a
    header that the next frame's header confirms, as a decoder does; a frame that does
    not fit the first one (another MPEG version or sample rate) counts as junk.

    Frames are handed out as ``(offset in the stream, view, header)``. Holds at most one
    partial frame (or a few junk bytes) between chunks.
    """

    def __init__(self, *, strict: bool = True) -> None:
        self._strict = strict
        self._rest = b""
        self._rest_at = 0  # stream offset of the first held-back byte
        self.first: FrameHeader | None = None
        self.frames = 0
        self.junk_bytes = 0
        # Header words already taken as frames of this stream: the next ones like them
        # need no checks (a stream uses a handful of distinct words).
        self._known: dict[int, FrameHeader] = {}

    def feed(
        self, chunk: bytes, *, final: bool = False
    ) -> list[tuple[int, memoryview, FrameHeader]]:
        """The frames completed by ``chunk``; ``final`` marks the end of the stream."""
        data = self._rest + chunk if self._rest else bytes(chunk)
        base, view, end, pos = self._rest_at, memoryview(data), len(data), 0
        first = self.first
        out: list[tuple[int, memoryview, FrameHeader]] = []
        known, append = self._known, out.append
        try:
            while end - pos >= 4:
                word = int.from_bytes(data[pos : pos + 4], "big")
                h = known.get(word)
                if h is not None:
                    size = h.size
                    if end - pos < size:
                        break
                    append((base + pos, view[pos : pos + size], h))
                    pos += size
                    continue
                h = decode_header(word)
                if first is None and not self._strict and (h is None or h.size):
                    found, confirmed = self._resync(data, pos, end, final)
                    self.junk_bytes += found - pos
                    pos = found
                    if not confirmed:
                        break
                    h = decode_header(int.from_bytes(data[pos : pos + 4], "big"))
                elif h is None or (first is not None and not (h.size and first.same_stream(h))):
                    if first is None:
                        raise NotFrames("the bytes do not start with an MP3 (layer III) frame")
                    found, confirmed = self._resync(data, pos + 1, end, final)
                    self.junk_bytes += found - pos
                    pos = found
                    if not confirmed:
                        break
                    continue
                assert h is not None
                if h.size == 0:
                    # Only a stream can be free format; one free header mid-stream is junk.
                    raise FreeFormat(f"free-format MP3 frame at byte {base + pos}")
                if end - pos < h.size:
                    break
                if first is None:
                    first = self.first = h
                if len(known) < 256:
                    known[int.from_bytes(data[pos : pos + 4], "big")] = h
                append((base + pos, view[pos : pos + h.size], h))
                pos += h.size
            if final:
                # A truncated last frame, a trailing tag, or junk no frame followed.
                self.junk_bytes += end - pos
                pos = end
        finally:
            self._rest = data[pos:]
            self._rest_at = base + pos
            self.frames += len(out)
        return out

    def _resync(self, data: bytes, start: int, end: int, final: bool) -> tuple[int, bool]:
        """(position, True) of the next frame that the following header confirms, or
        (where to go on from once more bytes come, False): bytes before it are junk."""
        first = self.first
        pos = start
        while True:
            pos = data.find(b"\xff", pos, max(end - 3, pos))
            if pos < 0:
                return (end, False) if final else (max(start, end - 3), False)
            h = decode_header(int.from_bytes(data[pos : pos + 4], "big"))
            if h is not None and h.size and (first is None or first.same_stream(h)):
                nxt = pos + h.size
                if nxt + 4 <= end:
                    h2 = decode_header(int.from_bytes(data[nxt : nxt + 4], "big"))
                    if h2 is not None and h2.size and h.same_stream(h2):
                        return pos, True
                elif not final:
                    return pos, False  # cannot confirm yet: go on from here with more bytes
                elif nxt == end:
                    return pos, True
            pos += 1


def skip_id3v2(data: bytes) -> int:
    """Length of an ID3v2 tag at the start of ``data`` (0 if none)."""
    if len(data) < 10 or data[:3] != b"ID3":
        return 0
    size = 0
    for b in data[6:10]:
        size = (size << 7) | (b & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def iter_frames(data: bytes) -> Iterator[tuple[int, FrameHeader]]:
    """(offset, header) of every frame in a whole file held in memory, after any ID3v2
    tag; a leading Xing/Info frame included, as it is a frame."""
    start = skip_id3v2(data)
    reader = FrameReader(strict=False)
    for offset, _, h in reader.feed(data[start:], final=True):
        yield start + offset, h


# -- the Xing/LAME frame -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InfoTag:
    vbr: bool  # "Xing" (vs "Info" for constant bitrate)
    frames: int | None
    size: int | None  # the "bytes" field: this frame and every one after it
    encoder: bytes  # the LAME tag's 9-byte version string, b"" without one
    delay: int  # encoder delay, samples (decoders drop this plus their own 529)
    padding: int  # samples of padding at the end
    tag_crc_ok: bool | None  # None without a LAME tag


def parse_info_tag(frame: bytes | memoryview, h: FrameHeader) -> InfoTag | None:
    """The Xing/Info tag (and LAME extension) in ``frame``, or None for an audio frame."""
    at = 4 + (2 if h.crc else 0) + h.side_info_size
    tag = bytes(frame[at : at + XING_SIZE])
    if tag[:4] not in (b"Xing", b"Info"):
        return None
    flags = int.from_bytes(tag[4:8], "big")
    p = 8
    frames = size = None
    if flags & 1:
        frames = int.from_bytes(tag[p : p + 4], "big")
        p += 4
    if flags & 2:
        size = int.from_bytes(tag[p : p + 4], "big")
        p += 4
    if flags & 4:
        p += 100
    if flags & 8:
        p += 4
    lame = tag[p : p + 36]
    if len(lame) < 36 or not lame[:4].isalpha():
        return InfoTag(tag[:4] == b"Xing", frames, size, b"", 0, 0, None)
    delays = int.from_bytes(lame[21:24], "big")
    crc_at = at + p + 34
    crc_ok = crc16(bytes(frame[:crc_at])) == int.from_bytes(frame[crc_at : crc_at + 2], "big")
    return InfoTag(
        tag[:4] == b"Xing", frames, size, lame[:9].rstrip(b"\0"), delays >> 12, delays & 0xFFF,
        crc_ok,
    )  # fmt: skip


def info_frame_header(first: FrameHeader) -> FrameHeader:
    """The header of the Xing/LAME frame put before frames like ``first``: no CRC, no
    padding, the first frame's bitrate or the lowest one above it that holds the tag."""
    mode = _MONO if first.mono else 0
    base = (0x7FF << 21) | (first.version_bits << 19) | (1 << 17) | (1 << 16)
    base |= (first.sample_rate_index << 10) | (mode << 6)
    need = 4 + first.side_info_size + XING_SIZE
    for index in range(max(first.bitrate_index, 1), 15):
        h = decode_header(base | (index << 12))
        assert h is not None
        if h.size >= need:
            return h
    raise FrameError("no bitrate makes a frame large enough for the Xing tag")


def build_info_frame(
    first: FrameHeader, *, frames: int, total_bytes: int, toc: bytes, vbr: bool,
    delay: int = 0, padding: int = 0, encoder: bytes = b"Lavf",
) -> bytes:  # fmt: skip
    """The Xing ("Info" for constant bitrate) frame with its LAME tag.

    ``total_bytes`` counts this frame and every audio frame after it; ``toc`` is the
    100-byte table of contents.
    """
    h = info_frame_header(first)
    word = (0x7FF << 21) | (h.version_bits << 19) | (1 << 17) | (1 << 16)
    word |= (h.bitrate_index << 12) | (h.sample_rate_index << 10) | ((_MONO if h.mono else 0) << 6)
    if len(toc) != 100:
        raise ValueError("the TOC has 100 entries")
    out = bytearray(h.size)
    out[0:4] = word.to_bytes(4, "big")
    at = 4 + h.side_info_size
    tag = bytearray()
    tag += b"Xing" if vbr else b"Info"
    tag += _XING_FLAGS.to_bytes(4, "big")
    tag += frames.to_bytes(4, "big") + total_bytes.to_bytes(4, "big")
    tag += toc
    tag += bytes(4)  # quality
    tag += encoder[:9].ljust(9, b"\0")
    tag += bytes(2)  # tag revision / VBR method, lowpass
    tag += bytes(8)  # ReplayGain peak and gains
    tag += bytes(2)  # encoding flags, ABR bitrate
    tag += ((delay << 12) | padding).to_bytes(3, "big")
    tag += bytes(4)  # misc, MP3 gain, preset
    tag += total_bytes.to_bytes(4, "big")  # music length, this frame included
    tag += bytes(2)  # music CRC: see the module docstring
    out[at : at + len(tag)] = tag
    crc_at = at + _TAG_CRC_AT
    out[crc_at : crc_at + 2] = crc16(bytes(out[:crc_at])).to_bytes(2, "big")
    return bytes(out)


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC, the LAME tag's checksum (slow in Python: use it on the tag only)."""
    table = _CRC_TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc
