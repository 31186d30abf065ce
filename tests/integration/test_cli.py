"""``tapedeck`` commands run as a user would: the installed script, configured by env."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

from schemas import TOPICS, decode_event
from schemas.clip import ClipRequested
from services.common.clips import ClipStore, plan_clip
from services.common.episodes import Episode, EpisodeStore
from services.common.mongo import connect, database
from services.common.settings import Settings
from services.submitter.api_keys import authenticate
from services.submitter.key_store import KeyStore
from tests.support.kafka import read

TAPEDECK = Path(sys.executable).with_name("tapedeck")


async def tapedeck(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "TOPIC_PREFIX": settings.topic_prefix,
        "MONGO_DB": settings.mongo_db,
        "S3_KEY_PREFIX": settings.s3_key_prefix,
    }
    proc = await asyncio.create_subprocess_exec(
        str(TAPEDECK),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_keys_create_list_revoke(settings: Settings) -> None:
    code, out, err = await tapedeck(settings, "keys", "create", "--tenant", "acme", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert set(created) == {"tenant", "key"} and created["tenant"] == "acme"
    key = created["key"]

    mongo = connect(settings)
    try:
        store = KeyStore(database(mongo, settings))
        assert await authenticate(store, key) == "acme"
        [stored] = await store.list("acme")
        raw = await database(mongo, settings)["api_keys"].find_one({"_id": stored.key_id})
        assert raw is not None and key not in str(raw)

        code, out, _ = await tapedeck(settings, "keys", "list", "--tenant", "acme", "--json")
        assert code == 0
        [row] = json.loads(out)
        assert row["key_id"] == stored.key_id and row["revoked_at"] is None
        assert key not in out

        code, out, _ = await tapedeck(settings, "keys", "revoke", stored.key_id)
        assert code == 0 and stored.key_id in out
        assert await authenticate(store, key) is None
        code, _, err = await tapedeck(settings, "keys", "revoke", stored.key_id)
        assert code == 1 and "no live key" in err
    finally:
        await mongo.close()

    code, _, err = await tapedeck(settings, "keys", "create", "--tenant", "../evil")
    assert code == 2 and "tenant" in err
    code, _, _ = await tapedeck(settings, "keys", "create")
    assert code == 2  # argparse: --tenant is required


async def test_clips_warm_requests_uncached_popular_ranges(settings: Settings) -> None:
    mongo = connect(settings)
    try:
        db = database(mongo, settings)
        episodes, clips = EpisodeStore(db), ClipStore(db)
        await clips.ensure_collections()
        episode = Episode(
            episode_id="ep-warm",
            tenant_id="acme",
            s3_key="episodes/ep-warm/source.mp3",
            duration_ms=60_000,
            format_name="mp3",
            codec="mp3",
            size_bytes=1000,
        )
        await episodes.insert(episode, None)
        max_ms = settings.clip_max_duration_ms
        popular = plan_clip(episode, 1000, 5000, "mp3", False, max_ms)
        cached = plan_clip(episode, 0, 1000, "mp3", False, max_ms)
        await clips.insert(cached, 10, 5)
        for _ in range(3):
            await clips.log_request(popular, "acme", cache_hit=False)
        await clips.log_request(cached, "acme", cache_hit=True)
        ghost = plan_clip(
            episode.model_copy(update={"episode_id": "ep-gone"}), 0, 1000, "mp3", False, max_ms
        )
        await clips.log_request(ghost, "acme", cache_hit=False)
        assert len(await clips.most_requested(timedelta(hours=1), 10)) == 3
    finally:
        await mongo.close()

    code, out, err = await tapedeck(
        settings, "clips", "warm", "--hours", "1", "--top", "10", "--wait-s", "1"
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("ep-warm 1000+5000ms mp3 x3: pending (requested as clip-")
    assert sorted(lines[1:3]) == [
        "ep-gone 0+1000ms mp3 x1: failed (episode_not_found)",
        "ep-warm 0+1000ms mp3 x1: cached",
    ]
    assert lines[3] == "total 3: 0 warmed, 1 already cached, 1 failed, 1 still pending"

    records = await read(settings, TOPICS.clip_requests.full_name(settings.topic_prefix), 1)
    events = [decode_event(r.value) for r in records if r.value]
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, ClipRequested)
    assert (event.producer, event.tenant_id, event.episode_id) == ("cli", "acme", "ep-warm")
    assert (event.start_ms, event.duration_ms, event.format) == (1000, 5000, "mp3")
    assert event.request_id in lines[0]
