"""Clip metadata on the real MongoDB wire-protocol server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.common.clip_rules import plan_clip
from services.common.clips import ClipStore, RequestCount
from services.common.episodes import Episode
from services.common.mongo import connect, database
from services.common.settings import Settings

EPISODE = Episode(episode_id="ep", tenant_id="acme", s3_key="episodes/acme/ep/s.mp3",
                  duration_ms=60_000, format_name="mp3", codec="mp3", size_bytes=1)  # fmt: skip


async def test_two_processes_recording_one_clip_both_succeed_with_one_record(
    settings: Settings,
) -> None:
    clients = [connect(settings, f"clipper-{n}") for n in range(2)]
    try:
        stores = [ClipStore(database(c, settings)) for c in clients]
        await stores[0].ensure_collections()
        plan = plan_clip(EPISODE, 1000, 2000, "mp3", False, 600_000)
        for _ in range(10):
            # Both clippers cut the same range and race to record it: the loser must take
            # the winner's record, not fail a request whose clip is in the bucket.
            docs = await asyncio.gather(
                stores[0].insert(plan, 100, 5), stores[1].insert(plan, 100, 6)
            )
            assert {d["s3_key"] for d in docs} == {plan.key}
        col = database(clients[0], settings)["audio_clips"]
        assert await col.count_documents({}) == 1
        found = await stores[1].find(plan)
        assert found is not None and found["tenant_id"] == "acme"
        # Another tenant's episode of the same id and range is another clip.
        other = plan_clip(EPISODE.model_copy(update={"tenant_id": "other"}), 1000, 2000, "mp3",
                          False, 600_000)  # fmt: skip
        assert await stores[0].find(other) is None
        await stores[0].insert(other, 100, 5)
        assert await col.count_documents({}) == 2
    finally:
        for c in clients:
            await c.close()


async def test_a_store_that_loses_the_race_to_make_the_collection_still_starts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = connect(settings)
    try:
        db = database(client, settings)
        await ClipStore(db).ensure_collections()

        # The collection appears between a second store's look and its create, as when
        # several submitters start at once.
        async def none_yet(*args: object, **kwargs: object) -> list[str]:
            return []

        monkeypatch.setattr(db, "list_collection_names", none_yet)
        late = ClipStore(db)
        await late.ensure_collections()
        assert late.server_validates is False
        assert await db["audio_clips"].count_documents({}) == 0
    finally:
        await client.close()


async def test_most_requested_counts_per_tenant_and_range(settings: Settings) -> None:
    client = connect(settings)
    try:
        store = ClipStore(database(client, settings))
        await store.ensure_collections()
        plan = plan_clip(EPISODE, 0, 1000, "mp3", False, 600_000)
        for hit in (False, True, True):
            await store.log_request(plan, "acme", hit)
        other = plan_clip(EPISODE.model_copy(update={"tenant_id": "other"}), 0, 1000, "mp3",
                          False, 600_000)  # fmt: skip
        await store.log_request(other, "other", False)
        top = await store.most_requested(timedelta(hours=1), 10)
        assert [(r["tenant_id"], r["count"]) for r in top] == [("acme", 3), ("other", 1)]
    finally:
        await client.close()


async def test_batched_entries_count_with_single_ones_and_the_window(settings: Settings) -> None:
    client = connect(settings)
    try:
        store = ClipStore(database(client, settings))
        await store.ensure_collections()
        now = datetime.now(UTC)
        popular = plan_clip(EPISODE, 0, 1000, "mp3", False, 600_000)
        rare = plan_clip(EPISODE, 5000, 1000, "mp3", False, 600_000)
        await store.log_request(popular, "acme", False)  # the clipper's: one per request
        await store.log_requests([
            RequestCount(popular, "acme", True, 40, now),
            RequestCount(rare, "acme", True, 2, now),
            RequestCount(rare, "acme", True, 500, now - timedelta(hours=3)),  # too old
        ])  # fmt: skip
        await store.log_requests([RequestCount(rare, "acme", True, 1, now)])
        top = await store.most_requested(timedelta(hours=1), 10)
        assert [(r["start_ms"], r["count"]) for r in top] == [(0, 41), (5000, 3)]
        assert [r["start_ms"] for r in await store.most_requested(timedelta(hours=1), 1)] == [0]
        await store.log_requests([])  # nothing to write: no error
    finally:
        await client.close()
