"""Audio filter graphs: segments joined with crossfades or fades, a soundtrack fitted to a
video and ducked under a voice, and two-pass loudness normalisation. Graph text only;
``recipes`` puts it on a command line.

Every input is first brought to one sample rate and layout (``acrossfade``, ``amix`` and
``sidechaincompress`` need their inputs to agree).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from schemas.merge import FadeMode, Loudness
from services.merger.timing import SyncPlan

# Ducking: the music drops by up to ~18 dB while the voice speaks, comes back in ~0.4 s.
DUCK = "threshold=0.03:ratio=8:attack=20:release=400"
# loudnorm works at 192 kHz internally: bring its output back.
OUTPUT_RATE = 48000


def seconds(ms: float) -> str:
    return f"{ms / 1000:.6f}"


def normalise(src: str, rate: int, layout: str) -> str:
    return f"{src}aresample={rate},aformat=sample_fmts=fltp:channel_layouts={layout}"


def fit(ms: int) -> str:
    """Pad with silence, then cut: exactly ``ms`` long whatever came in."""
    return f"apad,atrim=duration={seconds(ms)},asetpts=PTS-STARTPTS"


def joined(
    inputs: list[int],
    durations_ms: list[int],
    fades_ms: list[int],
    mode: FadeMode,
    curve: str,
    rate: int,
    layout: str,
) -> tuple[list[str], str]:
    """Segments ``inputs`` (ffmpeg input indexes) joined in one graph: a chain of
    ``acrossfade`` (overlapping) or, in ``fade`` mode, each segment faded out and the next
    faded in, then concatenated. Returns the graph's chains and its output label."""
    n = len(inputs)
    chains = [f"{normalise(f'[{i}:a:0]', rate, layout)}[s{k}]" for k, i in enumerate(inputs)]
    if n == 1:
        return chains, "s0"
    if mode == "crossfade":
        acc = "s0"
        for j in range(1, n):
            fade = fades_ms[j - 1]
            join = (
                f"acrossfade=d={seconds(fade)}:c1={curve}:c2={curve}"
                if fade
                else "concat=n=2:v=0:a=1"
            )
            chains.append(f"[{acc}][s{j}]{join}[x{j}]")
            acc = f"x{j}"
        return chains, acc
    faded = []
    for k in range(n):
        steps = []
        fade_in = fades_ms[k - 1] if k > 0 else 0
        fade_out = fades_ms[k] if k < n - 1 else 0
        if fade_in:
            steps.append(f"afade=t=in:st=0:d={seconds(fade_in)}:curve={curve}")
        if fade_out:
            start = durations_ms[k] - fade_out
            steps.append(f"afade=t=out:st={seconds(start)}:d={seconds(fade_out)}:curve={curve}")
        if steps:
            chains.append(f"[s{k}]{','.join(steps)}[f{k}]")
            faded.append(f"[f{k}]")
        else:
            faded.append(f"[s{k}]")
    chains.append(f"{''.join(faded)}concat=n={n}:v=0:a=1[joined]")
    return chains, "joined"


def soundtrack(music: int, voice: int | None, plan: SyncPlan, layout: str) -> tuple[list[str], str]:
    """The music (input ``music``) fitted to ``plan``; with a voice (input ``voice``, kept
    at its own pace and fitted to the same length), the music is ducked under it and the
    two are mixed."""
    tempo = "".join(f",atempo={f:.6f}" for f in plan.tempo)
    rate = OUTPUT_RATE
    chains = [f"{normalise(f'[{music}:a:0]', rate, layout)}{tempo},{fit(plan.target_ms)}[music]"]
    if voice is None:
        return chains, "music"
    chains += [
        f"{normalise(f'[{voice}:a:0]', rate, layout)},{fit(plan.target_ms)},asplit=2[vkey][vmix]",
        f"[music][vkey]sidechaincompress={DUCK}[ducked]",
        # amix leaves its output's channel layout unset, and the encoder (or loudnorm after
        # it) cannot negotiate one: state it.
        f"[ducked][vmix]amix=inputs=2:duration=first:normalize=0,"
        f"aformat=sample_fmts=fltp:channel_layouts={layout}[mixed]",
    ]
    return chains, "mixed"


# -- loudness ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """loudnorm's first-pass figures, fed back to its second pass."""

    input_i: float
    input_tp: float
    input_lra: float
    input_thresh: float
    target_offset: float

    @property
    def silent(self) -> bool:
        return not math.isfinite(self.input_i) or not math.isfinite(self.input_thresh)


def _target(t: Loudness) -> str:
    return f"I={t.integrated_lufs:g}:TP={t.true_peak_dbtp:g}:LRA={t.lra:g}"


def measure_chain(label: str, target: Loudness) -> str:
    return f"[{label}]loudnorm={_target(target)}:print_format=json[measured]"


def apply_chain(label: str, target: Loudness, m: Measured, layout: str) -> tuple[str, str]:
    """The second pass: linear gain when the measured figures allow it (loudnorm falls
    back to its dynamic mode by itself when the true peak would be exceeded)."""
    chain = (
        f"[{label}]loudnorm={_target(target)}:measured_I={m.input_i:.2f}"
        f":measured_TP={m.input_tp:.2f}:measured_LRA={m.input_lra:.2f}"
        f":measured_thresh={m.input_thresh:.2f}:offset={m.target_offset:.2f}"
        f":linear=true:print_format=summary,aresample={OUTPUT_RATE},"
        # loudnorm's output leaves the channel layout open, and the encoder cannot pick
        # one by itself (ffmpeg 5.1: "Cannot select channel layout"): state it.
        f"aformat=sample_fmts=fltp:channel_layouts={layout}[normalised]"
    )
    return chain, "normalised"


_JSON_BLOCK = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.S)


def parse_measured(stderr: str) -> Measured:
    """loudnorm's JSON report, the last one in ffmpeg's stderr."""
    blocks = _JSON_BLOCK.findall(stderr)
    if not blocks:
        raise ValueError("no loudnorm report in ffmpeg's output")
    doc = json.loads(blocks[-1])
    return Measured(
        input_i=float(doc["input_i"]),
        input_tp=float(doc["input_tp"]),
        input_lra=float(doc["input_lra"]),
        input_thresh=float(doc["input_thresh"]),
        target_offset=float(doc["target_offset"]),
    )
