"""Calls made while an earlier one is on its way go out together, as one request.

Group commit, as databases do it for their logs: the first call goes out at once (an idle
stage waits for nothing), and calls made while it is in flight queue up and go out as one
batch the moment it returns. A stage with many events in hand then pays one MongoDB round
trip per bookkeeping step for all of them, not one per event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

A = TypeVar("A")
R = TypeVar("R")

BatchCall = Callable[[list[A]], Awaitable[Sequence[R]]]


class Coalescer(Generic[A, R]):
    """``await coalescer(arg)`` answers what ``run`` answered for ``arg``, ``run`` taking
    the arguments of every call waiting, in call order, and answering one result each.
    When ``run`` raises, every call of that batch raises it."""

    def __init__(self, run: BatchCall[A, R], *, max_batch: int = 500) -> None:
        self._run = run
        self._max = max_batch
        self._queue: list[tuple[A, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def __call__(self, arg: A) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((arg, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                # A caller that gave up waiting still has its call made: a release or a
                # record must happen whether or not anyone waits for its answer.
                try:
                    results = await self._run([arg for arg, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"{len(results)} results for {len(batch)} calls")
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._drainer = None
            # Stopped (its loop closing) with calls still queued: they fail, never hang.
            for _, future in self._queue:
                if not future.done():
                    future.set_exception(RuntimeError("stopped before the call was made"))
            self._queue = []
