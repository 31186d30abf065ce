"""Probing media with ffprobe's JSON output."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from services.common.ffmpeg import runner
from services.common.ffmpeg.argv import ffprobe_argv
from services.common.ffmpeg.runner import NotMediaError

__all__ = ["ProbeResult", "parse_probe", "probe_media"]


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


async def probe_media(
    source: str | os.PathLike[str], ffprobe_bin: str, timeout_s: float
) -> ProbeResult:
    """Probe a local file or an http(s) URL; :class:`NotMediaError` unless it has audio."""
    argv = ffprobe_argv(source, ffprobe_bin)
    name = argv[-1]
    done = await runner.run(argv, timeout_s, capture_stdout=True)
    if done.returncode != 0:
        raise NotMediaError(f"ffprobe could not read {name}:\n{done.stderr_tail()}")
    try:
        data = json.loads(done.stdout)
    except ValueError as exc:
        raise NotMediaError(f"ffprobe output for {name} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise NotMediaError(f"ffprobe output for {name} is not a JSON object")
    return parse_probe(data, name)
