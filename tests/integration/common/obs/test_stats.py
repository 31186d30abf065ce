"""The console's usage counts on the real MongoDB-compatible server: counted in memory,
appended per minute, summed per label set over a window; old ones pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common.mongo import connect, database
from services.common.obs import stats
from services.common.settings import Settings


async def test_counts_are_appended_and_summed_over_the_window(settings: Settings) -> None:
    mongo = connect(settings)
    db = database(mongo, settings)
    try:
        stats.count(stats.StatName.CACHE, cache="clip", result="hit")  # no sink yet: dropped
        async with stats.recording(db, every_s=3600):
            for _ in range(3):
                stats.count(stats.StatName.CACHE, cache="clip", result="hit")
            stats.count(stats.StatName.CACHE, cache="clip", result="miss")
            stats.count(stats.StatName.PROVIDER_CALL, 2, provider="fal", status="500")
            assert await stats.flush(db) == 3
            stats.count(stats.StatName.CACHE, cache="clip", result="hit")
        # Leaving flushes what is left; a second process's appends add up the same way.
        since = datetime.now(UTC) - timedelta(minutes=5)
        assert await stats.window_counts(db, stats.StatName.CACHE, since) == [
            ({"cache": "clip", "result": "hit"}, 4),
            ({"cache": "clip", "result": "miss"}, 1),
        ]
        assert await stats.window_counts(db, stats.StatName.PROVIDER_CALL, since) == [
            ({"provider": "fal", "status": "500"}, 2)
        ]
        stats.count(stats.StatName.CACHE, cache="clip", result="hit")  # closed: dropped
        assert await stats.flush(db) == 0

        old = datetime.now(UTC) - stats.RETENTION - timedelta(minutes=1)
        await db[stats.STATS].insert_one({"at": old, "name": "cache", "labels": {}, "n": 9})
        assert await stats.window_counts(db, stats.StatName.CACHE, old) != []
        await stats.prune(db)
        assert await db[stats.STATS].count_documents({"at": {"$lt": since}}) == 0
    finally:
        await mongo.close()
