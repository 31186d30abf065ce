"""Liveness and readiness of a service, and the one case Kubernetes cannot see by itself:
a Faust worker whose consumer silently stopped (faust-streaming #175, #640, #523: the
process runs, the web server answers, and no record is read again).

A worker is ready when MongoDB, Kafka and S3 answer, it is not stuck in a rebalance, and
on the partitions assigned to it either nothing is waiting (no lag) or it has made
progress within the window. An event still being handled counts as progress until its
deadline has passed, so a long paid generation is not mistaken for a stall.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from services.common.obs import metrics

Check = Callable[[], Awaitable[object]]
OK = "ok"


async def run_checks(checks: Mapping[str, Check], timeout_s: float = 5.0) -> dict[str, str]:
    """Each check side by side, each bounded, so a hung server cannot hang the answer."""

    async def one(check: Check) -> str:
        try:
            result = await asyncio.wait_for(check(), timeout_s)
        except TimeoutError:
            return "down: no answer within the timeout"
        except Exception as exc:
            # The type only: messages can carry hostnames or credentials in URLs.
            return f"down: {type(exc).__name__}"
        # A check may answer with its own verdict ("stalled: ...") instead of raising.
        return result if isinstance(result, str) else OK

    names = list(checks)
    results = await asyncio.gather(*(one(checks[n]) for n in names))
    return dict(zip(names, results, strict=True))


@dataclass
class Progress:
    """What a worker's agents are doing: events in hand and when one last finished."""

    clock: Callable[[], float] = time.monotonic
    started: float = field(default=-1.0)
    last: float = field(default=-1.0)
    # token -> (started, that event's deadline in seconds, or None for the default)
    _in_flight: dict[int, tuple[float, float | None]] = field(default_factory=dict)
    _tokens: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        now = self.clock()
        self.started = self.last = now

    def begin(self, deadline_s: float | None = None) -> int:
        token = next(self._tokens)
        self._in_flight[token] = (self.clock(), deadline_s)
        return token

    def end(self, token: int, stage: str | None = None) -> None:
        self._in_flight.pop(token, None)
        self.tick(stage)

    def tick(self, stage: str | None = None) -> None:
        self.last = self.clock()
        if stage is not None:
            metrics.LAST_PROGRESS.labels(stage).set(time.time())

    def oldest_in_flight_s(self) -> float | None:
        if not self._in_flight:
            return None
        return self.clock() - min(start for start, _ in self._in_flight.values())

    def within_deadline(self, default_deadline_s: float, grace_s: float) -> bool:
        """Whether an event in hand is still within its deadline (plus ``grace_s``): a
        handler still at work is progress, a hung one past its deadline is not."""
        now = self.clock()
        return any(
            now - start <= (deadline if deadline is not None else default_deadline_s) + grace_s
            for start, deadline in self._in_flight.values()
        )

    def idle_s(self) -> float:
        return self.clock() - self.last


def consumer_verdict(
    progress: Progress,
    lag: Mapping[tuple[str, int], int],
    *,
    window_s: float,
    deadline_s: float,
    rebalancing_s: float | None = None,
) -> str:
    """``ok``, or why the consumer is not doing its work. ``lag`` covers the partitions
    assigned to this worker only: another worker's backlog is not this one's stall.
    ``deadline_s`` applies to events begun without a deadline of their own."""
    if rebalancing_s is not None and rebalancing_s > window_s:
        return f"stalled: rebalancing for {rebalancing_s:.0f}s"
    waiting = sum(n for n in lag.values() if n > 0)
    if not waiting:
        return OK
    if progress.idle_s() <= window_s:
        return OK
    if progress.within_deadline(deadline_s, window_s):
        return OK  # a long event in hand, still within its deadline
    return (
        f"stalled: {waiting} records waiting on {sum(1 for n in lag.values() if n > 0)} "
        f"partition(s), no progress for {progress.idle_s():.0f}s"
    )
