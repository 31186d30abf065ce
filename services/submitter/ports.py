"""What the submitter's handlers need from the outside world; adapters provide it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from services.common.clips import ClipPlan
from services.common.episodes import Episode
from services.common.job_store import StageStatus
from services.common.media_store import ObjectInfo
from services.common.mongo import Doc


class EpisodeReader(Protocol):
    async def get(self, episode_id: str) -> Episode | None: ...


class ClipCache(Protocol):
    async def find(self, plan: ClipPlan) -> Doc | None: ...

    async def log_request(self, plan: ClipPlan, tenant_id: str, cache_hit: bool) -> None: ...


class Objects(Protocol):
    async def head(self, key: str) -> ObjectInfo | None: ...

    async def presign_get(self, key: str, expires_s: int) -> str: ...


class Jobs(Protocol):
    async def create_job(
        self, job_id: str, tenant_id: str, kind: str, fields: Mapping[str, Any]
    ) -> bool: ...

    async def transition(
        self, job_id: str, stage: str, target: StageStatus, fields: Mapping[str, Any] | None = None
    ) -> bool: ...

    async def job(self, job_id: str) -> Doc | None: ...
