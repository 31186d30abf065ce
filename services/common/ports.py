"""Ports the stage runner and handlers depend on; adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from schemas import Event
from services.common.codec import RawMessage


class Emitter(Protocol):
    async def emit(self, events: Sequence[Event]) -> None:
        """Publish events to their registry topics and wait until the broker has them."""


class DeadLetters(Protocol):
    async def dead_letter(self, msg: RawMessage, headers: list[tuple[str, bytes]]) -> None:
        """Copy ``msg`` unchanged to its topic's DLQ with ``headers``."""


class Ledger(Protocol):
    async def seen(self, stage: str, event_id: str) -> bool: ...

    async def record(self, stage: str, event_id: str, emitted: Sequence[str]) -> None: ...


class StatusRecorder(Protocol):
    """Where a stage records the status of the job or request it works on."""

    async def started(self, stage: str, event: Event) -> None: ...

    async def finished(
        self, stage: str, event: Event, outputs: Sequence[Event], failed: bool
    ) -> None: ...
