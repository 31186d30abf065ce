"""The operator API's (``/v1/ops``) request and response models, built from the operator
service layer's records (``services.ops``)."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from services.ops.actions import ActionRecord
from services.ops.dlq import DeadLetter, DlqTopic
from services.ops.job_detail import JobDetail, JobRow
from services.ops.pipeline import PipelineStats
from services.ops.topics import TopicInfo

# What a listed dead letter shows of its body; the whole is in its own answer.
PREVIEW_CHARS = 200


class ActionOut(BaseModel):
    at: datetime
    actor: str = Field(description="The operator key's name and id")
    action: str
    detail: str

    @classmethod
    def of(cls, a: ActionRecord) -> Self:
        return cls(at=a.at, actor=a.actor, action=a.action, detail=a.detail)


class OpsJobRowOut(BaseModel):
    job_id: str
    tenant_id: str
    kind: str
    status: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    progress: int = Field(ge=0, le=100)
    error_code: str | None = None
    error_message: str | None = None

    @classmethod
    def of(cls, row: JobRow) -> Self:
        return cls(
            job_id=row.job_id,
            tenant_id=row.tenant_id,
            kind=row.kind,
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
            progress=row.progress,
            error_code=row.error_code,
            error_message=row.error_message,
        )


class OpsJobListOut(BaseModel):
    jobs: list[OpsJobRowOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class OpsStageOut(BaseModel):
    name: str
    status: str
    attempt: int
    progress: int | None = None
    note: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    operator_detail: str | None = Field(
        default=None, description="What went wrong, for operators only (never shown to tenants)"
    )


class TimelineEntryOut(BaseModel):
    at: datetime
    name: str
    detail: str
    duration_ms: int | None = Field(
        default=None, description="How long what ended here took (a stage, the whole job)"
    )


class MediaLinkOut(BaseModel):
    label: str
    url: str = Field(description="A presigned URL")
    content_type: str


class WebhookAttemptOut(BaseModel):
    at: datetime | None = None
    stage: str = Field(description="The webhook's type (job.completed, stage.failed, ...)")
    status_code: int | None = None
    outcome: str
    error: str | None = None


class OpsJobOut(OpsJobRowOut):
    stages: list[OpsStageOut]
    timeline: list[TimelineEntryOut]
    audio: list[MediaLinkOut]
    video: MediaLinkOut | None = None
    webhooks: list[WebhookAttemptOut]
    retryable_stages: list[str] = Field(description="Stages POST .../retry?stage= takes now")
    cancellable: bool
    trace_id: str | None = None
    actions: list[ActionOut] = Field(description="Operators' retries and cancels")

    @classmethod
    def of_detail(cls, d: JobDetail) -> Self:
        return cls(
            **OpsJobRowOut.of(d).model_dump(),
            stages=[OpsStageOut.model_validate(s, from_attributes=True) for s in d.stages],
            timeline=[TimelineEntryOut.model_validate(t, from_attributes=True) for t in d.timeline],
            audio=[MediaLinkOut.model_validate(a, from_attributes=True) for a in d.audio],
            video=MediaLinkOut.model_validate(d.video, from_attributes=True) if d.video else None,
            webhooks=[
                WebhookAttemptOut.model_validate(w, from_attributes=True) for w in d.webhooks
            ],
            retryable_stages=d.retryable_stages,
            cancellable=d.cancellable,
            trace_id=d.trace_id,
            actions=[ActionOut.of(a) for a in d.actions],
        )


class DlqTopicOut(BaseModel):
    name: str = Field(description="The dead-letter topic, as named on the cluster")
    original_topic: str
    messages: int = Field(description="Dead letters the topic holds now")
    pending: int = Field(description="Of those, neither replayed nor discarded")

    @classmethod
    def of(cls, t: DlqTopic) -> Self:
        return cls(
            name=t.name, original_topic=t.original_topic, messages=t.messages, pending=t.pending
        )


class DlqTopicListOut(BaseModel):
    topics: list[DlqTopicOut]


class DeadLetterSummaryOut(BaseModel):
    topic: str
    partition: int
    offset: int
    ref: str = Field(description="partition-offset")
    timestamp: datetime
    key: str | None = Field(description="The record key as text (bad bytes escaped)")
    error: str
    stage: str
    original_topic: str
    first_seen: datetime | None = None
    attempts: int
    state: str = Field(description="pending, replayed or discarded")
    size: int = Field(description="The body's size in bytes")
    truncated: bool = Field(description="Only the first bytes of a too large message are held")
    preview: str = Field(description=f"The body's first {PREVIEW_CHARS} characters")

    @classmethod
    def of(cls, d: DeadLetter) -> Self:
        text = d.value.decode("utf-8", errors="backslashreplace")
        key = d.key.decode("utf-8", errors="backslashreplace") if d.key is not None else None
        return cls(
            topic=d.topic,
            partition=d.partition,
            offset=d.offset,
            ref=d.ref,
            timestamp=d.timestamp,
            key=key,
            error=d.error,
            stage=d.stage,
            original_topic=d.original_topic,
            first_seen=d.first_seen,
            attempts=d.attempts,
            state=d.state,
            size=len(d.value),
            truncated=d.truncated,
            preview=text[:PREVIEW_CHARS],
        )


class DeadLetterListOut(BaseModel):
    topic: str
    dead_letters: list[DeadLetterSummaryOut] = Field(description="Oldest first")


class DeadLetterOut(DeadLetterSummaryOut):
    value: str = Field(description="The body as text (bad bytes escaped)")
    pretty: str = Field(description="The body as indented JSON when it is JSON")
    headers: dict[str, str]
    actions: list[ActionOut]

    @classmethod
    def of_letter(cls, d: DeadLetter) -> Self:
        return cls(
            **DeadLetterSummaryOut.of(d).model_dump(),
            value=d.value.decode("utf-8", errors="backslashreplace"),
            pretty=d.pretty,
            headers=d.headers,
            actions=[ActionOut.of(a) for a in d.actions],
        )


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str | None = Field(
        default=None,
        description="The edited event as JSON text; it must be a valid event for the original "
        "topic (422 invalid_replay otherwise, and nothing is sent). Without it the message "
        "is replayed as it was.",
    )


class StageStatsOut(BaseModel):
    stage: str
    events_in: int
    events_out: int
    failed: int
    p50_ms: int | None = None
    p95_ms: int | None = None


class LagOut(BaseModel):
    group: str
    topic: str
    partition: int
    lag: int


class ProviderStatsOut(BaseModel):
    provider: str
    calls: int
    errors: int
    error_ratio: float


class CacheStatsOut(BaseModel):
    cache: str
    hits: int
    misses: int
    hit_ratio: float


class ClipStatsOut(BaseModel):
    tenant: str
    episode_id: str
    start_ms: int
    duration_ms: int
    requests: int


class PipelineOut(BaseModel):
    window_s: int
    stages: list[StageStatsOut]
    lag: list[LagOut]
    providers: list[ProviderStatsOut]
    caches: list[CacheStatsOut]
    top_clips: list[ClipStatsOut]
    lag_error: str | None = Field(default=None, description="Why the lag is missing, if it is")

    @classmethod
    def of(cls, p: PipelineStats) -> Self:
        return cls.model_validate(p, from_attributes=True)


class GroupOffsetOut(BaseModel):
    committed: int | None = None
    lag: int


class PartitionOut(BaseModel):
    partition: int
    earliest: int
    latest: int
    groups: dict[str, GroupOffsetOut]


class TopicOut(BaseModel):
    name: str
    partitions: list[PartitionOut]


class TopicListOut(BaseModel):
    topics: list[TopicOut]

    @classmethod
    def of(cls, topics: list[TopicInfo]) -> Self:
        return cls.model_validate({"topics": topics}, from_attributes=True)
