"""The pipeline over a recent window, for operators: per stage the events it took, the
events it emitted, its failures and its latency; consumer lag; provider calls, cache hit
ratios and the most requested clips.

Where each figure comes from:

* clip, audio, merge: the stage ledger (``processed_events``: one entry per event
  handled, with the events it emitted) for in and out; the stage records (``job_stages``)
  for failures and latency (record created to record finished);
* lifecycle: outcomes it recorded (in), events it asked for (out), jobs it failed;
* webhooks: deliveries made (in), delivered (out), given up or refused (failed), and
  the time from the outcome to its delivery;
* lag: :func:`services.ops.topics.describe`; the rest: the usage counts
  (``services.common.obs.stats``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from services.common.job_store import STAGES
from services.common.ledger import COLLECTION as LEDGER
from services.common.mongo import Doc
from services.common.obs.stats import StatName, window_counts
from services.common.settings import Settings
from services.lifecycle.store import ACTIONS, OUTCOMES
from services.ops.topics import TopicInfo, describe
from services.webhooks.plan import DELIVERED, FAILED, REFUSED
from services.webhooks.store import DELIVERIES

log = logging.getLogger(__name__)

LIFECYCLE, WEBHOOKS = "lifecycle", "webhooks"
# How long the lag may take to read before the figures go without it.
LAG_TIMEOUT_S = 15.0
TOP_CLIPS = 10


@dataclass(frozen=True)
class StageStats:
    stage: str
    events_in: int
    events_out: int
    failed: int
    p50_ms: int | None
    p95_ms: int | None


@dataclass(frozen=True)
class LagRow:
    group: str
    topic: str
    partition: int
    lag: int


@dataclass(frozen=True)
class ProviderStats:
    provider: str
    calls: int
    errors: int
    error_ratio: float


@dataclass(frozen=True)
class CacheStats:
    cache: str
    hits: int
    misses: int
    hit_ratio: float


@dataclass(frozen=True)
class ClipStats:
    tenant: str
    episode_id: str
    start_ms: int
    duration_ms: int
    requests: int


@dataclass(frozen=True)
class PipelineStats:
    window_s: int
    stages: list[StageStats]
    lag: list[LagRow]
    providers: list[ProviderStats]
    caches: list[CacheStats]
    top_clips: list[ClipStats]
    lag_error: str | None = field(default=None)  # why the lag is missing, when it is


def percentile(values: Sequence[float], q: float) -> int | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return round(ordered[rank - 1])


def _ms(start: object, end: object) -> float | None:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return max((end - start).total_seconds() * 1000, 0.0)
    return None


def _recent(value: object, since: datetime) -> bool:
    return isinstance(value, datetime) and value >= since


def stage_stats(
    stage_docs: Iterable[Doc], ledger_docs: Iterable[Doc], since: datetime
) -> list[StageStats]:
    """The worker stages' figures from their records and ledger entries in the window."""
    taken: dict[str, int] = {}
    emitted: dict[str, int] = {}
    for doc in ledger_docs:
        stage = str(doc.get("stage", ""))
        taken[stage] = taken.get(stage, 0) + 1
        emitted[stage] = emitted.get(stage, 0) + len(doc.get("emitted") or [])
    failed: dict[str, int] = {}
    durations: dict[str, list[float]] = {}
    for doc in stage_docs:
        # ``audio.a2``, ``merge.mux-v1``: records of one stage, per attempt or step.
        stage = str(doc.get("stage", "")).split(".", 1)[0]
        if doc.get("status") not in ("COMPLETED", "FAILED") or not _recent(
            doc.get("updated_at"), since
        ):
            durations.setdefault(stage, [])
            continue
        if doc["status"] == "FAILED":
            failed[stage] = failed.get(stage, 0) + 1
        took = _ms(doc.get("created_at"), doc.get("updated_at"))
        durations.setdefault(stage, []).extend([] if took is None else [took])
    # The lifecycle and the webhook service have rows of their own (lifecycle_stats,
    # webhook_stats): their ledger entries would list them twice.
    names = sorted((set(taken) | set(durations)) - {LIFECYCLE, WEBHOOKS})
    return [
        StageStats(
            name,
            taken.get(name, 0),
            emitted.get(name, 0),
            failed.get(name, 0),
            percentile(durations.get(name, []), 50),
            percentile(durations.get(name, []), 95),
        )
        for name in names
    ]


def lifecycle_stats(outcomes: int, action_docs: Iterable[Doc]) -> StageStats:
    asked = failed = 0
    for doc in action_docs:
        if doc.get("event") is not None:
            asked += 1
        if doc.get("name") == "fail":
            failed += 1
    return StageStats(LIFECYCLE, outcomes, asked, failed, None, None)


def webhook_stats(delivery_docs: Iterable[Doc], since: datetime) -> StageStats:
    made = delivered = failed = 0
    took: list[float] = []
    for doc in delivery_docs:
        made += _recent(doc.get("created_at"), since)
        if not _recent(doc.get("finished_at"), since):
            continue
        if doc.get("state") == DELIVERED:
            delivered += 1
            ms = _ms(doc.get("created_at"), doc.get("finished_at"))
            took.extend([] if ms is None else [ms])
        elif doc.get("state") in (FAILED, REFUSED):
            failed += 1
    return StageStats(WEBHOOKS, made, delivered, failed, percentile(took, 50), percentile(took, 95))


def lag_rows(topics: Iterable[TopicInfo]) -> list[LagRow]:
    rows = [
        LagRow(group, t.name, p.partition, offset.lag)
        for t in topics
        for p in t.partitions
        for group, offset in p.groups.items()
    ]
    return sorted(rows, key=lambda r: (-r.lag, r.group, r.topic, r.partition))


Counts = Iterable[tuple[dict[str, str], int]]


def _ok(status: str) -> bool:
    # HTTP providers count by status code; the offline provider says "ok" or "error".
    return status == "ok" or (status.isdigit() and int(status) < 400)


def provider_stats(counts: Counts) -> list[ProviderStats]:
    calls: dict[str, int] = {}
    errors: dict[str, int] = {}
    for labels, n in counts:
        provider = labels.get("provider", "")
        calls[provider] = calls.get(provider, 0) + n
        if not _ok(labels.get("status", "")):
            errors[provider] = errors.get(provider, 0) + n
    out = []
    for provider in sorted(calls):
        bad = errors.get(provider, 0)
        ratio = bad / calls[provider] if calls[provider] else 0.0
        out.append(ProviderStats(provider, calls[provider], bad, ratio))
    return out


def cache_stats(counts: Counts) -> list[CacheStats]:
    hits: dict[str, int] = {}
    misses: dict[str, int] = {}
    for labels, n in counts:
        cache = labels.get("cache", "")
        bucket = hits if labels.get("result") == "hit" else misses
        bucket[cache] = bucket.get(cache, 0) + n
        hits.setdefault(cache, 0)
        misses.setdefault(cache, 0)
    out = []
    for cache in sorted(hits):
        total = hits[cache] + misses[cache]
        out.append(
            CacheStats(cache, hits[cache], misses[cache], hits[cache] / total if total else 0.0)
        )
    return out


def top_clips(counts: Counts, top: int = TOP_CLIPS) -> list[ClipStats]:
    rows = []
    for labels, n in counts:
        try:
            start, duration = int(labels["start_ms"]), int(labels["duration_ms"])
        except (KeyError, ValueError):
            continue
        rows.append(
            ClipStats(labels.get("tenant", ""), labels.get("episode_id", ""), start, duration, n)
        )
    rows.sort(key=lambda c: (-c.requests, c.tenant, c.episode_id, c.start_ms, c.duration_ms))
    return rows[:top]


async def pipeline_stats(
    db: AsyncDatabase[Doc], settings: Settings, *, window: timedelta = timedelta(hours=1)
) -> PipelineStats:
    since = datetime.now(UTC) - window
    recent = {"$or": [{"created_at": {"$gte": since}}, {"updated_at": {"$gte": since}}]}
    fields = {"stage": 1, "status": 1, "created_at": 1, "updated_at": 1}
    stage_docs = [d async for d in db[STAGES].find(recent, fields)]
    ledger_docs = [
        d
        async for d in db[LEDGER].find(
            {"processed_at": {"$gte": since}}, {"stage": 1, "emitted": 1}
        )
    ]
    outcomes = await db[OUTCOMES].count_documents({"seq": {"$gte": since}})
    actions = [d async for d in db[ACTIONS].find({"at": {"$gte": since}}, {"name": 1, "event": 1})]
    deliveries = [
        d
        async for d in db[DELIVERIES].find(
            {"$or": [{"created_at": {"$gte": since}}, {"finished_at": {"$gte": since}}]},
            {"state": 1, "created_at": 1, "finished_at": 1},
        )
    ]
    stages = stage_stats(stage_docs, ledger_docs, since)
    stages += [lifecycle_stats(outcomes, actions), webhook_stats(deliveries, since)]
    lag: list[LagRow] = []
    lag_error = None
    try:
        async with asyncio.timeout(LAG_TIMEOUT_S):
            lag = lag_rows(await describe(settings))
    except Exception as exc:
        # The figures from MongoDB still help while Kafka does not answer.
        log.warning("pipeline stats without lag: %r", exc)
        lag_error = f"the consumer lag could not be read ({type(exc).__name__})"
    return PipelineStats(
        window_s=int(window.total_seconds()),
        stages=stages,
        lag=lag,
        providers=provider_stats(await window_counts(db, StatName.PROVIDER_CALL, since)),
        caches=cache_stats(await window_counts(db, StatName.CACHE, since)),
        top_clips=top_clips(await window_counts(db, StatName.CLIP_REQUEST, since)),
        lag_error=lag_error,
    )
