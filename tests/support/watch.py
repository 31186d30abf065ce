"""Follow topics from their start in the background and keep every record, decoded: the
reliability tests count outcome events (exactly one per job) and read them as they come."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from aiokafka import AIOKafkaConsumer

from schemas import Event, decode_event
from services.common.settings import Settings


@dataclass(frozen=True)
class Seen:
    topic: str
    partition: int
    offset: int
    event: Event | None  # None: not a readable event (the record is kept all the same)
    value: bytes
    at: float  # time.monotonic() when read


class TopicWatch:
    def __init__(self, settings: Settings, *topics: str) -> None:
        self.topics = topics
        self.records: list[Seen] = []
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            metadata_max_age_ms=1000,
        )
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for records in batch.values():
                for r in records:
                    try:
                        event: Event | None = decode_event(r.value) if r.value else None
                    except Exception:
                        event = None
                    self.records.append(
                        Seen(r.topic, r.partition, r.offset, event, r.value or b"", now)
                    )
            if batch:
                self._changed.set()

    def events(self, kind: type[Any] | tuple[type[Any], ...] = Event) -> list[Any]:
        return [r.event for r in self.records if isinstance(r.event, kind)]

    async def until(self, check: Callable[[TopicWatch], Any], timeout_s: float, what: str) -> Any:
        """Wait until ``check(self)`` is truthy (checked on every new batch)."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = check(self)
            if result:
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"not within {timeout_s:g} s: {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))
