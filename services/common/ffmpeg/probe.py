"""Probing media with ffprobe's JSON output."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from services.common.ffmpeg import runner
from services.common.ffmpeg.argv import ffprobe_argv
from services.common.ffmpeg.runner import NotMediaError

__all__ = [
    "MediaProbe",
    "ProbeResult",
    "parse_media_probe",
    "parse_probe",
    "probe_any_media",
    "probe_media",
]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    format_name: str
    duration_ms: int | None
    bit_rate: int | None
    size_bytes: int | None
    codec: str  # codec of the first audio stream
    sample_rate: int | None
    channels: int | None
    has_video: bool  # a real video stream; cover art (attached_pic) does not count


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None


def _rate(value: Any) -> float | None:
    """ffprobe's ``num/den`` frame rate as a number; None for ``0/0`` or garbage."""
    try:
        num, _, den = str(value).partition("/")
        rate = float(num) / float(den or 1)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return round(rate, 3) if rate > 0 and rate == rate else None


def _ms(seconds: Any) -> int | None:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    if value != value or value < 0:  # NaN or negative
        return None
    return round(value * 1000)


def parse_probe(data: dict[str, Any], source: str = "input") -> ProbeResult:
    """Build a :class:`ProbeResult` from ffprobe's JSON output."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        raise NotMediaError(f"{source}: no audio stream")
    has_video = any(
        s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        for s in streams
    )
    duration_ms = _ms(fmt.get("duration"))
    if duration_ms is None:
        duration_ms = _ms(audio.get("duration"))
    return ProbeResult(
        format_name=str(fmt.get("format_name") or ""),
        duration_ms=duration_ms,
        bit_rate=_int(fmt.get("bit_rate")),
        size_bytes=_int(fmt.get("size")),
        codec=str(audio.get("codec_name") or ""),
        sample_rate=_int(audio.get("sample_rate")),
        channels=_int(audio.get("channels")),
        has_video=has_video,
    )


@dataclass(frozen=True, slots=True)
class MediaProbe:
    """What ffprobe tells about a file that may be video, audio or both (``parse_probe``
    is the audio-only reading the episodes use)."""

    format_name: str
    duration_ms: int | None
    bit_rate: int | None
    size_bytes: int | None
    has_video: bool  # a real video stream; cover art (attached_pic) does not count
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    frame_rate: float | None
    sample_rate: int | None
    channels: int | None


def parse_media_probe(data: dict[str, Any], source: str = "input") -> MediaProbe:
    """Build a :class:`MediaProbe` from ffprobe's JSON output: any file with a video or an
    audio stream; :class:`NotMediaError` when it has neither."""
    fmt = data.get("format") or {}
    streams = [s for s in data.get("streams") or [] if isinstance(s, dict)]
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    if audio is None and video is None:
        raise NotMediaError(f"{source}: no audio or video stream")
    duration_ms = _ms(fmt.get("duration"))
    for stream in (video, audio):
        if duration_ms is None and stream is not None:
            duration_ms = _ms(stream.get("duration"))
    return MediaProbe(
        format_name=str(fmt.get("format_name") or ""),
        duration_ms=duration_ms,
        bit_rate=_int(fmt.get("bit_rate")),
        size_bytes=_int(fmt.get("size")),
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=_name(video, "codec_name"),
        audio_codec=_name(audio, "codec_name"),
        width=_int(video.get("width")) if video else None,
        height=_int(video.get("height")) if video else None,
        frame_rate=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
        if video
        else None,
        sample_rate=_int(audio.get("sample_rate")) if audio else None,
        channels=_int(audio.get("channels")) if audio else None,
    )


def _name(stream: dict[str, Any] | None, field: str) -> str | None:
    value = stream.get(field) if stream else None
    return str(value) if value else None


async def _probe_json(argv: list[str], timeout_s: float) -> dict[str, Any]:
    name = argv[-1]
    done = await runner.run(argv, timeout_s, capture_stdout=True)
    if done.returncode != 0:
        # Storage that failed mid-read says nothing about the media: retried, not refused.
        if runner.network_failure(done.stderr):
            raise runner.exited(argv, done)
        raise NotMediaError(f"ffprobe could not read {name}:\n{done.stderr_tail()}")
    try:
        data = json.loads(done.stdout)
    except ValueError as exc:
        raise NotMediaError(f"ffprobe output for {name} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise NotMediaError(f"ffprobe output for {name} is not a JSON object")
    return data


async def probe_any_media(
    source: str | os.PathLike[str], ffprobe_bin: str, timeout_s: float
) -> MediaProbe:
    """Probe a local file or an http(s) URL that may hold video, audio or both;
    :class:`NotMediaError` unless it has one of them. A local file may only open local
    files (``ffprobe_argv``'s whitelists): a playlist cannot make ffprobe fetch a URL."""
    argv = ffprobe_argv(source, ffprobe_bin)
    return parse_media_probe(await _probe_json(argv, timeout_s), argv[-1])


async def probe_media(
    source: str | os.PathLike[str], ffprobe_bin: str, timeout_s: float
) -> ProbeResult:
    """Probe a local file or an http(s) URL; :class:`NotMediaError` unless it has audio."""
    argv = ffprobe_argv(source, ffprobe_bin)
    return parse_probe(await _probe_json(argv, timeout_s), argv[-1])
