"""In-memory ports for fast handler and runner tests."""

from __future__ import annotations

from collections.abc import Sequence

from schemas import Event
from services.common.codec import RawMessage


class MemoryEmitter:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.dead: list[tuple[RawMessage, dict[str, bytes]]] = []

    async def emit(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    async def dead_letter(self, msg: RawMessage, headers: list[tuple[str, bytes]]) -> None:
        self.dead.append((msg, dict(headers)))


class MemoryLedger:
    def __init__(self) -> None:
        self.done: dict[tuple[str, str], list[str]] = {}

    async def seen(self, stage: str, event_id: str) -> bool:
        return (stage, event_id) in self.done

    async def record(self, stage: str, event_id: str, emitted: Sequence[str]) -> None:
        self.done.setdefault((stage, event_id), list(emitted))
