"""MediaInfo values for the merger's unit tests, as ffprobe would describe small files."""

from __future__ import annotations

import dataclasses
from typing import Any

from services.merger.media import AudioStream, MediaInfo, VideoStream


def video(
    ms: int = 2000, *, audio: bool = True, width: int = 320, height: int = 240,
    fps: str = "25/1", **changes: Any,
) -> MediaInfo:  # fmt: skip
    v = VideoStream(codec="h264", profile="High", level=13, width=width, height=height,
                    pix_fmt="yuv420p", frame_rate=fps, time_base="1/12800", sar="1:1",
                    extradata="CRC32:0001", duration_ms=ms)  # fmt: skip
    v = dataclasses.replace(v, **changes)
    a = AudioStream(codec="aac", profile="LC", sample_rate=48000, channels=2,
                    channel_layout="stereo", extradata="CRC32:0002", duration_ms=ms)  # fmt: skip
    types = ("video", "audio") if audio else ("video",)
    return MediaInfo("mov,mp4,m4a,3gp,3g2,mj2", ms, v, a if audio else None, types)


def sound(ms: int = 10_000, *, codec: str = "pcm_s16le", channels: int = 1) -> MediaInfo:
    a = AudioStream(codec=codec, profile=None, sample_rate=44100, channels=channels,
                    channel_layout="mono" if channels == 1 else "stereo", extradata=None,
                    duration_ms=ms)  # fmt: skip
    return MediaInfo("wav", ms, None, a, ("audio",))
