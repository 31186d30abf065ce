"""A webhook delivery as pure functions: the body a job outcome (or, for jobs that ask,
a stage outcome) becomes, its stable id, what one attempt records, and when a failed
delivery is tried again."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas.audio import AudioFailed, AudioRendered
from schemas.job import JobCompleted, JobFailed
from schemas.merge import MergeCompleted, MergeFailed
from schemas.names import VOICEOVER_SUFFIX, parent_job_id
from schemas.video import VideoRendered

Doc = dict[str, Any]
Outcome = JobCompleted | JobFailed
OUTCOMES = (JobCompleted, JobFailed)
# A stage's outcome, webhooked only for jobs whose spec sets ``callback_stages``.
StageOutcome = AudioRendered | AudioFailed | MergeCompleted | MergeFailed | VideoRendered
STAGE_OUTCOMES = (AudioRendered, AudioFailed, MergeCompleted, MergeFailed, VideoRendered)
STAGE_COMPLETED, STAGE_FAILED = "stage.completed", "stage.failed"

# Delivery states (the ``webhook_deliveries`` document's ``state``).
PENDING, DELIVERED, FAILED, REFUSED = "PENDING", "DELIVERED", "FAILED", "REFUSED"
# What one attempt came to (each entry of the job's ``webhooks`` list).
SENT, RETRYING, GAVE_UP, NOT_SENT = "delivered", "retrying", "gave_up", "refused"
STATE_AFTER = {SENT: DELIVERED, RETRYING: PENDING, GAVE_UP: FAILED, NOT_SENT: REFUSED}

# Seconds to wait after the 1st, 2nd, ... failed attempt; the last one repeats until the
# delivery is ``max_age_s`` old (about 13 attempts over 24 h).
DEFAULT_DELAYS_S = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 10800.0, 14400.0)


def message_id(event: Outcome | StageOutcome) -> str:
    """The ``webhook-id``: the same for every attempt of one outcome (and for a
    redelivered or re-sent copy of it), so a receiver can drop duplicates."""
    return f"msg_{event.event_id.hex}"


def body(event: Outcome) -> bytes:
    data: Doc = {"job_id": event.job_id}
    if isinstance(event, JobCompleted):
        data.update(status="COMPLETED", outputs=dict(event.outputs), version=event.version)
        if event.audio_status is not None:
            data["audio_status"] = event.audio_status
        if event.audio_error is not None:
            data["audio_error"] = event.audio_error
    else:
        # The event's error is public already (code and plain words), never operator detail.
        data.update(status="FAILED", error={"code": event.error.code,
                                            "message": event.error.message})  # fmt: skip
    stamp = event.occurred_at.isoformat().replace("+00:00", "Z")
    return _json(event.event_type, stamp, data)


def stage_of(event: StageOutcome) -> str:
    """``audio``, ``voiceover`` (the ``<job_id>.vo`` audio job), ``video`` or ``merge``."""
    if isinstance(event, AudioRendered | AudioFailed):
        return "voiceover" if event.job_id.endswith(VOICEOVER_SUFFIX) else "audio"
    if isinstance(event, VideoRendered):
        return "video"
    return "merge"


def stage_type(event: StageOutcome) -> str:
    return STAGE_FAILED if isinstance(event, AudioFailed | MergeFailed) else STAGE_COMPLETED


def stage_body(event: StageOutcome) -> bytes:
    """Names, statuses and codes only: no storage key or URL of the stage's output (the
    job's own outcome carries what the tenant may fetch)."""
    data: Doc = {"job_id": parent_job_id(event.job_id), "stage": stage_of(event)}
    if isinstance(event, MergeCompleted | MergeFailed) and event.step is not None:
        data["step"] = event.step
    data["event_type"] = event.event_type
    if isinstance(event, AudioFailed | MergeFailed):
        data["error"] = {"code": event.error.code, "message": event.error.message}
    stamp = event.occurred_at.isoformat().replace("+00:00", "Z")
    return _json(stage_type(event), stamp, data)


def _json(event_type: str, stamp: str, data: Doc) -> bytes:
    doc = {"type": event_type, "timestamp": stamp, "data": data}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Delivery:
    msg_id: str
    job_id: str
    tenant_id: str
    event_type: str
    url: str = field(repr=False)  # its query string may hold the receiver's token
    body: bytes = field(repr=False)
    created_at: datetime
    deadline: datetime  # no attempt starts after it
    attempts: int = 0
    # The outcome's trace: each attempt's request continues it.
    traceparent: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One try, as recorded on the job and on the delivery. No headers: the signature is
    never stored."""

    msg_id: str
    type: str
    attempt: int
    at: datetime
    outcome: str  # SENT, RETRYING, GAVE_UP or NOT_SENT
    status: int | None = None  # the receiver's HTTP status
    error: str | None = None  # or the class of what went wrong instead
    duration_ms: int | None = None
    next_at: datetime | None = None
    reason: str | None = None  # why the delivery ended without success

    def doc(self) -> Doc:
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse_delays(text: str) -> tuple[float, ...]:
    """``"5,30,120"`` -> (5.0, 30.0, 120.0); every delay > 0, at least one."""
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"not a comma separated list of seconds: {text!r}") from None
    if not delays or any(d <= 0 for d in delays):
        raise ValueError(f"retry delays must be positive seconds, at least one: {text!r}")
    return delays


@dataclass(frozen=True)
class Schedule:
    delays_s: tuple[float, ...] = DEFAULT_DELAYS_S
    max_age_s: float = 86400.0
    jitter: float = 0.1  # +-10 %, so receivers that failed together are not retried together

    def deadline(self, created_at: datetime) -> datetime:
        return created_at + timedelta(seconds=self.max_age_s)

    def next_at(
        self, failed: int, now: datetime, deadline: datetime, rng: random.Random | None = None
    ) -> datetime | None:
        """When to try again after ``failed`` failed attempts; None: give up. The last
        try is moved up to the deadline rather than dropped."""
        if failed < 1:
            raise ValueError("next_at follows a failed attempt")
        if now >= deadline:
            return None
        base = self.delays_s[min(failed, len(self.delays_s)) - 1]
        delay = base * (1 + self.jitter * (rng or random).uniform(-1.0, 1.0))
        return min(now + timedelta(seconds=delay), deadline)
