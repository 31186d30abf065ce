"""Progress: ffmpeg's report parsed, mapped onto a phase, and throttled."""

from __future__ import annotations

import pytest

from services.common.ffmpeg.progress import out_time_s, with_progress_pipe
from services.merger.progress import Progress
from tests.support.fakes import FakeClock

pytestmark = pytest.mark.unit


def test_out_time_lines() -> None:
    assert out_time_s("out_time_us=1500000\n") == 1.5
    assert out_time_s("out_time_us=N/A") is None
    assert out_time_s("out_time_us=-5") is None
    assert out_time_s("out_time_ms=1500000") is None
    assert out_time_s("progress=continue") is None


def test_the_progress_pipe_is_added_once() -> None:
    argv = with_progress_pipe(["ffmpeg", "-i", "x.wav", "y.mp3"])
    assert argv[:3] == ["ffmpeg", "-progress", "pipe:1"] and argv.count("-progress") == 1
    assert with_progress_pipe(argv).count("-progress") == 1


async def test_reports_are_throttled_to_5_points_or_a_second() -> None:
    clock = FakeClock()
    sent: list[int] = []

    async def report(done: int, total: int, note: str | None) -> None:
        assert total == 100
        sent.append(done)

    progress = Progress(report, clock)
    on_time = progress.phase(40, 90, 10_000, "joining")
    for tenth in range(0, 101):  # ffmpeg reporting every 0.1 s of output, instantly
        await on_time(tenth / 10)
    assert sent == [40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90]
    sent.clear()
    slow = Progress(report, clock)
    on_slow = slow.phase(0, 100, 100_000, "slow")
    for second in range(5):
        clock.advance(1.0)
        await on_slow(second + 1)  # 1 % a second: one report a second
    assert sent == [1, 2, 3, 4, 5]
    await slow.at(3)  # never backwards
    await slow.at(100, "done", force=True)
    await slow.at(100, "done", force=True)
    assert sent == [1, 2, 3, 4, 5, 100]
