"""Can inputs be joined by stream copy, and if not, what do they become?

The concat demuxer copies packets as they are, so every input must carry the same streams
in the same order with identical parameters, codec setup data (SPS/PPS) included: the
output has one header for all of them. Anything else is normalised once to a common
canvas and encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from services.merger.media import AudioStream, MediaInfo, VideoStream

NORMAL_SAMPLE_RATE = 48000
NORMAL_LAYOUT = "stereo"
MAX_FPS = Fraction(60)
DEFAULT_FPS = Fraction(30)

_VIDEO_FIELDS: tuple[tuple[str, str], ...] = (
    ("codec", "codec"), ("profile", "profile"), ("level", "level"),
    ("width", "width"), ("height", "height"), ("pix_fmt", "pixel format"),
    ("frame_rate", "frame rate"), ("time_base", "time base"), ("sar", "pixel aspect"),
    ("extradata", "codec setup"),
)  # fmt: skip
_AUDIO_FIELDS: tuple[tuple[str, str], ...] = (
    ("codec", "audio codec"), ("profile", "audio profile"), ("sample_rate", "sample rate"),
    ("channels", "channels"), ("channel_layout", "channel layout"),
    ("extradata", "audio codec setup"),
)  # fmt: skip


def copy_mismatch(infos: list[MediaInfo]) -> str | None:
    """Why these inputs cannot be joined by stream copy, or None when they can."""
    first = infos[0]
    for n, info in enumerate(infos[1:], start=2):
        if info.stream_types != first.stream_types:
            mine, theirs = list(info.stream_types), list(first.stream_types)
            return f"input {n} has streams {mine}, input 1 {theirs}"
        reason = _differs(first.video, info.video, _VIDEO_FIELDS) or _differs(
            first.audio, info.audio, _AUDIO_FIELDS
        )
        if reason:
            return f"input {n}: {reason}"
    return None


def _differs(
    a: VideoStream | AudioStream | None,
    b: VideoStream | AudioStream | None,
    fields: tuple[tuple[str, str], ...],
) -> str | None:
    if a is None or b is None:
        return None if a is b else "audio track present in one input only"
    for name, label in fields:
        x, y = getattr(a, name), getattr(b, name)
        if x != y:
            return f"{label} {y} differs from input 1's {x}"
    return None


@dataclass(frozen=True)
class Canvas:
    """What every input is normalised to before an encoded concatenation."""

    width: int
    height: int
    fps: Fraction
    sample_rate: int = NORMAL_SAMPLE_RATE
    layout: str = NORMAL_LAYOUT

    @property
    def fps_text(self) -> str:
        return f"{self.fps.numerator}/{self.fps.denominator}"


def canvas_for(infos: list[MediaInfo]) -> Canvas:
    """The largest input's picture size (the first among equals), so nothing is scaled
    down, and the highest frame rate up to 60, so no input loses motion."""
    videos = [i.video for i in infos if i.video is not None and i.video.width > 0]
    if not videos:
        raise ValueError("no input has a picture size")
    biggest = max(videos, key=lambda v: v.width * v.height)  # max keeps the first of ties
    rates = [v.fps for v in videos if v.fps is not None]
    fps = min(max(rates), MAX_FPS) if rates else DEFAULT_FPS
    # Most encoders and 4:2:0 need even sizes.
    return Canvas(_even(biggest.width), _even(biggest.height), fps)


def _even(n: int) -> int:
    return max(2, n - n % 2)
