"""What the merger needs to know about an input, read from ffprobe's JSON.

The first video and the first audio stream are the ones merged; the rest only count
towards whether two files can be joined by stream copy (the concat demuxer maps streams
by position).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# ffprobe "reads" these, but they are not audio or video a merge can use.
_NOT_MEDIA_FORMATS = frozenset({"tty", "image2", "lavfi"})
_NOT_MEDIA_CODECS = frozenset({"ansi"})


class Unusable(Exception):
    """Not a file a merge can read: ffprobe failed on it, or it holds no audio or video."""


@dataclass(frozen=True, slots=True)
class VideoStream:
    codec: str
    profile: str | None
    level: int | None
    width: int
    height: int
    pix_fmt: str | None
    frame_rate: str  # as ffprobe says it, e.g. "30000/1001"
    time_base: str
    sar: str | None
    extradata: str | None  # a hash of the codec's setup data (SPS/PPS), when probed with one
    duration_ms: int | None

    @property
    def fps(self) -> Fraction | None:
        return _fraction(self.frame_rate)


@dataclass(frozen=True, slots=True)
class AudioStream:
    codec: str
    profile: str | None
    sample_rate: int
    channels: int
    channel_layout: str | None
    extradata: str | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class MediaInfo:
    format_name: str
    duration_ms: int | None
    video: VideoStream | None
    audio: AudioStream | None
    stream_types: tuple[str, ...]  # codec_type of every stream, in file order

    @property
    def video_ms(self) -> int | None:
        """The picture's length: what a soundtrack is fitted to."""
        if self.video is not None and self.video.duration_ms:
            return self.video.duration_ms
        return self.duration_ms

    @property
    def audio_ms(self) -> int | None:
        if self.audio is not None and self.audio.duration_ms:
            return self.audio.duration_ms
        return self.duration_ms


def _fraction(text: str | None) -> Fraction | None:
    try:
        value = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ms(seconds: Any) -> int | None:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    if value != value or value < 0 or value == float("inf"):
        return None
    return round(value * 1000)


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "", "unknown") else None


def parse_media(data: dict[str, Any]) -> MediaInfo:
    """A :class:`MediaInfo` from ffprobe's ``-show_format -show_streams`` JSON;
    :class:`Unusable` when it has no audio or video stream a merge can use."""
    fmt = data.get("format") or {}
    streams = [s for s in data.get("streams") or [] if isinstance(s, dict)]
    format_name = str(fmt.get("format_name") or "")
    if format_name in _NOT_MEDIA_FORMATS or format_name.endswith("_pipe"):
        raise Unusable(f"a {format_name or 'unknown'} file is not audio or video")
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
            and s.get("codec_name") not in _NOT_MEDIA_CODECS
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and audio is None:
        raise Unusable("no audio or video stream")
    return MediaInfo(
        format_name=format_name,
        duration_ms=_ms(fmt.get("duration")),
        video=_video(video) if video is not None else None,
        audio=_audio(audio) if audio is not None else None,
        stream_types=tuple(str(s.get("codec_type") or "") for s in streams),
    )


def _video(s: dict[str, Any]) -> VideoStream:
    rate = _fraction(s.get("r_frame_rate")) or _fraction(s.get("avg_frame_rate"))
    return VideoStream(
        codec=str(s.get("codec_name") or ""),
        profile=_str(s.get("profile")),
        level=_int(s.get("level")),
        width=_int(s.get("width")) or 0,
        height=_int(s.get("height")) or 0,
        pix_fmt=_str(s.get("pix_fmt")),
        frame_rate=f"{rate.numerator}/{rate.denominator}" if rate else "0/0",
        time_base=str(s.get("time_base") or ""),
        sar=_str(s.get("sample_aspect_ratio")),
        extradata=_str(s.get("extradata_hash")),
        duration_ms=_ms(s.get("duration")),
    )


def _audio(s: dict[str, Any]) -> AudioStream:
    return AudioStream(
        codec=str(s.get("codec_name") or ""),
        profile=_str(s.get("profile")),
        sample_rate=_int(s.get("sample_rate")) or 0,
        channels=_int(s.get("channels")) or 0,
        channel_layout=_str(s.get("channel_layout")),
        extradata=_str(s.get("extradata_hash")),
        duration_ms=_ms(s.get("duration")),
    )
