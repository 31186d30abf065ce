"""The merge benchmark (``bench/merge_bench.py``) as a module of the suite.

Its run is unchanged (same inputs, same interleaving, its own S3 prefix, its JSON file
and tables); this module only turns its result into the suite's figures: each stream-copy
path in times real time against the re-encode of the same work in the same run.
"""

from __future__ import annotations

from typing import Any

from bench import merge_bench
from bench.figures import BenchContext, Figure, ratio

GROUP = "merge"
# Copy over re-encode, in times real time (bigger is better).
TARGETS = {"concat": 20.0, "mux": 10.0}


def arguments(ctx: BenchContext, smoke: bool) -> list[str]:
    out = str(ctx.cache_dir / ("merge_bench.smoke.json" if smoke else "merge_bench.json"))
    common = ["--cache-dir", str(ctx.cache_dir), "--out", out]
    if smoke:
        return [*common, "--clips", "2", "--clip-s", "1", "--height", "72", "--reps", "1"]
    return common


def figures(result: dict[str, Any]) -> list[Figure]:
    label = {
        "concat": f"concat {result['clips']} x {result['clip_s']:g} s {result['height']}p "
        "clips, stream copy (merger)",
        "mux": f"mux onto {result['video_s']:g} s {result['height']}p video, picture copied "
        "(merger)",
    }
    out = []
    for case in result["cases"]:
        name = case["case"]
        copy, encode = case["copy"], case["encode"]
        value, base = copy["times_real_time"], encode["times_real_time"]
        r = ratio(value, base)
        target = TARGETS[name]
        out.append(
            Figure(
                GROUP, label[name], value, "x real time",
                baseline_name=f"re-encode ({result['video_encoder']} veryfast CRF 20)",
                baseline=base, ratio=r, target=f">= {target:g}x re-encode",
                met=r is not None and r >= target,
                note=f"ratio = copy / re-encode speed (bigger is better); wall "
                     f"{copy['median_wall_s']:.2f} s vs {encode['median_wall_s']:.2f} s; "
                     f"ffmpeg peak {copy['median_ffmpeg_peak_mb']:.0f} MB vs "
                     f"{encode['median_ffmpeg_peak_mb']:.0f} MB; median of {result['reps']} "
                     f"copy / {result['baseline_reps']} re-encode run(s)"
                     + _floor_note(case),
            )
        )  # fmt: skip
    return out


def _floor_note(case: dict[str, Any]) -> str:
    """The part of the copy path that cannot be copied, measured in the same run."""
    if "floor" not in case:
        return ""
    floor, copy = case["floor"]["median_wall_s"], case["copy"]["median_wall_s"]
    return (
        f"; of the copy run, the soundtrack alone (the same command without the picture: "
        f"decode, fit, AAC encode) takes {floor:.2f} s ({floor / copy:.0%}), so against "
        f"this re-encode the copy path can reach at most {case['encode_over_floor']}x"
    )


async def run(ctx: BenchContext, *, smoke: bool) -> list[Figure]:
    args = merge_bench.parse_args(arguments(ctx, smoke))
    result = await merge_bench.run(args)
    ctx.log(merge_bench.render(result))
    return figures(result)
