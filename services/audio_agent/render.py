"""The audio stage's ffmpeg recipes: a provider's output made into a segment of exactly
the scene's length, and silence that stands in for a failed scene."""

from __future__ import annotations

from pathlib import Path

from services.common.ports import FFmpegPort

ENCODE = {
    "mp3": {"acodec": "libmp3lame", "audio_bitrate": "192k", "format": "mp3"},
    "wav": {"acodec": "pcm_s16le", "format": "wav"},
}
# No encoder tag or timestamps in the file: the same audio gives the same bytes.
BITEXACT = {"fflags": "+bitexact", "flags:a": "+bitexact", "map_metadata": "-1"}


async def fit(
    ffmpeg: FFmpegPort, src: Path, dest: Path, duration_s: float, sample_rate: int, fmt: str
) -> None:
    """``src`` resampled and encoded, padded with silence or cut to ``duration_s``."""
    stream = ffmpeg.input(src).audio.filter("apad").filter("atrim", duration=f"{duration_s:.6f}")
    await ffmpeg.run(stream.output(str(dest), ar=sample_rate, ac=2, **ENCODE[fmt], **BITEXACT))


async def silence(
    ffmpeg: FFmpegPort, dest: Path, duration_s: float, sample_rate: int, fmt: str
) -> None:
    src = ffmpeg.input(f"anullsrc=r={sample_rate}:cl=stereo", f="lavfi")
    await ffmpeg.run(
        src.output(str(dest), t=f"{duration_s:.6f}", ar=sample_rate, **ENCODE[fmt], **BITEXACT)
    )
