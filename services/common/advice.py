"""Progress and partial results written to a stage record behind the work, not in its way.

A handler reports progress many times (every scene, every few percent of an ffmpeg run);
awaiting each write would put a MongoDB round trip in the job's critical path every time.
``AdviceWriter.put`` returns at once: one write is in flight at a time, and what is put
meanwhile is merged into the next one (the newest value of a field wins, as it would have
anyway). The runner awaits ``settle`` before it records the event's outcome, so the record
sees every write before it turns terminal, in the order they were made.

Like the writes it replaces, a failed one is logged and never fails the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from schemas import Event
from services.common.ports import StatusRecorder

log = logging.getLogger(__name__)


def _overlaps(a: str, b: str) -> bool:
    """Whether two ``$set`` paths touch the same field (one is the other or inside it)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


class AdviceWriter:
    def __init__(self, status: StatusRecorder, stage: str) -> None:
        self._status = status
        self._stage = stage
        # Batches not yet written, oldest first; each one a $set whose paths are disjoint.
        self._batches: list[tuple[str, Event, dict[str, Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    def put(self, record: str, event: Event, fields: Mapping[str, Any]) -> None:
        last = self._batches[-1] if self._batches else None
        if last is not None and last[0] == record and last[1] is event:
            merged = last[2]
            # A path inside a pending one (or around it) cannot go into the same $set:
            # it starts a batch of its own, written after.
            clash = any(_overlaps(k, p) and k != p for k in fields for p in merged)
            if not clash:
                merged.update(fields)
                self._ensure_drainer()
                return
        self._batches.append((record, event, dict(fields)))
        self._ensure_drainer()

    async def settle(self) -> None:
        """Wait until everything put so far is written (or failed and was logged)."""
        while self._drainer is not None:
            await asyncio.shield(self._drainer)

    def _ensure_drainer(self) -> None:
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._batches:
                record, event, fields = self._batches.pop(0)
                try:
                    await self._status.progress(record, event, fields)
                except Exception:
                    log.warning("%s: could not record %s on %s", self._stage,
                                sorted(fields), getattr(event, "event_id", "?"))  # fmt: skip
        finally:
            self._drainer = None
