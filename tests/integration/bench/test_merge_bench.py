"""The merge benchmark's code, run end to end on tiny inputs so it cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import merge_bench
from services.common.settings import Settings


def test_the_merge_bench_runs_on_a_few_seconds_of_input(
    stack: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    argv = ["--clips", "2", "--clip-s", "1", "--height", "72", "--reps", "1",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]  # fmt: skip
    assert merge_bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert [c["case"] for c in result["cases"]] == ["concat", "mux"]
    for case in result["cases"]:
        for path in ("copy", "encode"):
            figures = case[path]
            assert figures["median_wall_s"] > 0 and figures["times_real_time"] > 0
            assert figures["median_ffmpeg_peak_mb"] > 0
            assert abs(figures["output_s"] - 2.0) < 0.1
        assert case["encode_over_copy"]["wall"] > 0
    # The mux's soundtrack alone, its copy path's floor: an output without the picture.
    mux = result["cases"][1]
    assert "floor" not in result["cases"][0]
    assert mux["floor"]["median_wall_s"] > 0
    assert mux["floor"]["output_bytes"] < mux["copy"]["output_bytes"]
    assert mux["encode_over_floor"] > 0
    printed = capsys.readouterr().out
    assert "| concat 2 x 1 s, 72p | stream copy (merger) |" in printed
    assert "| mux onto 2 s 72p | its soundtrack alone |" in printed
    assert "cleanup: removed" in printed
    # Inputs are cached: a second run makes none.
    assert merge_bench.main(argv) == 0
    assert "inputs cached" in capsys.readouterr().out
