"""Waiting for a job's or request's result event without polling anything.

Results are matched by the id their topic is keyed by (``job_id`` or ``request_id``). A
caller registers that id *before* it emits the request, so a result that comes back
faster than the emit call returns is not lost. Every registration is removed when
its ``with`` block ends (answered, timed out or cancelled), and the number in flight is
capped, so the table cannot grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

from schemas import Event
from services.common.context import subject_id

log = logging.getLogger(__name__)


class TooManyPending(RuntimeError):
    """More requests are waiting for results than this process accepts."""


class ResultWaiter:
    def __init__(self, max_pending: int = 10_000) -> None:
        self.max_pending = max_pending
        self._futures: dict[str, asyncio.Future[Event]] = {}

    def __len__(self) -> int:
        return len(self._futures)

    def expect(self, key: str) -> Pending:
        if key in self._futures:
            raise ValueError(f"{key!r} is already awaited")
        if len(self._futures) >= self.max_pending:
            raise TooManyPending(f"{len(self._futures)} requests already wait for results")
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._futures[key] = future
        return Pending(self, key, future)

    def resolve(self, event: Event, key: str | None = None) -> bool:
        """Hand a result to whoever waits for ``key`` (by default the event's job or
        request id); False when nobody does (the usual case for results of other
        instances' requests)."""
        future = self._futures.get(key if key is not None else subject_id(event))
        if future is None or future.done():
            return False
        future.set_result(event)
        return True

    def cancel_all(self) -> None:
        """Wake every waiter at shutdown; they answer as if they had timed out."""
        for future in self._futures.values():
            if not future.done():
                future.cancel()

    def _forget(self, key: str, future: asyncio.Future[Event]) -> None:
        if self._futures.get(key) is future:
            del self._futures[key]


class Pending:
    def __init__(self, waiter: ResultWaiter, key: str, future: asyncio.Future[Event]):
        self.key = key
        self._waiter = waiter
        self._future = future

    async def wait(self, timeout_s: float) -> Event | None:
        """The result, or None if it did not come within ``timeout_s``."""
        if self._future.done():
            return None if self._future.cancelled() else self._future.result()
        try:
            # Shielded so a timeout leaves the future for close() rather than cancelling it
            # under a concurrent resolve().
            return await asyncio.wait_for(asyncio.shield(self._future), max(timeout_s, 0))
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            if self._future.cancelled() and not _current_task_cancelling():
                return None  # cancel_all() at shutdown, not our caller giving up
            raise

    def close(self) -> None:
        self._waiter._forget(self.key, self._future)
        if not self._future.done():
            self._future.cancel()

    def __enter__(self) -> Pending:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task and task.cancelling())


class Background:
    """Tasks that must outlive the HTTP request that started them (an emit still in
    flight when the request answers 202). Holds strong references until they finish."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here so it is logged once, not as "exception never retrieved".
            log.warning("background task failed: %r", task.exception())

    async def drain(self, timeout_s: float) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
