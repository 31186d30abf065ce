"""The merge arithmetic: atempo chains, sync modes, fade lengths, durations, timeouts."""

from __future__ import annotations

import math

import pytest

from services.merger.timing import (
    atempo_chain,
    effective_fade_ms,
    fade_lengths,
    joined_ms,
    plan_sync,
    timeout_for,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("ratio", "chain"),
    [
        (1.0, []),
        (1.0004, []),
        (1.5, [1.5]),
        (0.75, [0.75]),
        (2.0, [2.0]),
        (0.5, [0.5]),
        (3.0, [2.0, 1.5]),
        (5.0, [2.0, 2.0, 1.25]),
        (0.3, [0.5, 0.6]),
        (0.1, [0.5, 0.5, 0.5, 0.8]),
        (4.0, [2.0, 2.0]),
    ],
)
def test_atempo_chains_stay_within_what_atempo_does_well(ratio: float, chain: list[float]) -> None:
    got = atempo_chain(ratio)
    assert got == pytest.approx(chain)
    assert all(0.5 <= f <= 2.0 for f in got)
    if got:
        assert math.prod(got) == pytest.approx(ratio)


def test_a_tempo_ratio_must_be_positive() -> None:
    with pytest.raises(ValueError):
        atempo_chain(0)


def test_trim_cuts_or_pads_to_the_videos_length_without_a_tempo_change() -> None:
    longer = plan_sync(10_000, 12_000, "trim")
    assert (longer.target_ms, longer.tempo, longer.cuts, longer.pads) == (10_000, (), True, False)
    shorter = plan_sync(10_000, 7_000, "trim")
    assert (shorter.tempo, shorter.cuts, shorter.pads) == ((), False, True)


def test_stretch_changes_the_tempo_both_ways() -> None:
    faster = plan_sync(10_000, 15_000, "stretch")
    assert faster.tempo == pytest.approx((1.5,)) and not faster.pads and not faster.cuts
    slower = plan_sync(10_000, 4_000, "stretch")
    assert slower.tempo == pytest.approx((0.5, 0.8))
    assert slower.ratio == pytest.approx(0.4)


def test_compress_only_speeds_up() -> None:
    assert plan_sync(10_000, 30_000, "compress").tempo == pytest.approx((2.0, 1.5))
    slower = plan_sync(10_000, 6_000, "compress")
    assert slower.tempo == () and slower.pads


def test_equal_lengths_need_nothing() -> None:
    for mode in ("trim", "stretch", "compress"):
        plan = plan_sync(10_000, 10_000, mode)
        assert (plan.tempo, plan.pads, plan.cuts) == ((), False, False)


def test_fades_are_shortened_by_short_segments_never_refused() -> None:
    assert fade_lengths([10_000, 10_000, 10_000], 1000) == [1000, 1000]
    # A middle segment gives each of its two joins half its length.
    assert fade_lengths([10_000, 1_500, 10_000], 1000) == [750, 750]
    # The first and last segments have one join each and give it their whole length.
    assert fade_lengths([600, 10_000], 1000) == [600]
    assert fade_lengths([10_000, 400], 1000) == [400]
    # Too short to fade at all: joined end to end.
    assert fade_lengths([10_000, 12, 10_000], 1000) == [0, 0]
    assert fade_lengths([5_000], 1000) == []
    assert fade_lengths([5_000, 5_000], 0) == [0]


def test_joined_length() -> None:
    assert joined_ms([10_000] * 3, [1000, 1000], "crossfade") == 28_000
    assert joined_ms([10_000] * 3, [1000, 1000], "fade") == 30_000


def test_fade_duration_wins_and_crossfade_ms_is_an_alias() -> None:
    assert effective_fade_ms(1.0, 0, set()) == 1000  # the default
    assert effective_fade_ms(1.0, 2500, {"crossfade_ms"}) == 2500
    assert effective_fade_ms(1.0, 0, {"crossfade_ms"}) == 0
    assert effective_fade_ms(0.25, 2500, {"crossfade_ms", "fade_duration_s"}) == 250


def test_timeout_grows_with_the_media() -> None:
    assert timeout_for(5_000, 3, 60) == 60
    assert timeout_for(300_000, 3, 60) == 900
