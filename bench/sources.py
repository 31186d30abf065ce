"""Long MP3 sources for the benchmarks, made once with ffmpeg and cached on disk.

A 440 Hz tone plus pink noise whose level swells and fades, mono 44.1 kHz, LAME VBR
``-q:a 4``: the changing noise makes frame sizes vary (32 to 80 kbit/s), so a byte offset
guessed from the average bit rate lands in the wrong place and the seek index matters.
``cbr=True`` makes the same sound at a constant 64 kbit/s, as most podcasts are published,
where the clipper reads the window with the index instead of after it.
Files are keyed by duration and recipe version and written under a temporary name, so an
interrupted encode is never taken for a finished one.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

RECIPE = "v1"
SAMPLE_RATE = 44100
ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """``$STACK_DIR/bench`` (``.stack/bench`` by default), git-ignored like the stack."""
    return Path(os.environ.get("STACK_DIR", str(ROOT / ".stack"))).resolve() / "bench"


def source_path(directory: Path, duration_s: int, *, cbr: bool = False) -> Path:
    rate = "cbr-64k" if cbr else "vbr-q4"
    return directory / f"tone-noise-{duration_s}s-{rate}-{RECIPE}.mp3"


def encode_argv(ffmpeg_bin: str, duration_s: int, out: Path, *, cbr: bool = False) -> list[str]:
    d = duration_s
    graph = (
        "[0:a]volume=0.4[tone];"
        "[1:a]volume='pow(abs(sin(t/17)),3)':eval=frame[noise];"
        "[tone][noise]amix=inputs=2:normalize=0,aformat=channel_layouts=mono"
    )
    return [
        ffmpeg_bin, "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-y",
        "-progress", "pipe:1",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={SAMPLE_RATE}:duration={d}",
        "-f", "lavfi",
        "-i", f"anoisesrc=color=pink:amplitude=0.1:sample_rate={SAMPLE_RATE}:duration={d}:seed=7",
        "-filter_complex", graph,
        "-c:a", "libmp3lame", *(["-b:a", "64k"] if cbr else ["-q:a", "4"]), "-f", "mp3", str(out),
    ]  # fmt: skip


def ensure_source(
    duration_s: int,
    directory: Path | None = None,
    *,
    ffmpeg_bin: str = "ffmpeg",
    log: Callable[[str], None] = print,
    cbr: bool = False,
) -> Path:
    """The cached source of ``duration_s`` seconds, encoding it first if it is missing."""
    directory = directory or cache_dir()
    path = source_path(directory, duration_s, cbr=cbr)
    if path.is_file() and path.stat().st_size > 0:
        log(f"  source {duration_s:>6} s: cached {path.name} ({path.stat().st_size / 1e6:.1f} MB)")
        return path
    directory.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    log(f"  source {duration_s:>6} s: encoding {path.name} (first run only) ...")
    started = time.monotonic()
    proc = subprocess.Popen(
        encode_argv(ffmpeg_bin, duration_s, part, cbr=cbr),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        next_pct = 10
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            if key != "out_time_us" or not value.isdigit():
                continue
            pct = int(value) / 1e6 / duration_s * 100
            if next_pct <= pct < 100:
                elapsed = time.monotonic() - started
                eta = elapsed * (100 - pct) / pct
                log(f"    {pct:5.1f}%  {elapsed:5.1f} s elapsed, ~{eta:.0f} s to go")
                next_pct = int(pct // 10) * 10 + 10
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed to encode the {duration_s} s source:\n{stderr}")
        os.replace(part, path)
    except BaseException:
        proc.kill()
        proc.wait()
        part.unlink(missing_ok=True)
        raise
    log(
        f"  source {duration_s:>6} s: done in {time.monotonic() - started:.1f} s "
        f"({path.stat().st_size / 1e6:.1f} MB)"
    )
    return path
