"""Registering an episode: probe once, index once, store once."""

from __future__ import annotations

from pathlib import Path

from services.common.episodes import (
    INDEXED_CODECS,
    Episode,
    EpisodeExists,
    EpisodeStore,
    SeekIndex,
    episode_from_probe,
    source_extension,
)
from services.common.ffmpeg import FFmpeg, NotMediaError, ProbeResult, temp_workdir
from services.common.keys import episode_key, validate_part
from services.common.media_store import MediaStore, ObjectNotFound


async def _analyse(path: Path, ffmpeg: FFmpeg) -> tuple[ProbeResult, SeekIndex | None, int | None]:
    probe = await ffmpeg.probe(path)
    if probe.has_video:
        raise NotMediaError("the file has a video stream; episodes are audio only")
    index: SeekIndex | None = None
    duration_ms = probe.duration_ms
    if probe.codec in INDEXED_CODECS and probe.format_name.split(",")[0] == "mp3":
        packets = await ffmpeg.packet_index(path)
        index = SeekIndex(
            times_ms=packets.times_ms, offsets=packets.offsets, size_bytes=probe.size_bytes or 0
        )
        # The packet scan is exact; a bitrate estimate on a VBR file without a TOC is not.
        duration_ms = packets.end_ms
    return probe, index, duration_ms


async def register_file(
    path: Path,
    *,
    episode_id: str,
    tenant_id: str,
    filename: str | None,
    store: EpisodeStore,
    media: MediaStore,
    ffmpeg: FFmpeg,
) -> Episode:
    """Register an uploaded file: refused before anything is stored unless it is audio."""
    validate_part(episode_id)
    if await store.get(episode_id) is not None:
        raise EpisodeExists(f"episode {episode_id!r} is already registered")
    probe, index, duration_ms = await _analyse(path, ffmpeg)
    ext = source_extension(Path(filename or path.name), probe.format_name)
    key = episode_key(episode_id, f"source.{ext}")
    size = await media.upload_file(key, path)
    episode = episode_from_probe(
        episode_id=episode_id,
        tenant_id=tenant_id,
        s3_key=key,
        probe=probe,
        size_bytes=size,
        index=index,
        duration_ms=duration_ms,
    )
    await store.insert(episode, index)
    return episode


async def register_s3_object(
    s3_key: str,
    *,
    episode_id: str,
    tenant_id: str,
    store: EpisodeStore,
    media: MediaStore,
    ffmpeg: FFmpeg,
) -> Episode:
    """Register an object already in our bucket, reading it once to probe and index."""
    validate_part(episode_id)
    if await store.get(episode_id) is not None:
        raise EpisodeExists(f"episode {episode_id!r} is already registered")
    info = await media.head(s3_key)
    if info is None:
        raise ObjectNotFound(f"no object at {s3_key!r}")
    async with temp_workdir() as tmp:
        local = tmp / Path(s3_key).name
        await media.download_file(s3_key, local)
        probe, index, duration_ms = await _analyse(local, ffmpeg)
    episode = episode_from_probe(
        episode_id=episode_id,
        tenant_id=tenant_id,
        s3_key=s3_key,
        probe=probe,
        size_bytes=info.size,
        index=index,
        duration_ms=duration_ms,
    )
    await store.insert(episode, index)
    return episode
