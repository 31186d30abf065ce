"""Episode registration against real MongoDB and S3."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.common import seek_index
from services.common.episodes import EpisodeExists, EpisodeStore
from services.common.ffmpeg import FFmpeg
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.registration import ForeignObject, register_file, register_s3_object
from services.common.settings import Settings
from tests.support import audio


async def test_racing_registrations_of_one_id_keep_the_winners_source(
    settings: Settings, tmp_path: Path
) -> None:
    mongo = connect(settings)
    store = EpisodeStore(database(mongo, settings))
    ffmpeg = FFmpeg.from_settings(settings)
    short = audio.make_episode(tmp_path / "short.mp3", "vbr", 10)
    long = audio.make_episode(tmp_path / "long.mp3", "cbr", 20)
    async with MediaStore.from_settings(settings) as media:
        results = await asyncio.gather(
            *(register_file(p, episode_id="ep-race", tenant_id="acme", filename=p.name,
                            store=store, media=media, ffmpeg=ffmpeg) for p in (short, long)),
            return_exceptions=True,
        )  # fmt: skip
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1 and len(losers) == 1
        assert isinstance(losers[0], EpisodeExists)
        episode = await store.get("acme", "ep-race")
        winner = winners[0]
        assert episode is not None and not isinstance(winner, BaseException)
        assert (episode.s3_key, episode.size_bytes, episode.duration_ms) == (
            winner.s3_key,
            winner.size_bytes,
            winner.duration_ms,
        )
        info = await media.head(episode.s3_key)
        assert info is not None and info.size == episode.size_bytes
        index = await store.seek_index("acme", "ep-race")
        assert index is not None and index.size_bytes == episode.size_bytes
        keys = await media.list_keys("episodes/acme/ep-race/")
        # The winner's source and its binary seek index; the loser's are removed.
        assert episode.seek_index_key is not None
        assert sorted(keys) == sorted([episode.s3_key, episode.seek_index_key]), keys
    await mongo.close()


async def test_the_seek_index_is_stored_beside_the_source_as_the_binary_index(
    settings: Settings, tmp_path: Path
) -> None:
    mongo = connect(settings)
    store = EpisodeStore(database(mongo, settings))
    src = audio.make_episode(tmp_path / "a.mp3", "vbr", 30)
    async with MediaStore.from_settings(settings) as media:
        ep = await register_file(src, episode_id="ep-bin", tenant_id="acme", filename=src.name,
                                 store=store, media=media,
                                 ffmpeg=FFmpeg.from_settings(settings))  # fmt: skip
        assert ep.seek_index_key is not None
        assert ep.seek_index_key.startswith("episodes/acme/ep-bin/")
        stored = seek_index.decode(await media.get_range(ep.seek_index_key, 0, 1 << 20))
        copy = await store.seek_index("acme", "ep-bin")
        assert copy is not None and stored.offsets == copy.offsets
        assert stored.times_ms == pytest.approx(copy.times_ms, abs=0.001)
        assert stored.size_bytes == ep.size_bytes == copy.size_bytes
    await mongo.close()


async def test_the_episode_carries_its_directory_and_readers_may_leave_it_out(
    settings: Settings, tmp_path: Path
) -> None:
    mongo = connect(settings)
    db = database(mongo, settings)
    store, lean = EpisodeStore(db), EpisodeStore(db, directories=False)
    src = audio.make_episode(tmp_path / "a.mp3", "vbr", 30)
    async with MediaStore.from_settings(settings) as media:
        ep = await register_file(src, episode_id="ep-dir", tenant_id="acme", filename=src.name,
                                 store=lean, media=media,
                                 ffmpeg=FFmpeg.from_settings(settings))  # fmt: skip
    index = await store.seek_index("acme", "ep-dir")
    assert index is not None and ep.seek_directory == seek_index.encode_directory(index)
    # Stored as written (bytes, not text), and read back whole by a clipper's store.
    read = await store.get("acme", "ep-dir")
    assert read is not None and read.seek_directory == ep.seek_directory
    times, offsets = seek_index.decode_directory(read.seek_directory)
    assert times[0] == index.times_ms[0] and offsets[0] == index.offsets[0]
    # The API's store leaves it out of what it reads, and only that.
    (listed,) = [e for e in await lean.list("acme") if e.episode_id == "ep-dir"]
    for got in (await lean.get("acme", "ep-dir"), listed):
        assert got is not None and got.seek_directory is None
        assert got.model_dump(exclude={"seek_directory"}) == read.model_dump(
            exclude={"seek_directory"}
        )
    await mongo.close()


async def test_registration_by_key_only_from_the_tenants_ingest_prefix(
    settings: Settings, tmp_path: Path
) -> None:
    mongo = connect(settings)
    store = EpisodeStore(database(mongo, settings))
    ffmpeg = FFmpeg.from_settings(settings)
    src = audio.make_episode(tmp_path / "a.wav", "wav", 3)
    async with MediaStore.from_settings(settings) as media:
        await media.upload_file("ingest/acme/a.wav", src)
        ep = await register_s3_object("ingest/acme/a.wav", episode_id="ep-a", tenant_id="acme",
                                      store=store, media=media, ffmpeg=ffmpeg)  # fmt: skip
        assert (ep.codec, ep.duration_ms, ep.seek_indexed) == ("pcm_s16le", 3000, False)
        with pytest.raises(ForeignObject):
            await register_s3_object("ingest/acme/a.wav", episode_id="ep-b", tenant_id="other",
                                     store=store, media=media, ffmpeg=ffmpeg)  # fmt: skip
    await mongo.close()
