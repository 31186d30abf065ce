"""In-memory stand-ins for the operator service layer behind the console (jobs, dead
letters, pipeline figures), with sample records, for the console's route tests."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.errors import PermanentError
from services.ops.actions import ActionRecord, Actor
from services.ops.dlq import DeadLetter, DeadLetterSettled, DlqTopic, InvalidReplay
from services.ops.jobs import (
    JobDetail,
    JobPage,
    JobRow,
    MediaLink,
    StageRow,
    TimelineEntry,
    WebhookAttempt,
)
from services.ops.pipeline import (
    CacheStats,
    ClipStats,
    LagRow,
    PipelineStats,
    ProviderStats,
    StageStats,
)
from services.submitter.jobs.control import JobFinished

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
DLQ = "tapedeck.clip.requests.dlq"


def stage(name: str, status: str = "COMPLETED", **extra: Any) -> StageRow:
    base: dict[str, Any] = {
        "name": name,
        "status": status,
        "attempt": 1,
        "progress": 100 if status == "COMPLETED" else 40,
        "note": None,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=3) if status in ("COMPLETED", "FAILED") else None,
        "duration_ms": 3000 if status in ("COMPLETED", "FAILED") else None,
        "error_code": None,
        "error_message": None,
        "operator_detail": None,
    }
    return StageRow(**{**base, **extra})


def job(job_id: str = "job-1", **extra: Any) -> JobDetail:
    base: dict[str, Any] = {
        "job_id": job_id,
        "tenant_id": "acme",
        "kind": "production",
        "status": "COMPLETED",
        "created_at": T0,
        "updated_at": T0 + timedelta(seconds=9),
        "progress": 100,
        "error_code": None,
        "error_message": None,
        "stages": [stage("merge.concat")],
        "timeline": [
            TimelineEntry(T0, "job submitted", "production", None),
            TimelineEntry(T0 + timedelta(seconds=9), "job completed", "completed", 9000),
        ],
        "audio": [],
        "video": None,
        "webhooks": [],
        "retryable_stages": [],
        "cancellable": False,
        "trace_id": None,
        "actions": [],
    }
    return JobDetail(**{**base, **extra})


def failed_audio_job(job_id: str = "job-audio") -> JobDetail:
    """A production job whose audio failed: the job completed with the video alone."""
    message = "Audio generation failed: the music provider refused the request."
    return job(
        job_id,
        error_code="provider_error",
        error_message=message,
        stages=[
            stage("merge.concat"),
            stage(
                "audio",
                "FAILED",
                error_code="provider_error",
                error_message=message,
                operator_detail="ProviderError: fal submit answered 500 (GPU pool exhausted)",
            ),
        ],
        audio=[MediaLink("audio scene 1", "http://s3.test/a1.wav?sig=1", "audio/wav")],
        video=MediaLink("result", "http://s3.test/result.mp4?sig=1", "video/mp4"),
        webhooks=[WebhookAttempt(T0, "job.completed", 500, "retry", "HTTP 500")],
        retryable_stages=["audio"],
    )


def row_of(detail: JobDetail) -> JobRow:
    return JobRow(**{f.name: getattr(detail, f.name) for f in fields(JobRow)})


class FakeJobs:
    def __init__(self, *jobs: JobDetail) -> None:
        self.jobs = {j.job_id: j for j in jobs}
        self.listed: list[dict[str, Any]] = []
        self.acted: list[tuple[str, str, str | None, Actor]] = []
        self.fail_with: Exception | None = None

    async def list(self, **query: Any) -> JobPage:
        self.listed.append(query)
        if self.fail_with is not None:
            raise self.fail_with
        rows = [
            row_of(j)
            for j in self.jobs.values()
            if all(
                query.get(name) in (None, value)
                for name, value in (
                    ("status", j.status),
                    ("kind", j.kind),
                    ("tenant", j.tenant_id),
                )
            )
        ]
        return JobPage(rows, "next-page" if len(rows) > query.get("limit", 50) else None)

    async def detail(self, job_id: str) -> JobDetail | None:
        if self.fail_with is not None:
            raise self.fail_with
        return self.jobs.get(job_id)

    async def retry(self, job_id: str, stage: str, actor: Actor) -> JobDetail:
        current = self.jobs[job_id]
        if stage not in current.retryable_stages:
            raise JobFinished(f"stage {stage} cannot be retried now")
        self.acted.append(("retry", job_id, stage, actor))
        record = ActionRecord(T0, actor.label, "retry", f"{stage}: attempt 2")
        done = replace(current, status="RUNNING", retryable_stages=[], actions=[record])
        self.jobs[job_id] = done
        return done

    async def cancel(self, job_id: str, actor: Actor) -> JobDetail:
        current = self.jobs[job_id]
        if not current.cancellable:
            raise JobFinished(f"the job already ended ({current.status})")
        self.acted.append(("cancel", job_id, None, actor))
        done = replace(current, status="CANCELLED", cancellable=False)
        self.jobs[job_id] = done
        return done


def letter(offset: int, value: bytes, **extra: Any) -> DeadLetter:
    base: dict[str, Any] = {
        "topic": DLQ,
        "partition": 0,
        "offset": offset,
        "timestamp": T0,
        "key": b"req-1",
        "value": value,
        "headers": {"dlq.error": "malformed event: invalid JSON", "dlq.stage": "clipper"},
        "error": "malformed event: invalid JSON",
        "stage": "clipper",
        "original_topic": "tapedeck.clip.requests",
        "first_seen": T0,
        "attempts": 1,
        "state": "pending",
        "actions": [],
    }
    return DeadLetter(**{**base, **extra})


class FakeDeadLetters:
    """Replays check an edited body the way the real layer's codec would, in short: it
    must be a JSON object naming its ``event_type``."""

    def __init__(self, *letters: DeadLetter) -> None:
        self.letters = {(d.partition, d.offset): d for d in letters}
        self.replayed: list[tuple[str, bytes | None, Actor]] = []
        self.discarded: list[tuple[str, Actor]] = []

    async def topics(self) -> list[DlqTopic]:
        pending = sum(1 for d in self.letters.values() if d.state == "pending")
        return [DlqTopic(DLQ, "tapedeck.clip.requests", len(self.letters), pending)]

    async def list(self, dlq_topic: str, *, limit: int = 100) -> list[DeadLetter]:
        return [d for d in self.letters.values() if d.topic == dlq_topic][:limit]

    async def get(self, dlq_topic: str, partition: int, offset: int) -> DeadLetter | None:
        found = self.letters.get((partition, offset))
        return found if found is not None and found.topic == dlq_topic else None

    def _pending(self, partition: int, offset: int) -> DeadLetter:
        found = self.letters[(partition, offset)]
        if found.state != "pending":
            raise DeadLetterSettled(f"the dead letter {found.ref} was already {found.state}")
        return found

    def _settle(self, found: DeadLetter, state: str, actor: Actor, detail: str) -> DeadLetter:
        record = ActionRecord(T0 + timedelta(minutes=5), actor.label, state, detail)
        done = replace(found, state=state, actions=[record])
        self.letters[(found.partition, found.offset)] = done
        return done

    async def replay(
        self,
        dlq_topic: str,
        partition: int,
        offset: int,
        actor: Actor,
        body: bytes | None = None,
    ) -> DeadLetter:
        found = self._pending(partition, offset)
        if body is not None:
            try:
                doc = json.loads(body)
            except ValueError as exc:
                raise InvalidReplay(f"the edited event is not valid: invalid JSON ({exc})") from exc
            if not isinstance(doc, dict) or "event_type" not in doc:
                raise InvalidReplay("the edited event is not valid: event_type is required")
        self.replayed.append((found.ref, body, actor))
        return self._settle(found, "replayed", actor, f"replayed to {found.original_topic}")

    async def discard(
        self, dlq_topic: str, partition: int, offset: int, actor: Actor
    ) -> DeadLetter:
        found = self._pending(partition, offset)
        self.discarded.append((found.ref, actor))
        return self._settle(found, "discarded", actor, "discarded")


def pipeline_figures() -> PipelineStats:
    return PipelineStats(
        window_s=3600,
        stages=[
            StageStats("clip", 120, 118, 2, 850, 2400),
            StageStats("audio", 30, 29, 1, 41_000, 95_000),
        ],
        lag=[LagRow("tapedeck-clipper", "tapedeck.clip.requests", 0, 7)],
        providers=[ProviderStats("fal", 40, 4, 0.1)],
        caches=[CacheStats("clip", 75, 25, 0.75), CacheStats("generation", 9, 1, 0.9)],
        top_clips=[ClipStats("acme", "ep-42", 60_000, 30_000, 17)],
    )


class Broken(PermanentError):
    """An internal failure whose message must never reach a page."""

    code = "s3_error"
