"""What every stage's ``app.py`` opens: MongoDB, the Kafka producer, the media store, and
the stage bookkeeping on top of them (job store, ledger, checkpoints). A stage adds its
own adapters and handler, and asks for its runner."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from schemas import Event, Topic
from schemas.names import parent_job_id
from services.common.checkpoints import MongoCheckpoints
from services.common.codec import Codec
from services.common.context import subject_id
from services.common.job_store import JOBS, JobStatusRecorder, JobStore
from services.common.kafka import KafkaEmitter
from services.common.leases import MongoLeases
from services.common.ledger import MongoLedger
from services.common.media_store import MediaStore
from services.common.mongo import Doc, open_database
from services.common.obs import stats
from services.common.retry import RetryPolicy
from services.common.settings import Settings
from services.common.stage import FailureFactory, Handler, InvalidAnswer, StageRunner


@dataclass(frozen=True)
class StageAdapters:
    settings: Settings
    db: AsyncDatabase[Doc]
    emitter: KafkaEmitter
    media: MediaStore
    jobs: JobStore
    ledger: MongoLedger
    checkpoints: MongoCheckpoints
    leases: MongoLeases

    def runner(
        self,
        stage: str,
        topic: Topic,
        handler: Handler,
        on_failure: FailureFactory,
        *,
        on_invalid: InvalidAnswer | None = None,
        deadline_s: float = 900.0,
        record_as: Callable[[Event], str] | None = None,
        cancellable: bool = True,
    ) -> StageRunner:
        return StageRunner(
            stage=stage,
            codec=Codec.for_topic(topic, self.settings.max_message_bytes),
            handler=handler,
            on_failure=on_failure,
            emitter=self.emitter,
            dead_letters=self.emitter,
            ledger=self.ledger,
            checkpoints=self.checkpoints,
            retry=RetryPolicy.from_settings(self.settings),
            status=JobStatusRecorder(self.jobs),
            on_invalid=on_invalid,
            deadline_s=deadline_s,
            record_as=record_as,
            cancelled=self.cancelled if cancellable else None,
            leases=self.leases,
        )

    async def cancelled(self, event: Event) -> bool:
        """Whether the job ``event`` belongs to was cancelled (one indexed read)."""
        job_id = parent_job_id(subject_id(event))
        doc = await self.db[JOBS].find_one({"_id": job_id}, {"status": 1})
        return doc is not None and doc.get("status") == "CANCELLED"


async def open_stage_adapters(
    stack: AsyncExitStack, settings: Settings, client_id: str
) -> StageAdapters:
    """Opened on ``stack``, so whatever opened is closed with it, also when a later
    adapter fails to open."""
    db = await stack.enter_async_context(open_database(settings, client_id))
    jobs, ledger, checkpoints = JobStore(db), MongoLedger(db), MongoCheckpoints(db)
    for ensure in (jobs.ensure_indexes, checkpoints.ensure_indexes):
        await ensure()
    await stack.enter_async_context(ledger.retained())
    # Provider calls and cache look-ups, counted for the console's last hour.
    await stack.enter_async_context(stats.recording(db))
    emitter = await stack.enter_async_context(KafkaEmitter(settings, client_id))
    media = await stack.enter_async_context(MediaStore.from_settings(settings))
    leases = MongoLeases(db, worker_id=settings.worker_id)
    return StageAdapters(settings, db, emitter, media, jobs, ledger, checkpoints, leases)
