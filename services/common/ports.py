"""Every port shared across services: what handlers and the stage runner need from the
outside world. Adapters (``media_store``, ``episodes``, ``clips``, ``job_store``,
``ledger``, ``checkpoints``, ``kafka``, ``ffmpeg``) implement them; the in-memory fakes in
``tests/support/fakes.py`` implement them for unit tests.

Ports only a single stage uses (the clipper's ``Cutter``) stay beside that stage's handler.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from schemas import Event
from services.common.codec import RawMessage

if TYPE_CHECKING:
    from services.common.clip_rules import ClipPlan
    from services.common.episodes import Episode, SeekIndex
    from services.common.ffmpeg import FFmpegResult, ProbeResult
    from services.common.growing import Finisher
    from services.common.job_store import StageStatus
    from services.common.mongo import Doc
    from services.common.seek_scan import PacketIndex

# Seconds from an arbitrary origin that only moves forward (``time.monotonic``).
Clock = Callable[[], float]


# -- Kafka ------------------------------------------------------------------------------------


class Emitter(Protocol):
    async def emit(self, events: Sequence[Event]) -> None:
        """Publish events to their registry topics and wait until the broker has them."""


class DeadLetters(Protocol):
    async def dead_letter(self, msg: RawMessage, headers: list[tuple[str, bytes]]) -> None:
        """Copy ``msg`` to its topic's DLQ with ``headers``; raises if the broker did not
        take it, so the caller does not commit past a message that went nowhere."""


# -- stage bookkeeping ------------------------------------------------------------------------


class Ledger(Protocol):
    async def seen(self, stage: str, event_id: str) -> bool: ...

    async def record(self, stage: str, event_id: str, emitted: Sequence[str]) -> None: ...


class Leases(Protocol):
    """Which process is handling an event right now, one at a time across processes: a
    rebalance can hand an event to a second worker while the first is still at it."""

    ttl_s: float  # a holder renews within this; past it, the lease is free to take

    async def claim(self, stage: str, event_id: str) -> bool: ...

    async def renew(self, stage: str, event_id: str) -> bool: ...

    async def release(self, stage: str, event_id: str) -> None: ...


class StatusRecorder(Protocol):
    """Where a stage records the status of the job or request it works on."""

    async def started(self, stage: str, event: Event) -> None: ...

    async def progress(self, stage: str, event: Event, fields: Mapping[str, Any]) -> None: ...

    async def finished(
        self,
        stage: str,
        event: Event,
        outputs: Sequence[Event],
        failed: bool,
        detail: str | None = None,
    ) -> None:
        """``detail`` is the operator-only account of a failure (never in the events)."""


class Checkpoints(Protocol):
    """Results of a stage's finished steps, keyed by (stage, event id, step), so a retry
    or a redelivery of the same event resumes instead of doing paid work twice."""

    async def load(self, stage: str, event_id: str, step: str) -> Any | None: ...

    async def save(self, stage: str, event_id: str, step: str, result: Any) -> None: ...


class JobRepo(Protocol):
    async def create_job(
        self, job_id: str, tenant_id: str, kind: str, fields: Mapping[str, Any]
    ) -> bool: ...

    async def transition(
        self, job_id: str, stage: str, target: StageStatus, fields: Mapping[str, Any] | None = None
    ) -> bool: ...

    async def record_progress(self, job_id: str, stage: str, fields: Mapping[str, Any]) -> bool: ...

    async def stage(self, job_id: str, stage: str) -> Doc | None: ...

    async def job(self, job_id: str) -> Doc | None: ...

    async def stages_of(self, *job_ids: str) -> dict[str, dict[str, Doc]]: ...


# -- media ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a HEAD request tells about an object. ``key`` is the logical key."""

    key: str
    size: int
    content_type: str | None
    etag: str | None
    last_modified: datetime | None


class MediaPort(Protocol):
    async def head(self, key: str) -> ObjectInfo | None: ...

    async def presign_get(self, key: str, expires_s: int) -> str: ...

    async def upload_file(self, key: str, path: Path, content_type: str | None = None) -> int: ...

    async def upload_growing(
        self,
        key: str,
        path: Path,
        written: Awaitable[None],
        content_type: str | None = None,
        finish: Finisher | None = None,
        check: Callable[[], Awaitable[None]] | None = None,
    ) -> int: ...

    async def download_file(
        self,
        key: str,
        path: str | os.PathLike[str],
        start: int | None = None,
        end: int | None = None,
    ) -> int: ...

    async def delete(self, key: str) -> None: ...

    async def copy(self, src: str, dst: str) -> None: ...


class FFmpegPort(Protocol):
    """The one ffmpeg process path (``services.common.ffmpeg.FFmpeg``)."""

    def input(self, source: str | os.PathLike[str], **kwargs: Any) -> Any: ...

    async def run(self, stream_or_argv: Any, *, timeout_s: float | None = None) -> FFmpegResult: ...

    async def probe(
        self, path_or_url: str | os.PathLike[str], *, timeout_s: float | None = None
    ) -> ProbeResult: ...

    async def packet_index(
        self, path: str | os.PathLike[str], step_ms: int = 1000
    ) -> PacketIndex: ...

    def temp_workdir(self, prefix: str = "tapedeck-") -> AbstractAsyncContextManager[Path]: ...


# -- episodes and clips -----------------------------------------------------------------------


class EpisodeRepo(Protocol):
    """Episodes by (tenant, id): another tenant's episode is simply not there."""

    async def get(self, tenant_id: str, episode_id: str) -> Episode | None: ...

    async def seek_index(self, tenant_id: str, episode_id: str) -> SeekIndex | None: ...


class ClipRepo(Protocol):
    async def find(self, plan: ClipPlan) -> Doc | None: ...

    async def insert(self, plan: ClipPlan, size_bytes: int, generation_ms: int) -> Doc: ...

    async def log_request(self, plan: ClipPlan, tenant_id: str, cache_hit: bool) -> None: ...
