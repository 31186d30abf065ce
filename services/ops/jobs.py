"""Jobs for operators: every tenant's, listed and read in full (stage records with their
operator detail, the timeline, webhook attempts, media links), retried and cancelled
through the job API's own rules (``JobControl``), each retry and cancel recorded with who
did it (collection ``ops_actions``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from schemas.codes import Code
from services.common.errors import PermanentError
from services.common.job_store import STAGES, JobStore
from services.common.media_types import content_type_for
from services.common.mongo import Doc
from services.common.ports import MediaPort
from services.lifecycle.store import OUTCOMES, ProductionJobs
from services.ops.actions import ActionRecord, Actor
from services.ops.job_detail import (
    RETRYABLE,
    JobDetail,
    JobPage,
    JobRow,
    MediaLink,
    StageRow,
    TimelineEntry,
    WebhookAttempt,
    cancellable,
    media_keys,
    outcome_entries,
    retryable_stages,
    stage_rows,
    timeline,
    webhook_attempts,
)
from services.submitter.jobs.control import JOBS, JobControl, JobNotFound
from services.submitter.jobs.view import JobView, job_view, voice_job_id

__all__ = [
    "OPS_ACTIONS",
    "ActionRecord",
    "Actor",
    "JobDetail",
    "JobPage",
    "JobRow",
    "MediaLink",
    "NotRetryable",
    "OpsJobs",
    "StageRow",
    "TimelineEntry",
    "WebhookAttempt",
]

OPS_ACTIONS = "ops_actions"
# Outcomes a timeline shows at most (a job has a few dozen).
OUTCOMES_MAX = 500


class NotRetryable(PermanentError):
    """A stage the job API cannot retry at all (as opposed to not now: JobFinished)."""

    public = True
    code = Code.INVALID_REQUEST


def _row(view: JobView, tenant_id: str) -> JobRow:
    code, message = _error(view)
    return JobRow(
        job_id=view.job_id,
        tenant_id=tenant_id,
        kind=view.kind,
        status=view.status,
        created_at=view.created_at,
        updated_at=view.updated_at,
        progress=view.progress,
        error_code=code,
        error_message=message,
    )


def _error(view: JobView) -> tuple[str | None, str | None]:
    if isinstance(view.error, Mapping):
        return _text(view.error.get("code")), _text(view.error.get("message"))

    # A failed attempt that a later attempt of the same stage made good (audio.a1 failed,
    # audio.a2 completed) is history, not the job's error: the newest unanswered failure.
    def family(name: str) -> str:
        return name.split(".", 1)[0]

    def when(stage: Any) -> datetime:
        at = stage.updated_at
        return at if isinstance(at, datetime) else datetime.min.replace(tzinfo=UTC)

    completed_at: dict[str, datetime] = {}
    for stage in view.stages:
        if stage.status == "COMPLETED":
            completed_at[family(stage.name)] = max(when(stage), completed_at.get(
                family(stage.name), datetime.min.replace(tzinfo=UTC)))  # fmt: skip
    open_failures = [
        stage for stage in view.stages
        if stage.error and when(stage) > completed_at.get(family(stage.name),
                                                          datetime.min.replace(tzinfo=UTC))
    ]  # fmt: skip
    if open_failures:
        stage = max(open_failures, key=when)
        assert stage.error is not None
        return _text(stage.error.get("code")), _text(stage.error.get("message"))
    return None, None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class OpsJobs:
    def __init__(
        self, db: AsyncDatabase[Doc], control: JobControl, media: MediaPort, url_expiry_s: int
    ) -> None:
        self._db = db
        self._jobs = db[JOBS]
        self._stages = db[STAGES]
        self._outcomes = db[OUTCOMES]
        self._actions = db[OPS_ACTIONS]
        self._store = JobStore(db)
        self._production = ProductionJobs(db)
        self._control = control
        self._media = media
        self._url_expiry_s = url_expiry_s

    async def ensure_indexes(self) -> None:
        await self._actions.create_index([("job_id", ASCENDING), ("at", ASCENDING)])

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
    ) -> JobPage:
        """Every tenant's jobs (or one tenant's), newest first, a page at a time. Filters
        are the job API's: ``status`` matches the status a job document carries (production
        jobs); a stage job's status is its stage record's, shown but not filtered on."""
        base: Doc = {} if tenant is None else {"tenant_id": tenant}
        page = await self._control.page(
            base,
            status=status,
            kind=kind,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
        stages = await self._stages_of([str(d["_id"]) for d in page.jobs])
        rows = []
        for doc in page.jobs:
            job_id = str(doc["_id"])
            view = await job_view(
                doc,
                stages.get(job_id, {}),
                stages.get(voice_job_id(job_id), {}),
                self._media,
                self._url_expiry_s,
            )
            rows.append(_row(view, str(doc.get("tenant_id", ""))))
        return JobPage(rows, page.next_cursor)

    async def detail(self, job_id: str) -> JobDetail | None:
        """Any tenant's job, in full; None when there is no such job."""
        doc = await self._jobs.find_one({"_id": job_id})
        if doc is None:
            return None
        job = doc
        if doc.get("kind") == "production":
            found = await self._production.state(job_id, doc)
            if found is not None:
                job = found[0]
        voice_id = voice_job_id(job_id)
        both = await self._store.stages_of(job_id, voice_id)
        stages, voice = both[job_id], both[voice_id]
        view = await job_view(job, stages, voice, self._media, self._url_expiry_s)
        rows = stage_rows(stages, voice)
        outcomes = await self._outcome_docs(job_id)
        actions = await self._action_records(job_id)
        audio_keys, video_key = media_keys(job, stages, voice)
        row = _row(view, str(doc.get("tenant_id", "")))
        return JobDetail(
            **vars(row),
            stages=rows,
            timeline=timeline(job, rows, outcome_entries(doc, outcomes), actions),
            audio=[await self._link(label, key) for label, key in audio_keys],
            video=await self._link(*video_key) if video_key else None,
            webhooks=webhook_attempts(doc),
            retryable_stages=retryable_stages({**job, "status": view.status}),
            cancellable=cancellable(job, view.status),
            trace_id=_text(doc.get("trace_id")),
            actions=[*actions],
        )

    async def retry(self, job_id: str, stage: str, actor: Actor) -> JobDetail:
        """Retry a stage as the job API would; PermanentError (public) when not allowed."""
        if stage not in RETRYABLE:
            raise NotRetryable(
                f"stage {stage!r} cannot be retried; retryable: {', '.join(RETRYABLE)}"
            )
        tenant = await self._tenant_of(job_id)
        done = await self._control.retry_audio(tenant, job_id)
        attempt = (done.get("audio") or {}).get("attempt")
        found = await self._production.state(job_id)
        if found is not None:
            attempt = (found[0].get("audio") or {}).get("attempt", attempt)
        await self._record(
            job_id, tenant, actor, "retry", f"{stage}: attempt {attempt}" if attempt else stage
        )
        return await self._detail(job_id)

    async def cancel(self, job_id: str, actor: Actor) -> JobDetail:
        tenant = await self._tenant_of(job_id)
        await self._control.cancel(tenant, job_id)
        await self._record(job_id, tenant, actor, "cancel", "cancelled")
        return await self._detail(job_id)

    async def _detail(self, job_id: str) -> JobDetail:
        detail = await self.detail(job_id)
        if detail is None:
            raise JobNotFound(f"no job {job_id[:64]!r}")
        return detail

    async def _tenant_of(self, job_id: str) -> str:
        doc = await self._jobs.find_one({"_id": job_id}, {"tenant_id": 1})
        if doc is None:
            raise JobNotFound(f"no job {job_id[:64]!r}")
        return str(doc["tenant_id"])

    async def _record(
        self, job_id: str, tenant: str, actor: Actor, action: str, detail: str
    ) -> None:
        await self._actions.insert_one(
            {
                "job_id": job_id,
                "tenant_id": tenant,
                "action": action,
                "actor": actor.label,
                "actor_key_id": actor.key_id,
                "at": datetime.now(UTC),
                "detail": detail,
            }
        )

    async def _action_records(self, job_id: str) -> Sequence[ActionRecord]:
        found = self._actions.find({"job_id": job_id}).sort([("at", ASCENDING)])
        return [
            ActionRecord(d["at"], str(d["actor"]), str(d["action"]), str(d["detail"]))
            async for d in found
        ]

    async def _outcome_docs(self, job_id: str) -> Sequence[Doc]:
        found = self._outcomes.find({"job_id": job_id}).sort(
            [("seq", ASCENDING), ("_id", ASCENDING)]
        )
        return [d async for d in found.limit(OUTCOMES_MAX)]

    async def _stages_of(self, job_ids: Sequence[str]) -> dict[str, dict[str, Doc]]:
        """Stage records of these jobs and their voiceovers, by job id and stage name."""
        if not job_ids:
            return {}
        wanted = [*job_ids, *(voice_job_id(j) for j in job_ids)]
        out: dict[str, dict[str, Doc]] = {}
        async for d in self._stages.find({"job_id": {"$in": wanted}}):
            out.setdefault(str(d["job_id"]), {})[str(d["stage"])] = d
        return out

    async def _link(self, label: str, key: str) -> MediaLink:
        url = await self._media.presign_get(key, self._url_expiry_s)
        return MediaLink(label, url, content_type_for(key))
