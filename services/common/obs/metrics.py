"""Prometheus metrics of every service, declared once.

The names are a public contract: the Grafana dashboard and the alerting rules in
``deploy/observability/`` are drawn from them (a deploy test checks every name they use is
declared here). Each process exposes the default registry on ``/metrics``.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

from services.common.obs import stats

# Stage work spans milliseconds (a cached clip) to many minutes (a paid generation).
_STAGE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                         120, 300, 600, 1800)  # fmt: skip
_HTTP_BUCKETS: Final = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15)

EVENTS_CONSUMED = Counter(
    "tapedeck_events_consumed_total", "Records a stage's agent read.", ["stage", "topic"]
)
STAGE_OUTCOMES = Counter(
    "tapedeck_stage_outcomes_total",
    "Events a stage finished, by outcome (done, failed, duplicate, dead_letter).",
    ["stage", "outcome"],
)
STAGE_DURATION = Histogram(
    "tapedeck_stage_duration_seconds",
    "Time one event took in a stage, decode to ledger record.",
    ["stage", "outcome"],
    buckets=_STAGE_BUCKETS,
)
STAGE_ERRORS = Counter(
    "tapedeck_stage_errors_total", "Failed events by error code.", ["stage", "code"]
)
EVENTS_PRODUCED = Counter(
    "tapedeck_events_produced_total", "Events produced, by topic and type.", ["topic", "event_type"]
)
DEAD_LETTERS = Counter(
    "tapedeck_dead_letters_total", "Messages written to a dead-letter topic.", ["topic"]
)
LAST_PROGRESS = Gauge(
    "tapedeck_stage_last_progress_timestamp_seconds",
    "Unix time at which the stage last finished an event.",
    ["stage"],
)
CONSUMER_LAG = Gauge(
    "tapedeck_consumer_lag",
    "Records on a partition past the group's committed offset.",
    ["group", "topic", "partition"],
)
CONSUMER_STALLED = Gauge(
    "tapedeck_consumer_stalled",
    "1 while the worker has records waiting and made no progress within the window.",
    ["group"],
)
PROVIDER_REQUESTS = Counter(
    "tapedeck_provider_requests_total",
    "HTTP calls to audio providers, by HTTP status (or timeout, error).",
    ["provider", "status"],
)
PROVIDER_DURATION = Histogram(
    "tapedeck_provider_request_duration_seconds",
    "Duration of one provider call.",
    ["provider", "operation"],
    buckets=(*_HTTP_BUCKETS, 30, 60, 120),
)
FFMPEG_DURATION = Histogram(
    "tapedeck_ffmpeg_duration_seconds",
    "Duration of one ffmpeg or ffprobe run, by outcome (ok, error, timeout).",
    ["tool", "outcome"],
    buckets=_STAGE_BUCKETS,
)
CACHE_REQUESTS = Counter(
    "tapedeck_cache_requests_total", "Cache look-ups by cache and result.", ["cache", "result"]
)
JOBS = Gauge("tapedeck_jobs", "Jobs by kind and status.", ["kind", "status"])
WEBHOOK_DELIVERIES = Counter(
    "tapedeck_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed, refused).",
    ["outcome"],
)
HTTP_REQUESTS = Counter(
    "tapedeck_http_requests_total",
    "API requests by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "tapedeck_http_request_duration_seconds",
    "API request duration by method and route template.",
    ["method", "route"],
    buckets=_HTTP_BUCKETS,
)

_ALL: Final = (
    EVENTS_CONSUMED, STAGE_OUTCOMES, STAGE_DURATION, STAGE_ERRORS, EVENTS_PRODUCED, DEAD_LETTERS,
    LAST_PROGRESS, CONSUMER_LAG, CONSUMER_STALLED, PROVIDER_REQUESTS, PROVIDER_DURATION,
    FFMPEG_DURATION, CACHE_REQUESTS, JOBS, WEBHOOK_DELIVERIES, HTTP_REQUESTS, HTTP_DURATION,
)  # fmt: skip


def _family(metric: Counter | Gauge | Histogram) -> str:
    # A Counter's family name lacks the ``_total`` its samples carry.
    name = next(iter(metric.describe())).name
    return name + "_total" if isinstance(metric, Counter) else name


NAMES: Final = frozenset(_family(m) for m in _ALL)
"""Every metric name as written in PromQL (histograms without their sample suffixes)."""
KINDS: Final = {
    _family(m): ("counter" if isinstance(m, Counter) else
                 "histogram" if isinstance(m, Histogram) else "gauge")
    for m in _ALL
}  # fmt: skip


# The two below also count for the console's last hour (services/common/obs/stats.py).


def observe_provider(provider: str, operation: str, status: str, seconds: float) -> None:
    PROVIDER_REQUESTS.labels(provider, status).inc()
    PROVIDER_DURATION.labels(provider, operation).observe(seconds)
    stats.count(stats.StatName.PROVIDER_CALL, provider=provider, status=status)


def cache(name: str, hit: bool) -> None:
    result = "hit" if hit else "miss"
    CACHE_REQUESTS.labels(name, result).inc()
    stats.count(stats.StatName.CACHE, cache=name, result=result)


def ffmpeg(tool: str, outcome: str, seconds: float) -> None:
    FFMPEG_DURATION.labels(tool, outcome).observe(seconds)
