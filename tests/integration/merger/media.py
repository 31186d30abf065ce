"""Small media for the merger's tests, made with ffmpeg's lavfi sources, and the
measurements the tests take of what the merger made: packet hashes, durations, loudness,
the level around a join."""

from __future__ import annotations

import array
import json
import math
import re
import subprocess
from pathlib import Path

from services.merger.faststart import top_level

BASE = ["ffmpeg", "-hide_banner", "-nostdin"]
FFMPEG = [*BASE, "-v", "error", "-y"]
# One recipe for every "compatible" video: same encoder settings give the same SPS/PPS.
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2"]


def _run(args: list[str]) -> None:
    subprocess.run([*FFMPEG, *args], check=True, capture_output=True)


def make_video(
    path: Path, seconds: float, *, size: str = "320x240", rate: int = 25,
    tone: int | None = 440, source: str = "testsrc2",
) -> Path:  # fmt: skip
    """A test picture (and a tone, unless ``tone`` is None) of ``seconds``."""
    args = ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}:duration={seconds}"]
    if tone is not None:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone}:duration={seconds}:sample_rate=48000"]
        args += [*H264, *AAC, "-shortest"]
    else:
        args += H264
    _run([*args, str(path)])
    return path


def make_tone(
    path: Path, seconds: float, freq: int, volume: float = 1.0, rate: int = 44100
) -> Path:
    graph = f"sine=frequency={freq}:duration={seconds}:sample_rate={rate},volume={volume}"
    _run(["-f", "lavfi", "-i", graph, str(path)])
    return path


def make_voice(path: Path, seconds: float) -> Path:
    """Beeps in the first half, silence after: a voice the music ducks under."""
    graph = (
        f"sine=frequency=900:duration={seconds / 2}:sample_rate=22050,"
        f"volume='if(lt(mod(t,0.5),0.3),1,0)':eval=frame,apad=whole_dur={seconds}"
    )
    _run(["-f", "lavfi", "-i", graph, str(path)])
    return path


def _out(args: list[str]) -> str:
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return done.stdout + done.stderr


def packets(path: Path, stream: str = "v:0") -> list[tuple[int, str]]:
    """(size, md5) of every packet of ``stream``, read without decoding."""
    text = _out([*FFMPEG, "-i", str(path), "-map", f"0:{stream}", "-c", "copy",
                 "-f", "framemd5", "-"])  # fmt: skip
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    return [(int(r[4]), r[5].strip()) for r in rows if len(r) == 6]


def probe(path: Path) -> dict[str, object]:
    args = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    data: dict[str, object] = json.loads(_out([*args, str(path)]))
    return data


def stream_seconds(path: Path, kind: str) -> float:
    """How long the first ``kind`` stream lasts, from its decoded frames' timestamps."""
    sel = "v:0" if kind == "video" else "a:0"
    text = _out(["ffprobe", "-v", "error", "-select_streams", sel, "-show_entries",
                 "frame=pts_time,pkt_duration_time", "-of", "csv=p=0", str(path)])  # fmt: skip
    end = 0.0
    for line in text.splitlines():
        parts = [p for p in line.strip().split(",") if p]
        if len(parts) >= 2 and parts[0] != "N/A":
            end = max(end, float(parts[0]) + (float(parts[1]) if parts[1] != "N/A" else 0.0))
    return end


def integrated_lufs(path: Path) -> float:
    text = _out([*BASE, "-nostats", "-v", "info", "-i", str(path), "-map", "0:a:0",
                 "-af", "ebur128", "-f", "null", "-"])  # fmt: skip
    found = re.findall(r"I:\s+(-?[\d.]+) LUFS", text)
    return float(found[-1])


def rms_windows(path: Path, start_s: float, end_s: float, window_s: float = 0.05) -> list[float]:
    """RMS (full scale = 1) of each ``window_s`` of the decoded audio in [start, end)."""
    rate = 8000
    raw = subprocess.run(
        [*FFMPEG, "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(rate),
         "-ss", f"{start_s}", "-t", f"{end_s - start_s}", "-f", "s16le", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    samples = array.array("h", raw)
    n = int(rate * window_s)
    out = []
    for i in range(0, len(samples) - n + 1, n):
        chunk = samples[i : i + n]
        out.append(math.sqrt(sum(s * s for s in chunk) / n) / 32768)
    return out


def top_boxes(path: Path) -> list[bytes]:
    """The types of an MP4's top-level boxes, in file order."""
    return [kind for kind, _, _ in top_level(path)]
