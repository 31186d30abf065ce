"""Fixtures for the ffmpeg package's tests against real binaries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from services.common.ffmpeg import FFmpeg

MakeSine = Callable[[FFmpeg, Path, float], Awaitable[None]]


async def _make_sine_mp3(port: FFmpeg, path: Path, seconds: float = 2.0) -> None:
    stream = FFmpeg.input(f"sine=frequency=440:duration={seconds}", f="lavfi").output(
        str(path), acodec="libmp3lame", ar=44100, ac=1, audio_bitrate="64k"
    )
    await port.run(stream, timeout_s=30)


@pytest.fixture
def make_sine_mp3() -> MakeSine:
    """Write a 440 Hz mono 64 kb/s MP3 of the given length with ffmpeg."""
    return _make_sine_mp3
