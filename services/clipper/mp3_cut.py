"""Stream-copy of an MP3 clip in process: whole frames out of the byte window that the
seek index points at, behind a fresh Xing/LAME frame. Bytes in, bytes out; no I/O.

Which frames, and the gapless bookkeeping, are exactly what the ffmpeg stream copy did:

- The source's LAME tag makes players drop ``start_skip_samples`` (encoder delay + the
  decoder's 529) from its start, so what is heard at ``t`` is in packet time
  ``t + skip``.
- The clip's own tag carries zero delay and padding (as ffmpeg's muxer writes for a
  copy), so a player drops only the decoder's 529 samples from the clip's start. The
  first frame taken is therefore the one starting nearest ``529`` samples before the
  wanted start, and ``duration + 529`` samples' worth of frames are taken: what is heard
  starts and ends on the frame edge nearest the asked-for times.

Time is counted in frames from the window's first frame (whose packet time the index
gives), so no rounding accumulates over a long clip. The output is the Xing/LAME frame
and the audio frames, nothing else (ffmpeg's copy also put an ID3 tag naming itself).
"""

from __future__ import annotations

import itertools
import math
from array import array

from services.common.mp3_frames import (
    MP3_DECODER_DELAY,
    FrameHeader,
    FrameReader,
    NotFrames,
    build_info_frame,
    info_frame_header,
    parse_info_tag,
)

__all__ = ["Mp3Clip"]


class Mp3Clip:
    """Feed the window's bytes in order (``feed``, then ``finish``); append what they
    return to the output, then write ``info_frame()`` over its first bytes (the first
    output reserves room for it).

    ``start_ms``/``duration_ms`` are heard times in the episode; ``window_start_ms`` is
    the packet time of the window's first byte (a frame start, from the seek index);
    ``skip_samples`` is the source's gapless start skip (``Episode.start_skip_samples``).
    """

    def __init__(
        self, *, start_ms: float, duration_ms: float, window_start_ms: float, skip_samples: int
    ) -> None:
        self._start_ms = start_ms
        self._duration_ms = duration_ms
        self._window_start_ms = window_start_ms
        self._skip = skip_samples
        self._reader = FrameReader(strict=True)
        self._first_wanted = 0
        self._wanted = 0
        self._index = 0  # audio frames seen so far in the window
        self._out_first: FrameHeader | None = None
        self._vbr = False
        self._ends = array("Q")  # end of each frame written, from the clip's first byte
        self._reserved = 0
        self._last: tuple[memoryview, FrameHeader] | None = None  # the latest frame passed over

    @property
    def frames(self) -> int:
        """Audio frames written so far."""
        return len(self._ends)

    @property
    def satisfied(self) -> bool:
        """Every wanted frame is out: the rest of the window can be left unread."""
        return self._out_first is not None and len(self._ends) >= self._wanted

    def feed(self, chunk: bytes) -> bytes:
        if self.satisfied:
            return b""
        return self._take(self._reader.feed(chunk))

    def finish(self) -> bytes:
        """The end of the window: any last frames. :class:`NotFrames` when the window had
        no audio frame at all."""
        out = b"" if self.satisfied else self._take(self._reader.feed(b"", final=True))
        if self._out_first is None:
            if self._last is None:
                raise NotFrames("the window holds no MP3 audio frame")
            # The window ended before the wanted start: its last frame is the nearest.
            frame, h = self._last
            out += self._emit([frame], [h])
        return out

    def _take(self, frames: list[tuple[int, memoryview, FrameHeader]]) -> bytes:
        if not self._wanted:
            for i, (_, frame, h) in enumerate(frames[:2]):
                if parse_info_tag(frame, h) is None:
                    frames = frames[i:]
                    self._plan(h)
                    break
                # The source's own Xing/LAME frame: not audio, and takes no time.
            else:
                return b""
        k = self._index  # the window's audio frame at frames[0]
        self._index += len(frames)
        skip = max(0, self._first_wanted - k)
        if skip:
            if skip >= len(frames):
                self._last = frames[-1][1:] if frames else self._last
                return b""
            self._last = frames[skip - 1][1:]
        room = self._wanted - len(self._ends)
        wanted = frames[skip : skip + room]
        if not wanted:
            return b""
        return self._emit([f for _, f, _ in wanted], [h for _, _, h in wanted])

    def _plan(self, h: FrameHeader) -> None:
        rate, spf = h.sample_rate, h.samples
        # In samples from the window's first frame: the heard start, moved back by the
        # decoder delay the clip's own tag makes players drop.
        target = (self._start_ms - self._window_start_ms) * rate / 1000
        target += self._skip - MP3_DECODER_DELAY
        # The nearest frame edge; half-way between two, the earlier one, so a clip from
        # 0 keeps the episode's first sounds.
        self._first_wanted = max(0, math.ceil(target / spf - 0.5))
        self._wanted = max(
            1, math.floor((self._duration_ms * rate / 1000 + MP3_DECODER_DELAY) / spf + 0.5)
        )

    def _emit(self, parts: list[memoryview], headers: list[FrameHeader]) -> bytes:
        head = b""
        if self._out_first is None:
            self._out_first = headers[0]
            # Room for the Xing/LAME frame, written over it at the end.
            self._reserved = info_frame_header(headers[0]).size
            head = bytes(self._reserved)
        first_rate = self._out_first.bitrate
        self._vbr = self._vbr or any(h.bitrate != first_rate for h in headers)
        end = self._ends[-1] if self._ends else self._reserved
        self._ends.extend(itertools.accumulate((len(p) for p in parts), initial=end))
        del self._ends[len(self._ends) - len(parts) - 1]  # the initial value
        return head + b"".join(parts)

    def info_frame(self) -> bytes:
        """The Xing/LAME frame for the frames written: write it at the clip's offset 0."""
        first = self._out_first
        if first is None:
            raise NotFrames("no frame was written")
        total = self._ends[-1]
        n = len(self._ends)
        toc = bytearray(100)
        for i in range(1, 100):
            # Byte position of the frame i% of the way through, scaled to 0..255.
            k = i * n // 100
            pos = self._ends[k - 1] if k else self._reserved
            toc[i] = min(255, pos * 256 // total)
        return build_info_frame(first, frames=n, total_bytes=total, toc=bytes(toc), vbr=self._vbr)
