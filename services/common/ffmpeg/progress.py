"""Running ffmpeg while reading its ``-progress`` report, for stages that show how far a
long run has got.

ffmpeg writes ``key=value`` lines to stdout about twice a second; ``out_time_us`` is how
much of the output is written, in microseconds of media time. The caller turns that into
a share of the expected duration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from services.common.ffmpeg import runner
from services.common.ffmpeg.argv import finish_argv
from services.common.ffmpeg.runner import FFmpegResult

__all__ = ["out_time_s", "run_with_progress", "with_progress_pipe"]

OnTime = Callable[[float], Awaitable[None]]


def out_time_s(line: str) -> float | None:
    """Seconds of output written, from one ``-progress`` line; None for any other line
    (and for ``N/A`` or negative values, which ffmpeg prints before the first frame)."""
    key, sep, value = line.strip().partition("=")
    if not sep or key != "out_time_us":
        return None
    try:
        us = int(value)
    except ValueError:
        return None
    return us / 1e6 if us >= 0 else None


def with_progress_pipe(argv: Sequence[str]) -> list[str]:
    """``argv`` with the global flags and ``-progress pipe:1`` (stdout) added once."""
    out = finish_argv(argv)
    if "-progress" not in out:
        out[1:1] = ["-progress", "pipe:1"]
    return out


async def run_with_progress(argv: Sequence[str], timeout_s: float, on_time: OnTime) -> FFmpegResult:
    """Run ``argv`` calling ``on_time(seconds_written)`` at each progress report;
    :class:`FFmpegError` on a non-zero exit, :class:`FFmpegTimeout` on a timeout. The child
    is killed when this is cancelled or ``on_time`` raises."""
    full = with_progress_pipe(argv)
    async with runner.stream_lines(full, timeout_s) as lines:
        async for line in lines:
            seconds = out_time_s(line)
            if seconds is not None:
                await on_time(seconds)
    done = lines.result
    assert done is not None
    if done.returncode != 0:
        raise runner.exited(full, done)
    return done
