"""The seek index: which byte window covers a clip."""

from __future__ import annotations

from services.common.episodes import SeekIndex


def test_seek_window_covers_the_clip_with_preroll() -> None:
    index = SeekIndex(times_ms=[0, 1000, 2000, 3000, 4000], offsets=[100, 200, 300, 400, 500],
                      size_bytes=600)  # fmt: skip
    t0, first, last = index.window(2500, 3200, preroll_ms=500)
    assert (t0, first) == (2000, 300)
    # One sample beyond the one holding the end, for the frames a stream copy adds.
    assert last == 599
    assert index.window(1500, 1700) == (1000, 200, 399)
    # A pre-roll reaching before the start clamps to the first frame.
    assert index.window(100, 200) == (0, 100, 299)
