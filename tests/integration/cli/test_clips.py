"""``tapedeck clips warm`` against the real stack, with no clipper running."""

from __future__ import annotations

from datetime import timedelta

from schemas import TOPICS, decode_event
from schemas.clip import ClipRequested
from services.common.clip_rules import plan_clip
from services.common.clips import ClipStore
from services.common.episodes import Episode, EpisodeStore
from services.common.mongo import connect, database
from services.common.settings import Settings
from tests.integration.cli.command import tapedeck
from tests.support.kafka import read


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
