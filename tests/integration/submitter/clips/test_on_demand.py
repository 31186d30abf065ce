"""The cached-clip path against the real stack: round trips per hit, the caches' bounds,
and the hit log's batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from services.common.clip_rules import ClipPlan, plan_clip
from services.common.episodes import Episode
from services.common.mongo import database
from services.common.settings import Settings
from services.submitter.keys import KeyStore
from tests.integration.submitter.kit import Api, running_api
from tests.support.mongo_commands import commands, sent_by_this_task

CLIP = "/api/v1/audio_clips/ep-fast?start_time_ms=1000&duration_ms=2000"
EPISODE = Episode(episode_id="ep-fast", tenant_id="acme", s3_key="episodes/ep-fast/source.mp3",
                  duration_ms=60_000, format_name="mp3", codec="mp3", size_bytes=1)  # fmt: skip


async def _cached_clip(api: Api) -> ClipPlan:
    """EPISODE registered and its 1-3 s clip cut (recorded, in the bucket)."""
    await api.runtime.episodes.insert(EPISODE, None)
    plan = plan_clip(EPISODE, 1000, 2000, "mp3", False, api.settings.clip_max_duration_ms)

    async def body() -> AsyncIterator[bytes]:
        yield b"clip bytes"

    size = await api.runtime.media.upload_stream(plan.key, body())
    await api.runtime.clips.insert(plan, size, 42)
    return plan


async def test_a_hit_makes_at_most_one_mongodb_round_trip(settings: Settings) -> None:
    commands()  # listening before the app's client is made
    ttl_s = 1.0
    async with running_api(settings, CLIP_CACHE_TTL_S=ttl_s) as api:
        acme = await api.key_for("acme")
        plan = await _cached_clip(api)

        with sent_by_this_task() as cold:
            r = await api.client.get(CLIP, headers=acme)
        assert r.status_code == 200 and r.json()["cache_hit"] is True, r.text
        # The first hit in a process reads the key, the episode and the clip record.
        assert sorted(cold) == [("find", "api_keys"), ("find", "audio_clips"),
                                ("find", "episodes")]  # fmt: skip

        for _ in range(20):
            with sent_by_this_task() as warm:
                r = await api.client.get(CLIP, headers=acme)
            assert r.status_code == 200 and r.json()["cache_hit"] is True
            assert warm == []

        # Past the clip TTL (the key's and episode's are longer): one read, the record.
        await asyncio.sleep(ttl_s + 0.1)
        with sent_by_this_task() as expired:
            r = await api.client.get(CLIP, headers=acme)
        assert r.status_code == 200 and r.json()["cache_hit"] is True
        assert expired == [("find", "audio_clips")]

        # The hits reach the request log in one batch, off the request path.
        assert await api.runtime.hit_log.flush() == 22
        [counted] = await api.runtime.clips.most_requested(timedelta(hours=1), 10)
        assert (counted["episode_id"], counted["start_ms"], counted["count"]) == (
            "ep-fast",
            plan.start_ms,
            22,
        )


async def test_a_deleted_clip_and_a_revoked_key_stop_within_their_ttls(
    settings: Settings,
) -> None:
    ttl_s = 1.0
    async with running_api(settings, CLIP_CACHE_TTL_S=ttl_s, KEY_CACHE_TTL_S=ttl_s,
                           CLIP_WAIT_TIMEOUT_S=0.2) as api:  # fmt: skip
        acme = await api.key_for("acme")
        plan = await _cached_clip(api)
        assert (await api.client.get(CLIP, headers=acme)).status_code == 200

        # Both changed by someone else: the CLI, a cleanup job, another API process.
        db = database(api.runtime.mongo, api.settings)
        await db["audio_clips"].delete_one({"s3_key": plan.key})
        key_id = acme["Authorization"].split("_")[1]
        assert await KeyStore(db).revoke(key_id)

        await asyncio.sleep(ttl_s + 0.1)
        r = await api.client.get(CLIP, headers=acme)
        assert r.status_code == 401, r.text
        other = await api.key_for("acme")
        r = await api.client.get(CLIP, headers=other)
        assert r.status_code == 202, r.text  # no longer a hit: asked of the clipper
