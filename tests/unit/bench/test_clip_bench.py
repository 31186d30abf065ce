"""The clip bench's figures from its samples: the constant-rate source's guess count."""

from __future__ import annotations

from collections import Counter

from bench.clip_bench import Sample, SourceFigures, _cbr_figure


def test_the_guess_count_is_over_every_guess_not_over_the_measured_clips() -> None:
    timed = [Sample(i * 1000, 20.0, 300_000, 240_000, floor_ms=10.0) for i in range(3)]
    figures = SourceFigures(3600, ours=timed, old=timed[:1], indexed=timed[:2], hit=timed[0])
    # Three cuts and two without the directory guessed: four covered the window, one not.
    figures.guesses = Counter({"hit": 4, "miss": 1})
    figure = _cbr_figure(figures, 30_000)
    assert figure.name == "uncached 30 s MP3 clip, 1 h constant 64 kbit/s source"
    assert figure.ratio == 2.0
    assert figure.note is not None
    assert figure.note.endswith(
        "without the directory, window guessed with the index records: 4 of 5 guesses hit"
    )
