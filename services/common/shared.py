"""One set of adapters per process, shared by every agent and timer that needs it:
opened by the first user, closed when the last one lets go (Faust starts and stops each
agent instance on its own schedule)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    def __init__(self, factory: Callable[[], AbstractAsyncContextManager[T]]) -> None:
        self._factory = factory
        self._lock = asyncio.Lock()
        self._cm: AbstractAsyncContextManager[T] | None = None
        self._value: T | None = None
        self._users = 0

    async def acquire(self) -> T:
        async with self._lock:
            if self._cm is None:
                cm = self._factory()
                value = await cm.__aenter__()
                self._cm, self._value = cm, value
            self._users += 1
            assert self._value is not None
            return self._value

    async def release(self) -> None:
        async with self._lock:
            self._users -= 1
            if self._users == 0 and self._cm is not None:
                cm, self._cm, self._value = self._cm, None, None
                await cm.__aexit__(None, None, None)

    @asynccontextmanager
    async def use(self) -> AsyncIterator[T]:
        value = await self.acquire()
        try:
            yield value
        finally:
            await self.release()
