"""The merger's ffmpeg command lines (without the binary; the tools adapter adds it, the
global flags and the protocol whitelist of every URL input).

Inputs are presigned URLs, or for the concat demuxer files we downloaded next to the list.
"""

from __future__ import annotations

from pathlib import Path

from services.merger.audio_graph import OUTPUT_RATE, fit, normalise
from services.merger.compat import Canvas
from services.merger.formats import AAC_ARGS, AudioOutput, VideoOutput


def _inputs(sources: list[str]) -> list[str]:
    return [arg for src in sources for arg in ("-i", src)]


def concat_copy(listing: Path, out: Path, fmt: VideoOutput, has_audio: bool) -> list[str]:
    """Every input's packets, in order, into one file: no decoding, no encoding.
    The list may only name local files (``file`` protocol) next to it (safe mode). The
    inputs share their codec setup, so the demuxer's automatic H.264 conversion (which
    rewrites every keyframe with the setup in-band) is off: packets stay byte for byte."""
    maps = ["-map", "0:v:0", *(["-map", "0:a:0"] if has_audio else [])]
    return [
        "-f", "concat", "-protocol_whitelist", "file", "-auto_convert", "0", "-i", str(listing),
        *maps, "-c", "copy", *fmt.args(), str(out),
    ]  # fmt: skip


def concat_encode(
    sources: list[str],
    video_ms: list[int],
    has_audio: list[bool],
    canvas: Canvas,
    encoder_args: tuple[str, ...],
    out: Path,
    fmt: VideoOutput,
) -> list[str]:
    """Each input scaled and padded to the canvas at its frame rate, its sound resampled
    and fitted to its picture's length (silence where it has none), then all joined by the
    concat filter and encoded once."""
    any_audio = any(has_audio)
    w, h = canvas.width, canvas.height
    chains, pairs = [], []
    for i, ms in enumerate(video_ms):
        chains.append(
            f"[{i}:v:0]scale={w}:{h}:force_original_aspect_ratio=decrease,"
            f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={canvas.fps_text},"
            f"format=yuv420p[v{i}]"
        )
        pairs.append(f"[v{i}]")
        if not any_audio:
            continue
        if has_audio[i]:
            src = normalise(f"[{i}:a:0]", canvas.sample_rate, canvas.layout)
            chains.append(f"{src},{fit(ms)}[a{i}]")
        else:
            silence = f"anullsrc=r={canvas.sample_rate}:cl={canvas.layout}"
            chains.append(f"{silence},{fit(ms)}[a{i}]")
        pairs.append(f"[a{i}]")
    n = len(video_ms)
    outputs = "[v][a]" if any_audio else "[v]"
    chains.append(f"{''.join(pairs)}concat=n={n}:v=1:a={int(any_audio)}{outputs}")
    audio = ["-map", "[a]", *AAC_ARGS, "-flags:a", "+bitexact"] if any_audio else []
    return [
        *_inputs(sources), "-filter_complex", ";".join(chains),
        "-map", "[v]", *encoder_args, "-flags:v", "+bitexact", *audio, *fmt.args(), str(out),
    ]  # fmt: skip


def audio_only(
    sources: list[str], chains: list[str], label: str, out: Path, fmt: AudioOutput
) -> list[str]:
    return [
        *_inputs(sources), "-filter_complex", ";".join(chains), "-map", f"[{label}]",
        *fmt.args(), str(out),
    ]  # fmt: skip


def measure(sources: list[str], chains: list[str]) -> list[str]:
    """Run a graph ending in ``[measured]`` (loudnorm's first pass) and throw the audio
    away; the report is in stderr at the info level."""
    return [
        "-v", "info", *_inputs(sources), "-filter_complex", ";".join(chains),
        "-map", "[measured]", "-f", "null", "-",
    ]  # fmt: skip


def mux(
    video: str, audio: list[str], chains: list[str], label: str, out: Path, fmt: VideoOutput
) -> list[str]:
    """The video's first video stream copied as it is, the graph's audio encoded as AAC.
    The graph numbers the audio inputs from 1 (input 0 is the video)."""
    return [
        *_inputs([video, *audio]), "-filter_complex", ";".join(chains),
        "-map", "0:v:0", "-map", f"[{label}]", "-c:v", "copy",
        *AAC_ARGS, "-ar", str(OUTPUT_RATE), "-flags:a", "+bitexact", *fmt.args(), str(out),
    ]  # fmt: skip
