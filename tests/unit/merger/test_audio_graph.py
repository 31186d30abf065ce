"""Audio graphs: one acrossfade per join in one graph, fades, the fitted and ducked
soundtrack, and loudnorm's two passes."""

from __future__ import annotations

import pytest

from schemas.merge import Loudness
from services.merger.audio_graph import (
    apply_chain,
    joined,
    measure_chain,
    parse_measured,
    soundtrack,
)
from services.merger.timing import plan_sync

pytestmark = pytest.mark.unit


def test_crossfades_chain_every_segment_in_one_graph() -> None:
    chains, label = joined([0, 1, 2, 3], [10_000] * 4, [1000, 0, 500], "crossfade", "qsin",
                           44100, "stereo")  # fmt: skip
    graph = ";".join(chains)
    assert graph.count("aresample=44100") == 4
    assert "[s0][s1]acrossfade=d=1.000000:c1=qsin:c2=qsin[x1]" in chains
    assert "[x1][s2]concat=n=2:v=0:a=1[x2]" in chains  # a join too short to fade
    assert "[x2][s3]acrossfade=d=0.500000:c1=qsin:c2=qsin[x3]" in chains
    assert label == "x3"


def test_fade_mode_fades_out_and_in_then_concatenates() -> None:
    chains, label = joined([0, 1, 2], [10_000, 8_000, 10_000], [1000, 1000], "fade", "tri",
                           48000, "mono")  # fmt: skip
    assert "[s0]afade=t=out:st=9.000000:d=1.000000:curve=tri[f0]" in chains
    assert ("[s1]afade=t=in:st=0:d=1.000000:curve=tri,"
            "afade=t=out:st=7.000000:d=1.000000:curve=tri[f1]") in chains  # fmt: skip
    assert "[s2]afade=t=in:st=0:d=1.000000:curve=tri[f2]" in chains
    assert chains[-1] == "[f0][f1][f2]concat=n=3:v=0:a=1[joined]" and label == "joined"


def test_one_segment_is_only_normalised() -> None:
    chains, label = joined([0], [5000], [], "crossfade", "tri", 44100, "mono")
    assert len(chains) == 1 and label == "s0"


def test_the_soundtrack_is_fitted_to_the_video() -> None:
    chains, label = soundtrack(1, None, plan_sync(10_000, 30_000, "stretch"), "stereo")
    assert label == "music" and len(chains) == 1
    assert chains[0].startswith("[1:a:0]aresample=48000")
    assert ",atempo=2.000000,atempo=1.500000,apad,atrim=duration=10.000000" in chains[0]


def test_a_voiceover_ducks_the_music_and_is_mixed_in() -> None:
    chains, label = soundtrack(1, 2, plan_sync(10_000, 8_000, "trim"), "stereo")
    graph = ";".join(chains)
    assert "atempo" not in graph and label == "mixed"
    assert "[2:a:0]" in graph and "asplit=2[vkey][vmix]" in graph
    assert "[music][vkey]sidechaincompress=" in graph
    # amix leaves the layout unset: stated, or loudnorm and the encoder cannot agree on one.
    assert (
        "[ducked][vmix]amix=inputs=2:duration=first:normalize=0,"
        "aformat=sample_fmts=fltp:channel_layouts=stereo[mixed]"
    ) in graph


REPORT = """[Parsed_loudnorm_3 @ 0x55d]
{
\t"input_i" : "-27.61",
\t"input_tp" : "-24.50",
\t"input_lra" : "0.40",
\t"input_thresh" : "-37.62",
\t"output_i" : "-16.02",
\t"output_tp" : "-12.91",
\t"output_lra" : "0.30",
\t"output_thresh" : "-26.03",
\t"normalization_type" : "dynamic",
\t"target_offset" : "0.02"
}
[out#0/null @ 0x55e] video:0kB audio:1kB
"""


def test_two_pass_loudnorm() -> None:
    target = Loudness(integrated_lufs=-14, true_peak_dbtp=-1)
    assert measure_chain("mixed", target) == (
        "[mixed]loudnorm=I=-14:TP=-1:LRA=11:print_format=json[measured]"
    )
    measured = parse_measured(REPORT)
    figures = (measured.input_i, measured.input_thresh, measured.target_offset)
    assert figures == (-27.61, -37.62, 0.02)
    assert not measured.silent
    chain, label = apply_chain("mixed", target, measured, "stereo")
    assert label == "normalised"
    assert (
        "loudnorm=I=-14:TP=-1:LRA=11:measured_I=-27.61:measured_TP=-24.50:"
        "measured_LRA=0.40:measured_thresh=-37.62:offset=0.02:linear=true"
    ) in chain
    assert chain.endswith(
        "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[normalised]"
    )


def test_silence_has_no_loudness() -> None:
    silent = REPORT.replace('"-27.61"', '"-inf"').replace('"-37.62"', '"-inf"')
    assert parse_measured(silent).silent
    with pytest.raises(ValueError):
        parse_measured("no report here")
