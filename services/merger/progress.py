"""How far a merge has got, reported to the job's stage record without flooding it.

ffmpeg reports about twice a second how much output it has written; a merge is one or
more such runs (downloads, a loudness pass, the merge itself), each given a slice of
0-100 %. A report goes out when it moved at least ``min_step`` points, or at least one
point after ``min_interval_s``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.common.ports import Clock

Report = Callable[[int, int, str | None], Awaitable[None]]
OnTime = Callable[[float], Awaitable[None]]


class Progress:
    def __init__(
        self, report: Report, clock: Clock, *, min_interval_s: float = 1.0, min_step: int = 5
    ) -> None:
        self._report = report
        self._clock = clock
        self._min_interval_s = min_interval_s
        self._min_step = min_step
        self.last = -1
        self._last_at = float("-inf")

    async def at(self, percent: int, note: str | None = None, *, force: bool = False) -> None:
        percent = max(0, min(100, percent))
        if percent <= self.last:
            return
        now = self._clock()
        moved = percent - self.last
        if not force and moved < self._min_step and now - self._last_at < self._min_interval_s:
            return
        self.last, self._last_at = percent, now
        await self._report(percent, 100, note)

    def phase(self, lo: int, hi: int, expected_ms: int, note: str) -> OnTime:
        """A callback for one ffmpeg run over ``expected_ms`` of output, mapped onto
        ``lo``-``hi`` %."""

        async def on_time(seconds: float) -> None:
            share = min(1.0, seconds * 1000 / expected_ms) if expected_ms > 0 else 1.0
            await self.at(lo + int((hi - lo) * share), note)

        return on_time
