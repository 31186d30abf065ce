"""Scanning an MP3's packets for its seek index.

ffprobe lists every audio packet's time and byte offset; registration keeps the first
packet at or after each whole second as the episode's
:class:`~services.common.episodes.SeekIndex`. On that fixed grid the entry for any time
is found by arithmetic, which the binary index (:mod:`services.common.seek_index`) relies
on to be read by range. The scan runs through the shared process
runner, so a missing ffprobe or a timeout fails exactly as :meth:`FFmpeg.probe` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from services.common.ffmpeg import runner
from services.common.ffmpeg.argv import media_path
from services.common.ffmpeg.runner import NotMediaError

__all__ = ["PacketIndex", "PacketScan", "packet_index", "packet_index_argv"]


@dataclass(frozen=True, slots=True)
class PacketIndex:
    times_ms: list[float]  # exact, to the µs
    offsets: list[int]
    end_ms: float  # end of the last packet: exact even for VBR without a TOC
    # Gapless info (LAME tag): samples a decoder drops at the start and at the end.
    skip_samples: int = 0
    discard_samples: int = 0


def packet_index_argv(path: str | os.PathLike[str], ffprobe_bin: str = "ffprobe") -> list[str]:
    return [
        ffprobe_bin, "-v", "error", "-select_streams", "a:0",
        "-show_entries", "packet=pts_time,duration_time,pos:packet_side_data",
        "-of", "csv=p=0", media_path(path),
    ]  # fmt: skip


@dataclass(slots=True)
class PacketScan:
    """Folds ffprobe's CSV packet lines (``pts_time,duration_time,pos[,side data]``)
    into a :class:`PacketIndex`, keeping the first packet at or after each multiple of
    ``step_ms`` (every packet with ``step_ms=0``)."""

    step_ms: int = 1000
    times_ms: list[float] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    end_ms: float = 0.0
    skip: int = 0
    discard: int = 0
    _next_at: float = 0.0

    def feed(self, line: str) -> None:
        parts = line.strip().split(",")
        if len(parts) < 3 or "N/A" in (parts[0], parts[2]):
            return
        t = float(parts[0]) * 1000
        d = 0.0 if parts[1] == "N/A" else float(parts[1]) * 1000
        self.end_ms = max(self.end_ms, t + d)
        if len(parts) >= 6 and parts[3] == "Skip Samples":
            if not self.times_ms:  # only the first packet's skip is the encoder delay
                self.skip = int(parts[4])
            self.discard = int(parts[5])
        if t >= self._next_at:
            self.times_ms.append(round(t, 3))
            self.offsets.append(int(parts[2]))
            self._next_at = (t // self.step_ms + 1) * self.step_ms if self.step_ms else t

    def index(self) -> PacketIndex:
        return PacketIndex(self.times_ms, self.offsets, self.end_ms, self.skip, self.discard)


async def packet_index(
    path: str | os.PathLike[str], ffprobe_bin: str, timeout_s: float, step_ms: int = 1000
) -> PacketIndex:
    """Read every audio packet's time and byte offset, keeping the first at or after each
    multiple of ``step_ms`` (every one with ``step_ms=0``).

    Streams ffprobe's output line by line: a 3-hour MP3 has ~400k frames, more than
    is worth holding in memory at once.
    """
    scan = PacketScan(step_ms)
    async with runner.stream_lines(packet_index_argv(path, ffprobe_bin), timeout_s) as lines:
        async for line in lines:
            scan.feed(line)
    done = lines.result
    assert done is not None  # set when the block exits normally
    if done.returncode != 0 or not scan.times_ms:
        raise NotMediaError(f"ffprobe found no audio packets:\n{done.stderr_tail(10)}")
    return scan.index()
