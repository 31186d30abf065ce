"""What a handler knows about the work in hand besides the event: the stage context.

Handlers are called as ``handler(event, ctx)``. The context names the job and the attempt,
carries a deadline, reports progress to the job's stage record, and keeps checkpoints:

    audio = await ctx.checkpoint("scene-1")
    if audio is None:
        audio = await provider.generate(...)        # paid: must not run twice
        await ctx.save("scene-1", audio)

A step's saved result survives a retry after a ``TransientError`` and a redelivery after a
crash (the checkpoints live in MongoDB, keyed by stage, event and step), so the work
resumes after the last saved step.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas import Event
from schemas.codes import Code
from services.common.advice import AdviceWriter
from services.common.errors import PermanentError
from services.common.ports import Checkpoints, Clock, StatusRecorder

log = logging.getLogger(__name__)

CancelCheck = Callable[[Event], Awaitable[bool]]


class JobCancelled(PermanentError):
    public = True
    code = Code.CANCELLED


def subject_id(event: Event) -> str:
    """The job or request an event is about: the key its stage documents hang off."""
    return str(getattr(event, "job_id", None) or getattr(event, "request_id", ""))


@dataclass
class StageContext:
    stage: str
    event: Event
    attempt: int
    deadline: float  # on ``clock``'s scale
    checkpoints: Checkpoints
    status: StatusRecorder | None = None
    clock: Clock = time.monotonic
    # The stage record this event's status goes to (the stage's name unless the stage keeps
    # one record per step or attempt, e.g. ``merge.mux``).
    record_key: str = ""
    # Whether the event's job was cancelled (None: this stage's jobs cannot be).
    cancelled: CancelCheck | None = None
    # Progress and partial results go through it, behind the work (None: written inline).
    advice: AdviceWriter | None = None
    _saved: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def job_id(self) -> str:
        return subject_id(self.event)

    @property
    def event_id(self) -> str:
        return str(self.event.event_id)

    def remaining_s(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(self.deadline - self.clock(), 0.0)

    def expired(self) -> bool:
        return self.clock() >= self.deadline

    async def progress(self, done: int, total: int, note: str | None = None) -> None:
        """``done`` of ``total`` steps finished, as a partial update of the stage record.

        Progress is advice for people watching: a failed write is logged, never raised,
        so it cannot fail the work it describes.
        """
        if total < 1 or not 0 <= done <= total:
            raise ValueError(f"progress {done}/{total} is out of range")
        if self.status is None:
            return
        fields: Mapping[str, Any] = {
            "progress": {
                "done": done,
                "total": total,
                "percent": math.floor(100 * done / total),
                "note": note,
                "attempt": self.attempt,
            }
        }
        await self.record(fields)

    async def record(self, fields: Mapping[str, Any]) -> None:
        """Partial update of the stage record (dotted paths for nested fields, e.g.
        ``{"scenes.3": {...}}``); like progress, advice that never fails the work."""
        if self.status is None:
            return
        record = self.record_key or self.stage
        if self.advice is not None:
            self.advice.put(record, self.event, fields)
            return
        try:
            await self.status.progress(record, self.event, fields)
        except Exception:
            log.warning("%s: could not record %s on %s", self.stage, sorted(fields), self.job_id)

    async def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` if the job was cancelled: call before expensive work."""
        if self.cancelled is not None and await self.cancelled(self.event):
            raise JobCancelled(f"job {self.job_id} was cancelled")

    async def checkpoint(self, name: str) -> Any | None:
        """The saved result of step ``name`` for this event, or None if not saved yet."""
        if name in self._saved:
            return self._saved[name]
        result = await self.checkpoints.load(self.stage, self.event_id, name)
        if result is not None:
            self._saved[name] = result
        return result

    async def save(self, name: str, result: Any) -> None:
        """Record step ``name``'s result; ``None`` cannot be saved (it means "not done")."""
        if result is None:
            raise ValueError("a checkpoint's result cannot be None")
        await self.checkpoints.save(self.stage, self.event_id, name, result)
        self._saved[name] = result
