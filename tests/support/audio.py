"""Test audio made with ffmpeg: tones whose frequency changes at known times, so a clip
can be checked for being the right part of its source, not just the right length."""

from __future__ import annotations

import math
import subprocess
from array import array
from pathlib import Path

SEGMENT_S = 5
BASE_HZ = 300
STEP_HZ = 100
SAMPLE_RATE = 44100


def freq_at(t_s: float) -> int:
    return BASE_HZ + STEP_HZ * int(t_s // SEGMENT_S)


def _tone_expr(duration_s: int) -> str:
    f = f"({BASE_HZ}+{STEP_HZ}*floor(t/{SEGMENT_S}))"
    # Odd segments get harmonics: they cost more bits, so VBR frame sizes really vary.
    harm = f"if(mod(floor(t/{SEGMENT_S}),2),0.25*sin(2*PI*7*{f}*t)+0.2*sin(2*PI*13*{f}*t),0)"
    return f"0.5*sin(2*PI*{f}*t)+{harm}"


def make_episode(path: Path, kind: str, duration_s: int = 60) -> Path:
    """kind: cbr (MP3 with ID3 tags and cover art), vbr, m4a or wav."""
    src = [
        "-f",
        "lavfi",
        "-i",
        f"aevalsrc='{_tone_expr(duration_s)}':s={SAMPLE_RATE}:d={duration_s}",
    ]
    base = ["ffmpeg", "-v", "error", "-nostdin", "-y"]
    if kind == "cbr":
        cover = path.with_suffix(".png")
        subprocess.run(
            [*base, "-f", "lavfi", "-i", "color=c=red:s=64x64:d=1", "-frames:v", "1", str(cover)],
            check=True,
        )
        argv = [
            *base,
            *src,
            "-i",
            str(cover),
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            "-c:v",
            "png",
            "-disposition:v",
            "attached_pic",
            "-id3v2_version",
            "3",
            "-metadata",
            "title=Test episode",
            "-metadata",
            "artist=Tapedeck",
            str(path),
        ]
    elif kind == "vbr":
        argv = [*base, *src, "-c:a", "libmp3lame", "-q:a", "2", "-metadata", "title=VBR", str(path)]
    elif kind == "m4a":
        argv = [*base, *src, "-c:a", "aac", "-b:a", "128k", str(path)]
    elif kind == "wav":
        argv = [*base, *src, "-c:a", "pcm_s16le", str(path)]
    else:
        raise ValueError(kind)
    subprocess.run(argv, check=True)
    return path


def decode(path: Path | str) -> array:
    """Decoded mono 16-bit samples at SAMPLE_RATE: what a listener hears."""
    out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-i",
            str(path),
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            str(SAMPLE_RATE),
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return array("h", out)


def duration_ms(samples: array) -> float:
    return len(samples) * 1000 / SAMPLE_RATE


def goertzel(samples: array, start: int, n: int, hz: float) -> float:
    k = 2 * math.cos(2 * math.pi * hz / SAMPLE_RATE)
    s1 = s2 = 0.0
    for x in samples[start : start + n]:
        s1, s2 = x + k * s1 - s2, s1
    return s1 * s1 + s2 * s2 - k * s1 * s2


def dominant(samples: array, at_ms: float, candidates: list[int], window_ms: float = 40) -> int:
    start = int(at_ms * SAMPLE_RATE / 1000)
    n = int(window_ms * SAMPLE_RATE / 1000)
    return max(candidates, key=lambda hz: goertzel(samples, start, n, hz))


def change_point_ms(
    samples: array, before_hz: int, after_hz: int, lo_ms: float, hi_ms: float
) -> float:
    """Where the tone switches from before_hz to after_hz, found by bisection on 10 ms
    windows between lo_ms and hi_ms."""
    window = 10.0
    while hi_ms - lo_ms > 1.0:
        mid = (lo_ms + hi_ms) / 2
        if dominant(samples, mid - window / 2, [before_hz, after_hz], window) == before_hz:
            lo_ms = mid
        else:
            hi_ms = mid
    return (lo_ms + hi_ms) / 2


def heard_duration_ms(path: Path, samples: array) -> float:
    """How long a player plays the file. For MP4/M4A that is the edit list's duration:
    it trims the AAC encoder's padding, which ffmpeg 5.1's decoder does not drop at the
    end (it does at the start), so decoded samples would overstate it by up to a frame."""
    if path.suffix != ".m4a":
        return duration_ms(samples)
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=duration",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip()) * 1000
