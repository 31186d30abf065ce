"""Pipeline figures from records, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.ops.pipeline import (
    cache_stats,
    lag_rows,
    lifecycle_stats,
    percentile,
    provider_stats,
    stage_stats,
    top_clips,
    webhook_stats,
)
from services.ops.topics import GroupOffset, PartitionInfo, TopicInfo

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=1)


def record(stage: str, status: str, took_s: float, ended_ago_s: float = 60) -> dict[str, object]:
    end = NOW - timedelta(seconds=ended_ago_s)
    return {
        "stage": stage,
        "status": status,
        "created_at": end - timedelta(seconds=took_s),
        "updated_at": end,
    }


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7.0], 95, 7),
        ([1, 2, 3, 4], 50, 2),
        ([1, 2, 3, 4], 95, 4),
        (list(range(1, 101)), 95, 95),
        ([3, 1, 2], 50, 2),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: int | None) -> None:
    assert percentile(values, q) == expected


def test_stage_figures_join_records_of_a_stage_and_keep_to_the_window() -> None:
    docs = [
        record("clip", "COMPLETED", 1.0),
        record("clip", "COMPLETED", 3.0),
        record("clip", "FAILED", 2.0),
        record("clip", "FAILED", 2.0, ended_ago_s=7200),  # ended before the window
        record("merge.mux-v1", "COMPLETED", 10.0),
        record("merge.concat", "RUNNING", 5.0),
        record("audio.a2", "RUNNING", 5.0),
    ]
    ledger = [
        {"stage": "clip", "emitted": ["a"]},
        {"stage": "clip", "emitted": ["b", "c"]},
        {"stage": "merge", "emitted": []},
        # Rows of their own (lifecycle_stats, webhook_stats), never listed twice.
        {"stage": "lifecycle", "emitted": ["d"]},
        {"stage": "webhooks", "emitted": []},
    ]
    by = {s.stage: s for s in stage_stats(docs, ledger, SINCE)}
    assert set(by) == {"clip", "merge", "audio"}
    assert (by["clip"].events_in, by["clip"].events_out, by["clip"].failed) == (2, 3, 1)
    assert (by["clip"].p50_ms, by["clip"].p95_ms) == (2000, 3000)
    assert (by["merge"].events_in, by["merge"].failed, by["merge"].p50_ms) == (1, 0, 10000)
    assert (by["audio"].events_in, by["audio"].p50_ms) == (0, None)


def test_lifecycle_and_webhook_figures() -> None:
    actions: list[dict[str, Any]] = [
        {"name": "audio-a1", "event": {"x": 1}},
        {"name": "end-v1"},
        {"name": "fail", "event": {"x": 2}},
    ]
    life = lifecycle_stats(4, actions)
    assert (life.events_in, life.events_out, life.failed) == (4, 2, 1)
    at = NOW - timedelta(minutes=5)
    deliveries = [
        {"state": "DELIVERED", "created_at": at, "finished_at": at + timedelta(seconds=2)},
        {"state": "FAILED", "created_at": at, "finished_at": at + timedelta(seconds=9)},
        {"state": "PENDING", "created_at": at},
        {
            "state": "DELIVERED",
            "created_at": NOW - timedelta(hours=3),
            "finished_at": NOW - timedelta(hours=2),
        },
    ]
    hooks = webhook_stats(deliveries, SINCE)
    assert (hooks.events_in, hooks.events_out, hooks.failed, hooks.p50_ms) == (3, 1, 1, 2000)


def test_usage_counts_become_ratios_and_a_ranking() -> None:
    providers = provider_stats(
        [
            ({"provider": "fal", "status": "200"}, 3),
            ({"provider": "fal", "status": "429"}, 1),
            ({"provider": "fal", "status": "timeout"}, 1),
            ({"provider": "local", "status": "error"}, 1),
            ({"provider": "local", "status": "ok"}, 3),
        ]
    )
    assert [(p.provider, p.calls, p.errors, p.error_ratio) for p in providers] == [
        ("fal", 5, 2, 0.4),
        ("local", 4, 1, 0.25),
    ]
    caches = cache_stats(
        [
            ({"cache": "clip", "result": "hit"}, 3),
            ({"cache": "clip", "result": "miss"}, 1),
            ({"cache": "seek_index", "result": "miss"}, 2),
        ]
    )
    assert [(c.cache, c.hits, c.misses, c.hit_ratio) for c in caches] == [
        ("clip", 3, 1, 0.75),
        ("seek_index", 0, 2, 0.0),
    ]
    clip = {"tenant": "acme", "episode_id": "ep", "duration_ms": "1000"}
    ranked = top_clips(
        [
            ({**clip, "start_ms": "0"}, 2),
            ({**clip, "start_ms": "5"}, 9),
            ({**clip, "start_ms": "x"}, 50),
            ({**clip, "start_ms": "7"}, 1),
        ],
        top=2,
    )
    assert [(c.start_ms, c.requests) for c in ranked] == [(5, 9), (0, 2)]


def test_lag_rows_put_the_largest_first() -> None:
    topics = [
        TopicInfo(
            "t",
            [
                PartitionInfo(0, 0, 9, {"g": GroupOffset(8, 1)}),
                PartitionInfo(1, 0, 9, {"g": GroupOffset(2, 7), "h": GroupOffset(None, 9)}),
            ],
        )
    ]
    assert [(r.group, r.partition, r.lag) for r in lag_rows(topics)] == [
        ("h", 1, 9),
        ("g", 1, 7),
        ("g", 0, 1),
    ]
