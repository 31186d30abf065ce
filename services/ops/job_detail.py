"""What an operator sees of a job, as pure functions of its documents: each stage's record
with its times, a timeline (the job, its stages, the lifecycle's outcomes, operators'
actions) ordered by time, its webhook attempts, the media it made, and what may be done
to it now."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import ValidationError

from schemas import decode_event
from services.common.media_types import content_type_for
from services.lifecycle.plan import TERMINAL, Outcome, Retry, VideoOverdue, apply, holds, put
from services.ops.actions import ActionRecord

Doc = dict[str, Any]
# What the job API retries today (``POST /v1/jobs/{id}/retry?stage=audio``).
RetryableStage = Literal["audio"]
RETRYABLE: tuple[str, ...] = get_args(RetryableStage)
AUDIO = RETRYABLE[0]
# The media a job detail links to at most (each a presigned URL).
MEDIA_MAX = 60


@dataclass(frozen=True)
class JobRow:
    job_id: str
    tenant_id: str
    kind: str
    status: str
    created_at: datetime | None
    updated_at: datetime | None
    progress: int
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True)
class StageRow:
    name: str
    status: str
    attempt: int
    progress: int | None
    note: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    error_code: str | None
    error_message: str | None
    operator_detail: str | None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    name: str
    detail: str
    duration_ms: int | None  # how long what ended here took (a stage, the whole job)


@dataclass(frozen=True)
class MediaLink:
    label: str
    url: str
    content_type: str


@dataclass(frozen=True)
class WebhookAttempt:
    at: datetime | None
    stage: str  # the webhook's type: job.completed, job.failed, stage.completed, ...
    status_code: int | None
    outcome: str
    error: str | None


@dataclass(frozen=True)
class JobPage:
    jobs: list[JobRow]
    next_cursor: str | None


@dataclass(frozen=True)
class JobDetail(JobRow):
    stages: list[StageRow]
    timeline: list[TimelineEntry]
    audio: list[MediaLink]
    video: MediaLink | None
    webhooks: list[WebhookAttempt]
    retryable_stages: list[str]
    cancellable: bool
    trace_id: str | None
    actions: list[ActionRecord]


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(round((end - start).total_seconds() * 1000), 0)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def stage_error(doc: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The public error of a stage record: from the failure event it emitted, or the
    submitter's note that the job could not be queued."""
    for out in reversed(doc.get("outputs") or []):
        if isinstance(out, dict) and isinstance(out.get("error"), dict):
            return out["error"].get("code"), out["error"].get("message")
    if isinstance(doc.get("error"), str):
        return "submit_failed", doc["error"]
    return None, None


def stage_row(name: str, doc: Mapping[str, Any]) -> StageRow:
    status = str(doc.get("status", "PENDING"))
    raw = doc.get("progress")
    progress: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    started = doc.get("created_at")
    finished = doc.get("updated_at") if status in TERMINAL else None
    percent = 100 if status == "COMPLETED" else _int(progress.get("percent"))
    code, message = stage_error(doc)
    return StageRow(
        name=name,
        status=status,
        attempt=_int(doc.get("attempt_of_job")) or _int(progress.get("attempt")) or 1,
        progress=percent,
        note=progress.get("note"),
        started_at=started,
        finished_at=finished,
        duration_ms=_ms(started, finished),
        error_code=code,
        error_message=message,
        operator_detail=doc.get("operator_detail"),
    )


def stage_rows(stages: Mapping[str, Doc], voice: Mapping[str, Doc]) -> list[StageRow]:
    """Every record, named as the job API names them (a voiceover's under ``voiceover``)."""
    rows = [stage_row(name, doc) for name, doc in sorted(stages.items())]
    rows += [
        stage_row("voiceover" if name == AUDIO else f"voiceover.{name}", doc)
        for name, doc in sorted(voice.items())
    ]
    return rows


def decode_outcome(body: Mapping[str, Any]) -> Outcome | None:
    """A ``job_outcomes`` body as the lifecycle reads it; None for one it cannot read."""
    if "retry" in body:
        return Retry(int(body["retry"]))
    if "overdue" in body:
        return VideoOverdue(int(body["overdue"]))
    try:
        return decode_event(json.dumps(dict(body), default=str).encode())
    except (ValueError, ValidationError, LookupError):
        return None


def _outcome_name(outcome: Outcome | None, body: Mapping[str, Any]) -> str:
    if isinstance(outcome, Retry):
        return "audio retry"
    if isinstance(outcome, VideoOverdue):
        return "video overdue"
    name = str(body.get("event_type") or "outcome")
    step = body.get("step")
    return f"{name} ({step})" if step else name


def outcome_entries(job: Doc, outcomes: Sequence[Mapping[str, Any]]) -> list[TimelineEntry]:
    """One entry per recorded outcome (in the order recorded), saying what it did to the
    job as the lifecycle folds it, or that it changed nothing (late or repeated)."""
    state = json.loads(json.dumps(job, default=str))
    out = []
    for doc in outcomes:
        body = doc.get("body") or {}
        outcome = decode_outcome(body)
        update = apply(state, outcome) if outcome is not None else None
        if update is not None and holds(state, update.guard):
            for path, value in update.set.items():
                put(state, path, value)
            detail = update.note
        elif outcome is None:
            detail = "an outcome the lifecycle cannot read"
        else:
            detail = "no effect (late or repeated)"
        error = body.get("error")
        if isinstance(error, dict) and error.get("code") and str(error["code"]) not in detail:
            detail += f": {error['code']}"
        if isinstance(doc.get("seq"), datetime):
            out.append(TimelineEntry(doc["seq"], _outcome_name(outcome, body), detail, None))
    return out


def timeline(
    job: Mapping[str, Any],
    stages: Iterable[StageRow],
    outcomes: Iterable[TimelineEntry],
    actions: Iterable[ActionRecord],
) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    created = job.get("created_at")
    if isinstance(created, datetime):
        entries.append(TimelineEntry(created, "job submitted", str(job.get("kind", "")), None))
    for row in stages:
        if row.started_at is not None:
            entries.append(
                TimelineEntry(row.started_at, f"{row.name} started", f"attempt {row.attempt}", None)
            )
        if row.finished_at is not None:
            detail = row.status.lower() + (f": {row.error_code}" if row.error_code else "")
            entries.append(
                TimelineEntry(
                    row.finished_at, f"{row.name} {row.status.lower()}", detail, row.duration_ms
                )
            )
    entries += outcomes
    entries += [
        TimelineEntry(a.at, f"operator {a.action}", f"{a.actor}: {a.detail}", None) for a in actions
    ]
    status, updated = job.get("status"), job.get("updated_at")
    if status in TERMINAL and isinstance(updated, datetime):
        raw = job.get("error")
        error: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        detail = str(status).lower() + (f": {error.get('code')}" if error.get("code") else "")
        ms = _ms(created if isinstance(created, datetime) else None, updated)
        entries.append(TimelineEntry(updated, f"job {str(status).lower()}", detail, ms))
    return sorted(entries, key=lambda e: e.at)


def webhook_attempts(job: Mapping[str, Any]) -> list[WebhookAttempt]:
    return [
        WebhookAttempt(
            at=w.get("at"),
            stage=str(w.get("type", "")),
            status_code=_int(w.get("status")),
            outcome=str(w.get("outcome", "")),
            error=w.get("error") or w.get("reason"),
        )
        for w in job.get("webhooks") or []
        if isinstance(w, dict)
    ]


def media_keys(
    job: Mapping[str, Any], stages: Mapping[str, Doc], voice: Mapping[str, Doc]
) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """(label, key) of the audio a job made, and of its video (the result, else the
    video): its outputs first, then what each stage's events name."""
    found: dict[str, str] = {}
    for name, key in (job.get("outputs") or {}).items():
        if isinstance(key, str):
            found.setdefault(key, str(name))
    for prefix, records in (("", stages), ("voiceover ", voice)):
        for stage, doc in sorted(records.items()):
            for out in doc.get("outputs") or []:
                if not isinstance(out, dict):
                    continue
                for seg in out.get("segments") or []:
                    if isinstance(seg, dict) and isinstance(seg.get("s3_key"), str):
                        scene = int(seg.get("scene_index", 0)) + 1
                        found.setdefault(seg["s3_key"], f"{prefix}{stage} scene {scene}")
                if isinstance(out.get("s3_key"), str):
                    found.setdefault(out["s3_key"], f"{prefix}{stage}")
    audio = [
        (label, key) for key, label in found.items() if content_type_for(key).startswith("audio/")
    ]
    videos = {
        label: key for key, label in found.items() if content_type_for(key).startswith("video/")
    }
    chosen = next((n for n in ("result", "video") if n in videos), next(iter(videos), None))
    return audio[:MEDIA_MAX], (chosen, videos[chosen]) if chosen is not None else None


def retryable_stages(job: Mapping[str, Any]) -> list[str]:
    """What the job API would retry now: the audio of a completed production job that
    asked for audio (``JobControl.retry_audio``'s rules)."""
    if job.get("kind") != "production" or job.get("status") != "COMPLETED":
        return []
    spec = job.get("spec") or {}
    return [AUDIO] if spec.get("feature", {}).get("audio", True) else []


def cancellable(job: Mapping[str, Any], status: str) -> bool:
    return status not in TERMINAL and job.get("status") not in TERMINAL
