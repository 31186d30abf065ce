"""Registering an episode: probe once, index once, store once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from services.common import seek_index
from services.common.episodes import (
    INDEXED_CODECS,
    Episode,
    EpisodeExists,
    EpisodeStore,
    SeekIndex,
    episode_from_probe,
    source_extension,
)
from services.common.errors import PermanentError
from services.common.ffmpeg import FFmpeg, NotMediaError, ProbeResult, temp_workdir
from services.common.keys import episode_key, ingest_prefix, is_under, validate_part
from services.common.media_store import MediaStore, ObjectNotFound


class ForeignObject(PermanentError):
    public = True
    code = "forbidden_s3_key"


@dataclass(frozen=True)
class Analysis:
    probe: ProbeResult
    index: SeekIndex | None
    duration_ms: int | None
    skip_samples: int


async def _analyse(path: Path, ffmpeg: FFmpeg) -> Analysis:
    probe = await ffmpeg.probe(path)
    if probe.has_video:
        raise NotMediaError("the file has a video stream; episodes are audio only")
    if not (probe.codec in INDEXED_CODECS and probe.format_name.split(",")[0] == "mp3"):
        return Analysis(probe, None, probe.duration_ms, 0)
    packets = await ffmpeg.packet_index(path)
    index = SeekIndex(
        times_ms=packets.times_ms, offsets=packets.offsets, size_bytes=probe.size_bytes or 0
    )
    # The packet scan is exact where a bitrate estimate on a VBR file is not; what a
    # listener hears excludes the gapless padding at both ends.
    rate = probe.sample_rate or 44100
    padding_ms = (packets.skip_samples + packets.discard_samples) * 1000 / rate
    return Analysis(probe, index, round(packets.end_ms - padding_ms), packets.skip_samples)


def _episode(
    a: Analysis, *, episode_id: str, tenant_id: str, s3_key: str, size: int, index_key: str | None
) -> Episode:
    return episode_from_probe(
        episode_id=episode_id, tenant_id=tenant_id, s3_key=s3_key, probe=a.probe,
        size_bytes=size, index=a.index, duration_ms=a.duration_ms, skip_samples=a.skip_samples,
        seek_index_key=index_key,
        seek_directory=seek_index.encode_directory(a.index) if a.index is not None else None,
    )  # fmt: skip


async def _store_index(
    a: Analysis, media: MediaStore, tenant_id: str, episode_id: str, tag: str
) -> str | None:
    """The binary seek index beside the source, so a clip reads only the records around
    it (the MongoDB copy stays for clippers that predate it)."""
    if a.index is None:
        return None
    key = episode_key(tenant_id, episode_id, f"seek-{tag}.idx")
    data = seek_index.encode(a.index)

    async def body() -> AsyncIterator[bytes]:
        yield data

    await media.upload_stream(key, body(), "application/octet-stream")
    return key


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
    if await store.get(tenant_id, episode_id) is not None:
        raise EpisodeExists(f"episode {episode_id!r} is already registered")
    analysis = await _analyse(path, ffmpeg)
    ext = source_extension(Path(filename or path.name), analysis.probe.format_name)
    # A key of its own per upload: two registrations racing on one id must not
    # overwrite each other's source before the id's insert decides between them.
    tag = uuid.uuid4().hex[:12]
    key = episode_key(tenant_id, episode_id, f"source-{tag}.{ext}")
    size = await media.upload_file(key, path)
    index_key = await _store_index(analysis, media, tenant_id, episode_id, tag)
    episode = _episode(analysis, episode_id=episode_id, tenant_id=tenant_id, s3_key=key,
                       size=size, index_key=index_key)  # fmt: skip
    try:
        await store.insert(episode, analysis.index)
    except EpisodeExists:
        for own in (key, index_key):
            if own is not None:
                await media.delete(own)
        raise
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
    allowed = ingest_prefix(tenant_id)
    if not is_under(s3_key, allowed):
        raise ForeignObject(f"objects registered by key must be under {allowed!r}")
    if await store.get(tenant_id, episode_id) is not None:
        raise EpisodeExists(f"episode {episode_id!r} is already registered")
    info = await media.head(s3_key)
    if info is None:
        raise ObjectNotFound(f"no object at {s3_key!r}")
    async with temp_workdir() as tmp:
        local = tmp / Path(s3_key).name
        await media.download_file(s3_key, local)
        analysis = await _analyse(local, ffmpeg)
    index_key = await _store_index(analysis, media, tenant_id, episode_id, uuid.uuid4().hex[:12])
    episode = _episode(analysis, episode_id=episode_id, tenant_id=tenant_id, s3_key=s3_key,
                       size=info.size, index_key=index_key)  # fmt: skip
    try:
        await store.insert(episode, analysis.index)
    except EpisodeExists:
        if index_key is not None:
            await media.delete(index_key)
        raise
    return episode
