"""What the console reads and changes, as ports over the operator service layer
(``services/ops``), so route tests can hand in fakes (``app.dependency_overrides``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends

from services.common.mongo import database
from services.ops.actions import Actor
from services.ops.dlq import DeadLetter, DeadLetterOps, DlqTopic
from services.ops.jobs import JobDetail, JobPage, OpsJobs
from services.ops.pipeline import PipelineStats, pipeline_stats
from services.submitter.http.deps import RuntimeDep
from services.submitter.keys import KeyRepo


class JobsPort(Protocol):
    async def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        tenant: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage: ...

    async def detail(self, job_id: str) -> JobDetail | None: ...

    async def retry(self, job_id: str, stage: str, actor: Actor) -> JobDetail: ...

    async def cancel(self, job_id: str, actor: Actor) -> JobDetail: ...


class DeadLettersPort(Protocol):
    async def topics(self) -> list[DlqTopic]: ...

    async def list(self, dlq_topic: str, *, limit: int = 100) -> list[DeadLetter]: ...

    async def get(self, dlq_topic: str, partition: int, offset: int) -> DeadLetter | None: ...

    async def replay(
        self,
        dlq_topic: str,
        partition: int,
        offset: int,
        actor: Actor,
        body: bytes | None = None,
    ) -> DeadLetter: ...

    async def discard(
        self, dlq_topic: str, partition: int, offset: int, actor: Actor
    ) -> DeadLetter: ...


@dataclass(frozen=True)
class ConsolePorts:
    keys: KeyRepo
    jobs: JobsPort
    dead_letters: DeadLettersPort
    pipeline: Callable[[], Awaitable[PipelineStats]]


def get_console_ports(runtime: RuntimeDep) -> ConsolePorts:
    settings = runtime.settings
    db = database(runtime.mongo, settings)

    async def pipeline() -> PipelineStats:
        return await pipeline_stats(db, settings)

    return ConsolePorts(
        keys=runtime.keys,
        jobs=OpsJobs(db, runtime.control, runtime.media, settings.job_url_expiry_s),
        dead_letters=DeadLetterOps(settings, db),
        pipeline=pipeline,
    )


Ports = Annotated[ConsolePorts, Depends(get_console_ports)]
